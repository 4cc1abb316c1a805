"""The text regressor's predictor (a number per text, or one per quantile, read as a classifier reads it) and the
ensemble of regressors (the mean of the members' outputs)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from seq2text.errors import BundleError, DataError
from seq2text.nn.classifier import ClassifierConfig, RNNClassifier
from seq2text.predict.metrics import regression_scores, regression_sums
from seq2text.predict.shared import SAME_QUANTILES, Ensemble, _read, _str_list, _TextHead
from seq2text.text.reading import ClassifierReading
from seq2text.text.tokenizer import Tokenizer

__all__ = ["Regressor", "RegressorEnsemble"]


class _ValuePredictor:
    """Point predictions and scores from `outputs`, shared by a regressor and an ensemble of them."""

    quantiles: tuple[float, ...]

    def outputs(self, texts: Sequence[str]) -> torch.Tensor:
        raise NotImplementedError

    def predict(self, texts: Sequence[str]) -> list[float]:
        """The point prediction of each text (the median where quantiles were trained)."""
        point = self.quantiles.index(0.5) if self.quantiles else 0
        return self.outputs(texts)[:, point].tolist()

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
        net: the network (eval mode); its head gives one output, or one per quantile.
        reading: how texts are read (as a classifier's).
        quantiles: the quantile of each output (empty: one point output).
    """

    task = "text_regression"

    def __init__(self, net: RNNClassifier, tokenizer: Tokenizer, reading: ClassifierReading,
                 quantiles: Sequence[float] = (), metrics: dict | None = None) -> None:
        if net.config.num_classes != max(1, len(quantiles)):
            raise BundleError(f"the network has {net.config.num_classes} outputs but {len(quantiles)} quantiles")
        self.net, self.tokenizer, self.reading = net.eval(), tokenizer, reading
        self.quantiles, self.metrics = tuple(quantiles), metrics or {}

    @classmethod
    def load(cls, path: str | Path) -> Regressor:
        """Loads a bundle written by `seq2text fit` (raises BundleError for other tasks or broken bundles)."""
        bundle, net = _read(path, cls.task, RNNClassifier, ClassifierConfig)
        quantiles = bundle.config.get("regression", {}).get("quantiles", [])
        return cls(net, bundle.tokenizer, ClassifierReading.from_bundle(bundle.config, path), quantiles,
                   bundle.metrics)

    def outputs(self, texts: Sequence[str], max_tokens: int | None = None) -> torch.Tensor:
        """The head's outputs, (len(texts), Q): one per quantile, or Q = 1."""
        texts = _str_list(texts, "regressor.predict(['a review'])")
        return self._outputs(texts, max(1, len(self.quantiles)), max_tokens)


class RegressorEnsemble(Ensemble, _ValuePredictor):
    """Regressors of the same quantiles predicting together: the mean of their outputs (point and quantiles).

    Args:
        members: the regressors; their quantiles must be equal.
    """

    member = Regressor
    rules = (SAME_QUANTILES,)

    def __init__(self, members: Sequence[Regressor]) -> None:
        members = self._join(members)
        self.quantiles, self.columns = members[0].quantiles, members[0].columns

    def outputs(self, texts: Sequence[str]) -> torch.Tensor:
        """Mean outputs of the members, (len(texts), Q)."""
        texts = _str_list(texts, "regressor.predict(['a review'])")
        return torch.stack([member.outputs(texts) for member in self.members]).mean(dim=0)
