"""Plain torch modules (no Lightning): regularizers, recurrent stacks, output layers, models."""

from seq2text.nn.lm import RNNLanguageModel
from seq2text.nn.regularization import LockedDropout, embedding_dropout
from seq2text.nn.rnn import DropConnectRNN, RNNStack
from seq2text.nn.softmax import AdaptiveSoftmax

__all__ = ["AdaptiveSoftmax", "DropConnectRNN", "LockedDropout", "RNNLanguageModel", "RNNStack",
           "embedding_dropout"]
