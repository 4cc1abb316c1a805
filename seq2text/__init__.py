"""seq2text: recurrent (LSTM/GRU) NLP with SentencePiece and PyTorch Lightning."""

from seq2text.errors import BundleError, ConfigError, DataError, Seq2TextError
from seq2text.hub import push_to_hub  # huggingface_hub itself is imported only when a push or hf:// load runs
from seq2text.inference import (
    Classifier,
    ClassifierEnsemble,
    Forecaster,
    ForecasterEnsemble,
    LanguageModel,
    Regressor,
    Translation,
    Translator,
    TranslatorEnsemble,
    load,
)
from seq2text.nn.search import SearchConfig
from seq2text.reading import ClassifierReading, LMReading, TranslationReading
from seq2text.series import SeriesReading
from seq2text.tokenizer import Tokenizer

__version__ = "0.1.0"
__all__ = ["BundleError", "Classifier", "ClassifierEnsemble", "ClassifierReading", "ConfigError", "DataError",
           "Forecaster", "ForecasterEnsemble", "LMReading", "LanguageModel", "Regressor", "SearchConfig",
           "Seq2TextError", "SeriesReading", "Tokenizer", "Translation", "TranslationReading", "Translator",
           "TranslatorEnsemble", "load", "push_to_hub"]
