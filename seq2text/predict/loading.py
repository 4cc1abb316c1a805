"""`seq2text.load`: any bundle (or Hub address) to the predictor of its task; a list of bundles to an ensemble."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from seq2text.bundles.io import read_bundle
from seq2text.errors import BundleError
from seq2text.predict.classifier import Classifier, ClassifierEnsemble
from seq2text.predict.forecaster import Forecaster, ForecasterEnsemble
from seq2text.predict.language_model import LanguageModel
from seq2text.predict.regressor import Regressor
from seq2text.predict.translator import Translator, TranslatorEnsemble

__all__ = ["load"]


_PREDICTORS = {LanguageModel.task: LanguageModel, Classifier.task: Classifier}
_PREDICTORS[Translator.task] = Translator
_PREDICTORS[Forecaster.task] = Forecaster
_PREDICTORS[Regressor.task] = Regressor


def load(path: str | Path | Sequence[str | Path]) -> (LanguageModel | Classifier | ClassifierEnsemble | Translator
                                                     | TranslatorEnsemble | Forecaster | ForecasterEnsemble
                                                     | Regressor):
    """Loads any seq2text bundle and returns the predictor of its task; a list of classifier bundles gives a
    `ClassifierEnsemble`, a list of translation bundles a `TranslatorEnsemble`, a list of forecaster bundles a
    `ForecasterEnsemble`."""
    from seq2text.bundles.hub import resolve  # "hf://user/repo[@revision]": the repo's snapshot in the HF cache

    path = resolve(path) if isinstance(path, str | Path) else [resolve(item) for item in path]
    if not isinstance(path, str | Path):
        paths = list(path)
        first_task = read_bundle(paths[0]).task if paths else None
        if first_task == Forecaster.task:
            return ForecasterEnsemble.load(paths)
        if first_task == Translator.task:
            return TranslatorEnsemble.load(paths)
        return ClassifierEnsemble.load(paths)
    bundle_task = read_bundle(path).task
    if bundle_task not in _PREDICTORS:
        raise BundleError(f"{path} holds a {bundle_task!r} model, which this seq2text version cannot load")
    return _PREDICTORS[bundle_task].load(path)
