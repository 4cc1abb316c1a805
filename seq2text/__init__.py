"""seq2text: recurrent (LSTM/GRU) NLP with SentencePiece and PyTorch Lightning."""

from seq2text.errors import BundleError, ConfigError, DataError, Seq2TextError
from seq2text.inference import Classifier, ClassifierEnsemble, LanguageModel, Translator, load
from seq2text.tokenizer import Tokenizer

__version__ = "0.1.0"
__all__ = ["BundleError", "Classifier", "ClassifierEnsemble", "ConfigError", "DataError", "LanguageModel",
           "Seq2TextError", "Tokenizer", "Translator", "load"]
