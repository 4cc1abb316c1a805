"""Plain torch modules (no Lightning): regularizers, recurrent stacks, output layers, models."""

from seq2text.nn.attention import BahdanauAttention, LuongAttention
from seq2text.nn.classifier import ClassifierConfig, RNNClassifier
from seq2text.nn.config import config_from
from seq2text.nn.lm import LMConfig, RNNLanguageModel
from seq2text.nn.loss import label_smoothed_nll
from seq2text.nn.regularization import LockedDropout, embedding_dropout
from seq2text.nn.rnn import DropConnectRNN, RNNStack
from seq2text.nn.search import Hypothesis, SearchConfig, beam_search, greedy_search
from seq2text.nn.seq2seq import Seq2Seq, Seq2SeqConfig
from seq2text.nn.softmax import AdaptiveSoftmax

__all__ = ["AdaptiveSoftmax", "BahdanauAttention", "ClassifierConfig", "DropConnectRNN", "Hypothesis", "LMConfig",
           "LockedDropout", "LuongAttention", "RNNClassifier", "RNNLanguageModel", "RNNStack", "SearchConfig",
           "Seq2Seq", "Seq2SeqConfig", "beam_search", "config_from", "embedding_dropout", "greedy_search",
           "label_smoothed_nll"]
