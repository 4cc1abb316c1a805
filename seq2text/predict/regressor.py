"""The text regressor's predictor (a number per text, one per quantile, or a distribution over the target values,
read as a classifier reads it) and the ensemble of regressors (the mean of the members' outputs)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from seq2text.errors import BundleError, DataError
from seq2text.nn.classifier import ClassifierConfig, RNNClassifier
from seq2text.predict.metrics import regression_scores, regression_sums
from seq2text.predict.shared import SAME_QUANTILES, Ensemble, Rule, _read, _str_list, _TextHead
from seq2text.text.reading import ClassifierReading
from seq2text.text.tokenizer import Tokenizer

__all__ = ["Regressor", "RegressorEnsemble", "distribution_median", "ordinal_median"]

SAME_SUPPORT: Rule = (lambda member: (member.support, member.ordinal), "predicts over the values (support, ordinal) "
                      "{mine}, member 0 over {first}; ensemble models trained with the same objective and values")


def distribution_median(probabilities: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """The median of each distribution over `support`: probabilities (N, K) (rows summing to 1), support (K,)
    increasing → (N,), the first value whose cumulative probability reaches 1/2 (it minimises the expected absolute
    error)."""
    below = (probabilities.float().cumsum(dim=-1) < 0.5).sum(dim=-1)  # (N,) values wholly below the median
    return support[below.clamp(max=support.numel() - 1)]


def ordinal_median(exceed: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """The median of ordinal outputs: exceed (N, K - 1), P(target > support[k]) for each k but the last; support (K,)
    increasing → (N,), the value above as many of them as have P > 1/2."""
    return support[(exceed > 0.5).sum(dim=-1)]


class _ValuePredictor:
    """Point predictions and scores from `outputs`, shared by a regressor and an ensemble of them."""

    quantiles: tuple[float, ...]
    support: tuple[float, ...]
    ordinal: bool

    def outputs(self, texts: Sequence[str]) -> torch.Tensor:
        raise NotImplementedError

    def predict(self, texts: Sequence[str]) -> list[float]:
        """The point prediction of each text: the median where quantiles or a distribution were trained."""
        outputs = self.outputs(texts)
        if self.support:
            median = ordinal_median if self.ordinal else distribution_median
            return median(outputs, torch.tensor(self.support, dtype=torch.float64)).tolist()
        return outputs[:, self.quantiles.index(0.5) if self.quantiles else 0].tolist()

    def evaluate(self, texts: Sequence[str], targets: Sequence[float | str]) -> dict[str, float]:
        """MAE and RMSE of the point predictions against `targets` (numbers, or the strings of a file's column);
        see `seq2text.predict.metrics.regression_scores`, the task's own."""
        if len(texts) != len(targets):
            raise DataError(f"{len(texts)} texts but {len(targets)} targets; they must align")
        try:
            gold = torch.tensor([float(target) for target in targets], dtype=torch.float64)  # (N,)
        except ValueError as error:
            raise DataError(f"a target is not a number ({error}); the target column must hold numbers") from None
        return regression_scores(regression_sums(torch.tensor(self.predict(texts), dtype=torch.float64), gold))


class Regressor(_TextHead, _ValuePredictor):
    """A trained text regressor: a number per text (e.g. a review's rating), read as in training.

    Args:
        net: the network (eval mode); its head gives one output, one per quantile, one logit per support value, or
            (ordinal) one per support value but the last.
        reading: how texts are read (as a classifier's).
        quantiles: the quantile of each output (empty: one point output).
        support: the target values of a distribution or ordinal head, increasing (empty: neither).
        ordinal: the head is ordinal (`seq2text.tasks.config.TextObjective`).
    """

    task = "text_regression"

    def __init__(self, net: RNNClassifier, tokenizer: Tokenizer, reading: ClassifierReading,
                 quantiles: Sequence[float] = (), metrics: dict | None = None, support: Sequence[float] = (),
                 ordinal: bool = False) -> None:
        width = len(support) - ordinal if support else max(1, len(quantiles))
        if net.config.num_classes != width:
            raise BundleError(f"the network has {net.config.num_classes} outputs but {len(quantiles)} quantiles and "
                              f"{len(support)} support values{' (ordinal)' if ordinal else ''}")
        self.net, self.tokenizer, self.reading = net.eval(), tokenizer, reading
        self.quantiles, self.support, self.metrics = tuple(quantiles), tuple(map(float, support)), metrics or {}
        self.ordinal = ordinal

    @classmethod
    def load(cls, path: str | Path) -> Regressor:
        """Loads a bundle written by `seq2text fit` (raises BundleError for other tasks or broken bundles)."""
        bundle, net = _read(path, cls.task, RNNClassifier, ClassifierConfig)
        regression = bundle.config.get("regression", {})  # bundles before distributions have no support
        return cls(net, bundle.tokenizer, ClassifierReading.from_bundle(bundle.config, path),
                   regression.get("quantiles", []), bundle.metrics, regression.get("support", []),
                   regression.get("loss") == "ordinal")

    def outputs(self, texts: Sequence[str], max_tokens: int | None = None) -> torch.Tensor:
        """The head's outputs, (len(texts), Q): one per quantile, or Q = 1; with a distribution head, the
        probability of each support value, (len(texts), K); ordinal: P(target > support[k]), (len(texts), K - 1)."""
        texts = _str_list(texts, "regressor.predict(['a review'])")
        if self.ordinal:
            return self._outputs(texts, len(self.support) - 1, max_tokens).sigmoid()
        if self.support:
            return self._outputs(texts, len(self.support), max_tokens).softmax(dim=-1)
        return self._outputs(texts, max(1, len(self.quantiles)), max_tokens)


class RegressorEnsemble(Ensemble, _ValuePredictor):
    """Regressors of the same quantiles (or support) predicting together: the mean of their outputs (point and
    quantiles, or the probabilities of a distribution or ordinal head, whose median is the point).

    Args:
        members: the regressors; their quantiles and support must be equal.
    """

    member = Regressor
    rules = (SAME_QUANTILES, SAME_SUPPORT)

    def __init__(self, members: Sequence[Regressor]) -> None:
        members = self._join(members)
        first = members[0]
        self.quantiles, self.support, self.ordinal, self.columns = (first.quantiles, first.support, first.ordinal,
                                                                    first.columns)

    def outputs(self, texts: Sequence[str]) -> torch.Tensor:
        """Mean outputs of the members, (len(texts), Q) (or the probabilities of `Regressor.outputs`)."""
        texts = _str_list(texts, "regressor.predict(['a review'])")
        return torch.stack([member.outputs(texts) for member in self.members]).mean(dim=0)
