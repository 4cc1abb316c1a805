"""The one table from a task's name (as a bundle stores it) to its parts: predictor, ensemble and served text
endpoint. Everything that depends on a bundle's task asks here instead of comparing task-name strings.

    parts = task_parts(bundle_task)     # a BundleError names the known tasks
    predictor = parts.predictor.load(path)
"""

from __future__ import annotations

from dataclasses import dataclass

from seq2text.errors import BundleError
from seq2text.predict.classifier import Classifier, ClassifierEnsemble
from seq2text.predict.forecaster import Forecaster, ForecasterEnsemble
from seq2text.predict.language_model import LanguageModel
from seq2text.predict.regressor import Regressor
from seq2text.predict.translator import Translator, TranslatorEnsemble

__all__ = ["TASKS", "TaskParts", "TextRoute", "task_parts"]


@dataclass(frozen=True)
class TextRoute:
    """A predictor's batched HTTP endpoint: `POST path {"texts": [...]}` → `{key: method(texts)}`."""

    path: str
    key: str
    method: str


@dataclass(frozen=True)
class TaskParts:
    """What one task is made of, outside training.

    Attributes:
        predictor: the class whose `load(path)` reads one bundle of the task.
        ensemble: the class whose `load(paths)` combines several (None: the task has no ensemble).
        route: the served text endpoint (None: the task is served through its own routes, e.g. forecasting).
    """

    predictor: type
    ensemble: type | None
    route: TextRoute | None


TASKS: dict[str, TaskParts] = {
    LanguageModel.task: TaskParts(LanguageModel, None, TextRoute("/score", "log_probs", "score")),
    Classifier.task: TaskParts(Classifier, ClassifierEnsemble, TextRoute("/classify", "probabilities",
                                                                         "predict_proba")),
    Regressor.task: TaskParts(Regressor, None, TextRoute("/predict", "values", "predict")),
    Translator.task: TaskParts(Translator, TranslatorEnsemble, TextRoute("/translate", "translations", "translate")),
    Forecaster.task: TaskParts(Forecaster, ForecasterEnsemble, None),
}


def task_parts(task: str, where: str = "this bundle") -> TaskParts:
    """The parts of `task`.

    Raises:
        BundleError: a task this version of seq2text does not know, naming the ones it does.
    """
    try:
        return TASKS[task]
    except KeyError:
        raise BundleError(f"{where} holds a {task!r} model, which this seq2text version cannot load (it knows "
                          f"{', '.join(sorted(TASKS))})") from None
