"""seq2text: recurrent (LSTM/GRU) NLP with SentencePiece and PyTorch Lightning.

The public names load on first use (PEP 562), so that `import seq2text` and the `seq2text` command start without
torch: the command decides what must be set before torch loads (OpenMP's wait policy for `serve`) first.
"""

from __future__ import annotations

from seq2text.errors import BundleError, ConfigError, DataError, Seq2TextError
from seq2text.predict import LAZY as _PREDICTORS
from seq2text.predict import lazy_attributes as _lazy_attributes

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    **_PREDICTORS,
    "push_to_hub": "seq2text.bundles.hub",
    "SearchConfig": "seq2text.nn.search",
    **dict.fromkeys(("ClassifierReading", "LMReading", "TranslationReading"), "seq2text.text.reading"),
    "SeriesReading": "seq2text.text.series",
    "Tokenizer": "seq2text.text.tokenizer",
}
__all__ = ["BundleError", "ConfigError", "DataError", "Seq2TextError", *sorted(_LAZY)]
__getattr__, __dir__ = _lazy_attributes(__name__, _LAZY)
