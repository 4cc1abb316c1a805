"""`seq2text evaluate`'s part of each task (`seq2text.registry.TaskParts.evaluate`): files in, the predictor's own
evaluation (`seq2text.predict.metrics`) out, as a JSON-ready dict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seq2text.errors import ConfigError
from seq2text.predict.metrics import translation_scores
from seq2text.text.reading import read_labeled, read_parallel
from seq2text.text.textio import atomic_write_text, read_lines

__all__ = ["EvaluationFiles", "evaluate_labeled", "evaluate_text", "evaluate_translation"]


@dataclass(frozen=True)
class EvaluationFiles:
    """What `seq2text evaluate` was given.

    Attributes:
        models: the bundles (several: an ensemble).
        input: language models: a text file, one line per sentence; classifiers and regressors: a labeled TSV/CSV.
        text_column, label_column: the labeled file's columns (None: the training ones).
        src, ref, beam, batch_size, output: translation's source file and raw reference file (aligned line by
            line), beam size (None: the bundle's), sentences decoded together, and a file for the hypotheses.
    """

    models: tuple[str, ...]
    input: str | None = None
    text_column: str | None = None
    label_column: str | None = None
    src: str | None = None
    ref: str | None = None
    beam: int | None = None
    batch_size: int = 64
    output: str | None = None

    def require(self, task: str, *names: str) -> None:
        """Raises a ConfigError naming the options a `task` model needs and did not get."""
        if any(getattr(self, name) is None for name in names):
            raise ConfigError(f"{self.models[0]} holds a {task} model: give "
                              f"{' and '.join(f'--{name} FILE' for name in names)}")


def evaluate_text(lm: Any, files: EvaluationFiles) -> dict:  # noqa: ANN401 - a LanguageModel or its ensemble
    """Perplexity (with loss, bits per character and counts) of `--input` read as one running text."""
    files.require(lm.task, "input")
    lines = read_lines(files.input)
    scores = lm.evaluate(lines)
    return {"perplexity": scores.pop("ppl"), **scores, "lines": len(lines), "input": files.input}


def evaluate_labeled(predictor: Any, files: EvaluationFiles) -> dict:  # noqa: ANN401 - a classifier or regressor
    """A classifier's accuracy, macro-F1 and confusion counts, or a regressor's MAE and RMSE, on the labeled
    `--input` (columns: `--text-column`/`--label-column`, else the training ones)."""
    files.require(predictor.task, "input")
    texts, gold = read_labeled(files.input, files.text_column or predictor.columns[0],
                               files.label_column or predictor.columns[1])
    return {**predictor.evaluate(texts, gold), "input": files.input, "models": list(files.models)}


def evaluate_translation(translator: Any, files: EvaluationFiles) -> dict:  # noqa: ANN401 - a Translator or ensemble
    """sacreBLEU's BLEU, chrF and TER (scores and signatures) of `--src` translated against the raw `--ref`."""
    files.require(translator.task, "src", "ref")
    if files.batch_size < 1 or (files.beam is not None and files.beam < 1):
        raise ConfigError("--batch-size and --beam must be positive integers")
    sources, references = read_parallel(files.src, files.ref)
    hypotheses = translator.translate(sources, beam_size=files.beam, batch_size=files.batch_size)
    if files.output:
        atomic_write_text(files.output, "\n".join(hypotheses) + "\n")
    scores = translation_scores(hypotheses, references)
    result: dict[str, object] = {}
    for name, score in scores.items():
        result[name], result[f"{name}_signature"] = round(score.score, 2), score.signature
    return {**result, "bleu_summary": scores["bleu"].text, "lines": len(sources),
            "beam": files.beam or translator.search.beam_size, "src": files.src, "ref": files.ref}
