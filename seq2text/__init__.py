"""seq2text: recurrent (LSTM/GRU) NLP with SentencePiece and PyTorch Lightning.

The public names load on first use (PEP 562), so that `import seq2text` and the `seq2text` command start without
torch: the command decides what must be set before torch loads (OpenMP's wait policy for `serve`) first.
"""

from __future__ import annotations

import importlib

from seq2text.errors import BundleError, ConfigError, DataError, Seq2TextError

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    **dict.fromkeys(("Classifier", "ClassifierEnsemble", "Forecaster", "ForecasterEnsemble", "LanguageModel",
                     "Regressor", "Translation", "Translator", "TranslatorEnsemble", "load"), "seq2text.inference"),
    "push_to_hub": "seq2text.hub",
    "SearchConfig": "seq2text.nn.search",
    **dict.fromkeys(("ClassifierReading", "LMReading", "TranslationReading"), "seq2text.reading"),
    "SeriesReading": "seq2text.series",
    "Tokenizer": "seq2text.tokenizer",
}
__all__ = ["BundleError", "ConfigError", "DataError", "Seq2TextError", *sorted(_LAZY)]

def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'seq2text' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
