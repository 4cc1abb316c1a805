"""The one table from a task's name (as a bundle stores it) to its parts: predictor, ensemble, evaluation of files,
served endpoints and model card. Everything that depends on a bundle's task asks `task_parts(bundle_task)`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from seq2text.errors import BundleError
from seq2text.predict.classifier import Classifier, ClassifierEnsemble
from seq2text.predict.evaluation import EvaluationFiles, evaluate_labeled, evaluate_text, evaluate_translation
from seq2text.predict.forecaster import Forecaster, ForecasterEnsemble
from seq2text.predict.language_model import LanguageModel, LanguageModelEnsemble
from seq2text.predict.regressor import Regressor, RegressorEnsemble
from seq2text.predict.translator import Translator, TranslatorEnsemble, served_info

__all__ = ["TASKS", "ModelCard", "TaskParts", "TextRoute", "task_parts"]


@dataclass(frozen=True)
class TextRoute:
    """A predictor's batched HTTP endpoint: `POST path {"texts": [...]}` → `{key: method(texts)}`; `continuous`:
    sentences may join and leave a running search between steps (`--batching continuous`)."""

    path: str
    key: str
    method: str
    continuous: bool = False


@dataclass(frozen=True)
class ModelCard:
    """What a task's Hub model card says: `label` (after "An LSTM"), the Hub's `pipeline` tag, the Python `code`
    and shell `command` of "How to use" (`{repo}` is the repo id; translation's `{example}` a quoted source sentence,
    forecasting's `{columns}` the history's columns), and the `imports` the code needs before seq2text's."""

    label: str
    pipeline: str | None
    code: tuple[str, ...]
    command: str | None = None
    imports: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskParts:
    """What one task is made of, outside training: the `predictor` class (`load(path)`), the `ensemble` class
    (`load(paths)`), and:

    Attributes:
        evaluate: `seq2text evaluate`: (predictor or ensemble, files) → scores (None: not scored).
        card: its Hub model card.
        route: the served text endpoint (None: the task is served through its own route only).
        own_route: a served endpoint of the task's own, whose request is not a list of texts.
        info: what `GET /info` adds for the task (e.g. translation's languages and sacreBLEU signature).
    """

    predictor: type
    ensemble: type
    evaluate: Callable[[Any, EvaluationFiles], dict] | None
    card: ModelCard
    route: TextRoute | None = None
    own_route: str | None = None
    info: Callable[[Any], dict] | None = None


_LOAD = 'seq2text.load("hf://{repo}")'
TASKS: dict[str, TaskParts] = {
    LanguageModel.task: TaskParts(
        LanguageModel, LanguageModelEnsemble, evaluate_text,
        ModelCard("language model", "text-generation",
                  (f"lm = {_LOAD}", 'print(lm.generate("the", max_tokens=20, seed=0))',
                   'print(lm.perplexity(["the company said it expects a profit"]))'),
                  'seq2text generate --model hf://{repo} --prompt "the"'),
        TextRoute("/score", "log_probs", "score"), own_route="/generate"),
    Classifier.task: TaskParts(
        Classifier, ClassifierEnsemble, evaluate_labeled,
        ModelCard("text classifier", "text-classification",
                  (f"classifier = {_LOAD}", 'print(classifier.predict(["a gripping, funny film"]))',
                   'print(classifier.predict_proba(["a gripping, funny film"]))'),
                  "seq2text classify --model hf://{repo} < texts.txt"),
        TextRoute("/classify", "probabilities", "predict_proba")),
    Regressor.task: TaskParts(
        Regressor, RegressorEnsemble, evaluate_labeled,
        ModelCard("text regressor", None, (f"regressor = {_LOAD}", 'print(regressor.predict(["a fine film"]))')),
        TextRoute("/predict", "values", "predict")),
    Translator.task: TaskParts(
        Translator, TranslatorEnsemble, evaluate_translation,
        ModelCard("translation model", "translation",
                  (f"translator = {_LOAD}", "print(translator.translate([{example}], beam_size=5))"),
                  "seq2text translate --model hf://{repo} < source.txt > translation.txt"),
        TextRoute("/translate", "translations", "translate_batch", continuous=True), info=served_info),
    Forecaster.task: TaskParts(
        Forecaster, ForecasterEnsemble, None,
        ModelCard("time-series forecaster", "time-series-forecasting",
                  (f"forecaster = {_LOAD}", 'history = pd.read_csv("history.csv")  # columns {columns}',
                   "print(forecaster.forecast(history))"),
                  "seq2text forecast --model hf://{repo} --input history.csv", imports=("import pandas as pd",)),
        own_route="/forecast"),
}


def task_parts(task: str, where: str = "this bundle") -> TaskParts:
    """The parts of `task`; a BundleError for a task this version does not know names the ones it does."""
    try:
        return TASKS[task]
    except KeyError:
        raise BundleError(f"{where} holds a {task!r} model, which this seq2text version cannot load (it knows "
                          f"{', '.join(sorted(TASKS))})") from None
