"""The text regressor's predictor: a number per text (or one per quantile), read as a classifier reads it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from seq2text.bundles.io import read_bundle
from seq2text.errors import BundleError, DataError
from seq2text.nn.classifier import ClassifierConfig, RNNClassifier
from seq2text.predict.metrics import regression_scores, regression_sums
from seq2text.predict.shared import _build, _str_list
from seq2text.text.reading import ClassifierReading, pad_ids
from seq2text.text.tokenizer import Tokenizer

__all__ = ["Regressor"]


class Regressor:
    """A trained text regressor: a number per text (e.g. a review's rating), read as in training.

    Args:
        net: the network (eval mode); its head gives one output, or one per quantile.
        tokenizer: its tokenizer.
        reading: how texts are read (as a classifier's).
        quantiles: the quantile of each output (empty: one point output).
        metrics: the metrics recorded at training time.
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
        bundle = read_bundle(path, task=cls.task)
        net = _build(bundle, RNNClassifier, ClassifierConfig)
        quantiles = bundle.config.get("regression", {}).get("quantiles", [])
        return cls(net, bundle.tokenizer, ClassifierReading.from_bundle(bundle.config, path), quantiles,
                   bundle.metrics)

    @torch.inference_mode()
    def outputs(self, texts: Sequence[str], max_tokens: int | None = None) -> torch.Tensor:
        """The head's outputs, (len(texts), Q): one per quantile, or Q = 1."""
        texts = _str_list(texts, "regressor.predict(['a review'])")
        ids = self.reading.encode(self.tokenizer, texts)
        out = torch.empty(len(ids), max(1, len(self.quantiles)))
        for rows in self.reading.batches(ids, max_tokens):
            text, lengths = pad_ids([ids[i] for i in rows])  # (B, T), (B,)
            out[rows] = self.net(text, lengths).float()
        return out

    def predict(self, texts: Sequence[str]) -> list[float]:
        """The point prediction of each text (the median where quantiles were trained)."""
        point = self.quantiles.index(0.5) if self.quantiles else 0
        return self.outputs(texts)[:, point].tolist()

    def evaluate(self, texts: Sequence[str], targets: Sequence[float]) -> dict[str, float]:
        """MAE and RMSE of the point predictions against `targets`."""
        if len(texts) != len(targets):
            raise DataError(f"{len(texts)} texts but {len(targets)} targets; they must align")
        predicted = torch.tensor(self.predict(texts), dtype=torch.float64)
        return regression_scores(regression_sums(predicted, torch.tensor(targets, dtype=torch.float64)))
