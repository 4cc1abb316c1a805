"""Predictors behind the public API: one module per task (its predictor and ensemble), `load` (any bundle to its
task's predictor), `metrics` (the one evaluation of each task, shared with training), `evaluation` (`seq2text
evaluate`) and `shared`. Text is read through the bundle's reading spec exactly as in training; no Lightning here.

The names below load on first use (PEP 562), so that the tasks' `seq2text.predict.metrics` loads no predictor;
`seq2text` itself exports them the same way, with `lazy_attributes`."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

# public name -> the module that defines it
LAZY = {
    **dict.fromkeys(("Classifier", "ClassifierEnsemble"), "seq2text.predict.classifier"),
    **dict.fromkeys(("Forecaster", "ForecasterEnsemble"), "seq2text.predict.forecaster"),
    **dict.fromkeys(("LanguageModel", "LanguageModelEnsemble"), "seq2text.predict.language_model"),
    **dict.fromkeys(("Regressor", "RegressorEnsemble"), "seq2text.predict.regressor"),
    **dict.fromkeys(("Translation", "Translator", "TranslatorEnsemble"), "seq2text.predict.translator"),
    "load": "seq2text.predict.loading",
}
__all__ = sorted(LAZY)


def lazy_attributes(module: str, table: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The PEP 562 `__getattr__` and `__dir__` of `module`, whose names in `table` (name → the module that defines
    it) are imported on first use and then kept in its namespace."""
    namespace = sys.modules[module].__dict__

    def __getattr__(name: str) -> object:  # noqa: N807 - the module hook's name
        if name not in table:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        namespace[name] = getattr(importlib.import_module(table[name]), name)
        return namespace[name]

    def __dir__() -> list[str]:  # noqa: N807
        return sorted([*namespace, *table])

    return __getattr__, __dir__


__getattr__, __dir__ = lazy_attributes(__name__, LAZY)
