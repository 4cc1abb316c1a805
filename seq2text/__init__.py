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
    **dict.fromkeys(("Classifier", "ClassifierEnsemble"), "seq2text.predict.classifier"),
    **dict.fromkeys(("Forecaster", "ForecasterEnsemble"), "seq2text.predict.forecaster"),
    "LanguageModel": "seq2text.predict.language_model",
    "Regressor": "seq2text.predict.regressor",
    **dict.fromkeys(("Translation", "Translator", "TranslatorEnsemble"), "seq2text.predict.translator"),
    "load": "seq2text.predict.loading",
    "push_to_hub": "seq2text.bundles.hub",
    "SearchConfig": "seq2text.nn.search",
    **dict.fromkeys(("ClassifierReading", "LMReading", "TranslationReading"), "seq2text.text.reading"),
    "SeriesReading": "seq2text.text.series",
    "Tokenizer": "seq2text.text.tokenizer",
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
