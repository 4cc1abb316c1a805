"""Plain torch modules (no Lightning): regularizers, recurrent stacks, output layers, models."""

from seq2text.nn.attention import BahdanauAttention, LuongAttention
from seq2text.nn.classifier import RNNClassifier
from seq2text.nn.lm import RNNLanguageModel
from seq2text.nn.loss import label_smoothed_nll
from seq2text.nn.regularization import LockedDropout, embedding_dropout
from seq2text.nn.rnn import DropConnectRNN, RNNStack
from seq2text.nn.search import Hypothesis, beam_search, greedy_search
from seq2text.nn.seq2seq import Seq2Seq
from seq2text.nn.softmax import AdaptiveSoftmax

__all__ = ["AdaptiveSoftmax", "BahdanauAttention", "DropConnectRNN", "Hypothesis", "LockedDropout", "LuongAttention",
           "RNNClassifier", "RNNLanguageModel", "RNNStack", "Seq2Seq", "beam_search", "embedding_dropout",
           "greedy_search", "label_smoothed_nll"]
