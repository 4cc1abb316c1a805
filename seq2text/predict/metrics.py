"""The one evaluation of each task, shared by its training task's validation/test and its predictor's `evaluate`:
sums added across batches and processes, then scored; BLEU, chrF and TER through sacrebleu's metric objects.

Hypotheses are detokenized sentences, references the raw lines of the reference file. sacrebleu's `corpus_score`
takes a *list of reference streams*, each with one line per hypothesis (anything else scores silently wrong), so
`reference_streams` checks the layout first."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from seq2text.errors import DataError

__all__ = ["CorpusScore", "reference_streams", "bleu", "chrf", "ter", "translation_scores", "classification_scores",
           "FORECAST_SUMS", "forecast_sums", "forecast_scores", "regression_sums", "regression_scores", "lm_sums",
           "lm_scores", "str_list"]


@dataclass(frozen=True)
class CorpusScore:
    """A corpus-level score (`bleu`, `chrf` or `ter`, on sacrebleu's 0–100 scale), sacrebleu's signature
    (`nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0`) and one-line summary `text`."""

    name: str
    score: float
    signature: str
    text: str


def str_list(texts: Sequence[str], name: str, one_string: str) -> list[str]:
    """`texts` (called `name`) as a list, checked to hold strings only; `one_string` is the error for one string."""
    if isinstance(texts, str):
        raise TypeError(one_string)
    texts = list(texts)
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"{name}[{bad}] is {type(texts[bad]).__name__}, not str")
    return texts


def reference_streams(references: Sequence[str] | Sequence[Sequence[str]], num_hypotheses: int) -> list[list[str]]:
    """Brings references into sacrebleu's layout: a list of streams, each with `num_hypotheses` lines.

    Args:
        references: one stream (a list of strings, one per hypothesis) or several streams.
    Raises:
        TypeError: a single string, or a mix of strings and lists.
        DataError: a stream whose length is not the number of hypotheses (e.g. references given per
            sentence, `[[ref1], [ref2], ...]`, instead of per stream, `[[ref1, ref2, ...]]`).
    """
    if isinstance(references, str):
        raise TypeError("references must be a list of sentences (one stream) or a list of streams, not one string")
    references = list(references)
    if references and all(isinstance(r, str) for r in references):
        streams = [references]
    elif references and all(isinstance(r, list | tuple) for r in references):
        streams = [list(stream) for stream in references]
    else:
        raise TypeError("references must be a list of strings (one stream) or a list of lists of strings (streams)")
    for number, stream in enumerate(streams):
        if len(stream) != num_hypotheses:
            layout = (" It looks like one list of references per sentence; sacrebleu wants streams: "
                      "[[ref_1, ..., ref_n]] for one reference per sentence." if len(streams) == num_hypotheses else "")
            raise DataError(f"reference stream {number} has {len(stream)} lines for {num_hypotheses} hypotheses; "
                            f"every stream needs one line per hypothesis.{layout}")
        bad = next((i for i, r in enumerate(stream) if not isinstance(r, str)), None)
        if bad is not None:
            raise TypeError(f"reference stream {number}, line {bad} is {type(stream[bad]).__name__}, not str")
    return streams


def _score(name: str, metric: object, hypotheses: Sequence[str],
           references: Sequence[str] | Sequence[Sequence[str]]) -> CorpusScore:
    hypotheses = str_list(hypotheses, "hypotheses", "hypotheses must be a list of sentences, not one string")
    if not hypotheses:
        raise DataError("no hypotheses to score")
    streams = reference_streams(references, len(hypotheses))
    result = metric.corpus_score(hypotheses, streams)
    return CorpusScore(name, float(result.score), str(metric.get_signature()), str(result))


def bleu(hypotheses: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]],
         tokenize: str | None = None, lowercase: bool = False) -> CorpusScore:
    """Corpus BLEU (sacreBLEU defaults: 13a tokenization, exponential smoothing).

    Args:
        hypotheses: detokenized system output, one sentence each.
        references: the raw reference lines (one stream), or several streams.
        tokenize: sacrebleu tokenizer (`13a` by default; `none` for pre-tokenized text).
        lowercase: case-insensitive BLEU.
    """
    from sacrebleu.metrics import BLEU
    return _score("bleu", BLEU(tokenize=tokenize, lowercase=lowercase), hypotheses, references)


def chrf(hypotheses: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]]) -> CorpusScore:
    """Corpus chrF (character n-grams, β = 2)."""
    from sacrebleu.metrics import CHRF
    return _score("chrf", CHRF(), hypotheses, references)


def ter(hypotheses: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]]) -> CorpusScore:
    """Corpus TER (translation edit rate; lower is better)."""
    from sacrebleu.metrics import TER
    return _score("ter", TER(), hypotheses, references)


def translation_scores(hypotheses: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]]
                       ) -> dict[str, CorpusScore]:
    """BLEU, chrF and TER of the same output: `{"bleu": ..., "chrf": ..., "ter": ...}`."""
    return {"bleu": bleu(hypotheses, references), "chrf": chrf(hypotheses, references),
            "ter": ter(hypotheses, references)}


def classification_scores(predicted: Sequence[str], gold: Sequence[str], labels: Sequence[str]) -> dict:
    """Accuracy and macro-F1 (fractions, as training logs them; macro over `labels`, the model's label set) and the
    confusion counts of `predicted` against `gold`, one label per example each.

    Returns:
        `{"acc", "f1", "examples", "confusion": {"gold->predicted": count}}`.

    Raises:
        DataError: lengths differ, no examples, or a gold label the model does not know.
    """
    predicted, gold, labels = list(predicted), list(gold), list(labels)
    if len(predicted) != len(gold) or not gold:
        raise DataError(f"{len(predicted)} predictions for {len(gold)} gold labels; both must be equal and non-zero")
    unknown = sorted(set(gold) - set(labels))
    if unknown:
        raise DataError(f"gold labels {unknown[:5]} are not among the model's labels {labels}; the file's label "
                        "column must use the labels the model was trained with")
    from torchmetrics.functional.classification import (  # the training metrics' own functions
        multiclass_accuracy,
        multiclass_confusion_matrix,
        multiclass_f1_score,
    )

    index = {label: i for i, label in enumerate(labels)}
    preds = torch.tensor([index[p] for p in predicted])  # (N,) predicted class ids
    target = torch.tensor([index[g] for g in gold])  # (N,) gold class ids
    n = len(labels)
    matrix = multiclass_confusion_matrix(preds, target, n)  # (gold, predicted) counts
    return {"acc": float(multiclass_accuracy(preds, target, n, average="micro")),
            "f1": float(multiclass_f1_score(preds, target, n, average="macro")), "examples": len(gold),
            "confusion": {f"{g}->{p}": int(matrix[i, j]) for i, g in enumerate(labels) for j, p in enumerate(labels)}}


# ------------------------------------------------------------------------------------------------- language models
def lm_sums(nll: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T) token NLL (zero where masked) and its (B, T) mask → (2,) float64 sums: NLL, tokens (add them across
    windows, batches and processes, then call `lm_scores`)."""
    return torch.stack([nll.double().sum(), mask.double().sum()])


def lm_scores(sums: torch.Tensor | Sequence[float], words: float | None = None, chars: float | None = None
              ) -> dict[str, float]:
    """Token loss, word-level perplexity (summed NLL / (words + one eos per line)), bits per character and the
    counts, from `lm_sums` (added up).

    Args:
        words: words + eos of the text (`seq2text.text.reading.count_words`); None: the tokens.
        chars: characters + one per line; None or 0: no `bpc`.
    """
    total, tokens = float(sums[0]), max(float(sums[1]), 1.0)
    words = tokens if words is None else max(float(words), 1.0)
    scores = {"loss": total / tokens, "ppl": math.exp(min(total / words, 700.0)), "tokens": tokens, "words": words}
    if chars:
        scores["bpc"] = total / math.log(2) / chars
    return scores


# ------------------------------------------------------------------------------------------------- regression
def regression_sums(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(n,) point predictions and (n,) targets → (3,) float64 sums: |error|, error², count (add them across
    batches and processes, then call `regression_scores`)."""
    error = predicted.double() - target.double()  # (n,)
    return torch.stack([error.abs().sum(), error.square().sum(), error.new_tensor(float(error.numel()))])


def regression_scores(sums: torch.Tensor | Sequence[float]) -> dict[str, float]:
    """MAE, RMSE and the number of examples from `regression_sums` (added up)."""
    absolute, squared, count = (float(x) for x in sums)
    count = max(count, 1.0)
    return {"mae": absolute / count, "rmse": (squared / count) ** 0.5, "examples": int(count)}


# ------------------------------------------------------------------------------------------------- forecasting
FORECAST_SUMS = ("abs", "squared", "smape", "scaled", "naive_abs", "count")


def forecast_sums(actual: torch.Tensor, predicted: torch.Tensor, mase_scale: torch.Tensor,
                  naive: torch.Tensor | None = None) -> torch.Tensor:
    """The (6,) float64 sums of `FORECAST_SUMS` over windows, steps and variables (add them across batches and
    processes, then call `forecast_scores`) of `actual` and `predicted`, (..., V) in the series' units; `mase_scale`
    (MASE's denominator per window and variable) broadcasts to them; `naive`: the seasonal-naive forecast or None."""
    actual, predicted = actual.double(), predicted.double()
    error = (predicted - actual).abs()
    denominator = actual.abs() + predicted.abs()
    smape = torch.where(denominator > 0, 200 * error / denominator.clamp(min=1e-300), torch.zeros_like(error))
    naive_abs = (naive.double() - actual).abs().sum() if naive is not None else error.new_zeros(())
    return torch.stack([error.sum(), error.square().sum(), smape.sum(), (error / mase_scale.double()).sum(),
                        naive_abs, error.new_tensor(float(error.numel()))])


def forecast_scores(sums: torch.Tensor) -> dict[str, float]:
    """MAE, RMSE, sMAPE (percent), MASE (against the in-sample seasonal-naive error of each series' training
    part) and `rel_mae_snaive` (MAE over the seasonal-naive forecast's MAE on the same windows)."""
    total, squared, smape, scaled, naive_abs, count = (float(x) for x in sums)
    count = max(count, 1.0)
    scores = {"mae": total / count, "rmse": math.sqrt(squared / count), "smape": smape / count,
              "mase": scaled / count}
    if naive_abs > 0:
        scores["rel_mae_snaive"] = total / naive_abs
    return scores
