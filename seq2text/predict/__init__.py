"""Predictors behind the public API: load a bundle, predict in batches, reading text through the bundle's reading
spec (`seq2text.text.reading`, `seq2text.text.series`) exactly as training did. No Lightning is imported here.

    language_model.py   LanguageModel (perplexity, scores, sampling)
    classifier.py       Classifier, ClassifierEnsemble
    regressor.py        Regressor
    translator.py       Translator, TranslatorEnsemble, Translation
    forecaster.py       Forecaster, ForecasterEnsemble
    loading.py          load: any bundle to the predictor of its task, a list of bundles to an ensemble
    metrics.py          the evaluation functions (BLEU/chrF/TER, classification and forecast scores), which the
                        training tasks share
    shared.py           what the predictors share (the network built from a bundle, input checks)

The names below load on first use (PEP 562), so that the tasks' `seq2text.predict.metrics` loads no predictor.
"""

from __future__ import annotations

import importlib

# public name -> the module that defines it
_LAZY = {
    **dict.fromkeys(("Classifier", "ClassifierEnsemble"), "seq2text.predict.classifier"),
    **dict.fromkeys(("Forecaster", "ForecasterEnsemble"), "seq2text.predict.forecaster"),
    "LanguageModel": "seq2text.predict.language_model",
    "Regressor": "seq2text.predict.regressor",
    **dict.fromkeys(("Translation", "Translator", "TranslatorEnsemble"), "seq2text.predict.translator"),
    "load": "seq2text.predict.loading",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'seq2text.predict' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
