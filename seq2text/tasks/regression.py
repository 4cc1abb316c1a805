"""TextRegressionTask: a number from a text (e.g. a review's 1–10 rating) on the classifier's encoder and head."""

from __future__ import annotations

from typing import Any, Literal

import torch

from seq2text.data.batches import ClassificationBatch
from seq2text.errors import ConfigError
from seq2text.nn.loss import regression_loss
from seq2text.predict.metrics import regression_scores, regression_sums
from seq2text.tasks.classification import ClassificationTask
from seq2text.tasks.shared import global_mean

__all__ = ["TextRegressionTask"]

Loss = Literal["mse", "mae", "huber", "quantile"]


class TextRegressionTask(ClassificationTask):
    """Trains an `RNNClassifier` whose head gives one number (or one per quantile) instead of class scores;
    reports MAE and RMSE. Every argument of `ClassificationTask` applies (encoder, pooling, schedule, an LM to
    start from), except the label ones.

    Args:
        loss: `mse`, `mae`, `huber` or `quantile` (pinball loss on `quantiles`).
        quantiles: the quantiles of `quantile` (must include 0.5, the point prediction).
        huber_delta: where `huber` turns linear (in target units).
        **kwargs: `ClassificationTask`'s arguments.
    """

    bundle_task = "text_regression"

    def __init__(self, loss: Loss = "mse", quantiles: list[float] | None = None, huber_delta: float = 1.0,
                 **kwargs: Any) -> None:  # noqa: ANN401 - jsonargparse resolves them from ClassificationTask
        if loss == "quantile" and not quantiles:
            quantiles = [0.1, 0.5, 0.9]
        if loss != "quantile" and quantiles:
            raise ConfigError("model.quantiles needs model.loss: quantile (the other losses fit one point)")
        if quantiles and (0.5 not in quantiles or sorted(set(quantiles)) != list(quantiles)
                          or not all(0 < q < 1 for q in quantiles)):
            raise ConfigError(f"model.quantiles={quantiles} must increase strictly within (0, 1) and include 0.5")
        if huber_delta <= 0:
            raise ConfigError("model.huber_delta must be > 0")
        kwargs["num_classes"] = max(1, len(quantiles or ()))  # the head's outputs
        super().__init__(**kwargs)
        self.hparams.update(quantiles=quantiles, num_classes=kwargs["num_classes"])  # the values resolved above

    def _take_labels(self, datamodule: object) -> None:
        """Numbers have no label set; the head's bias starts at the training mean (a fresh fit only)."""
        mean = getattr(datamodule, "target_mean", None)
        if mean is not None and self.net is not None and self.trainer.global_step == 0:
            with torch.no_grad():
                self.net.head[-1].bias.fill_(mean)

    def _build_metrics(self, num_classes: int) -> None:
        """No classification metrics: evaluation adds up errors (`_eval_step`)."""

    def setup(self, stage: str) -> None:
        if self.net is None:
            self._build(self.hparams.num_classes)
        super().setup(stage)

    # ------------------------------------------------------------------------------------------ steps
    def _losses(self, batch: ClassificationBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Outputs (n, Q), targets (n,) and the loss of each real (non-filler) text."""
        outputs, targets = self._forward(batch)
        hp = self.hparams
        return outputs, targets, regression_loss(outputs, targets, hp.loss, tuple(hp.quantiles or ()), hp.huber_delta)

    def point(self, outputs: torch.Tensor) -> torch.Tensor:
        """The point prediction, (n,): the median where quantiles are predicted."""
        quantiles = list(self.hparams.quantiles or ())
        return outputs[:, quantiles.index(0.5) if quantiles else 0]

    def training_step(self, batch: ClassificationBatch, batch_idx: int) -> torch.Tensor:
        _, targets, losses = self._losses(batch)
        total, count = losses.sum(), max(targets.numel(), 1)
        self.log("train/loss", total.detach() / count, prog_bar=True, batch_size=count)
        return global_mean(self, total, count)

    def _eval_step(self, batch: ClassificationBatch, stage: str) -> None:
        outputs, targets, losses = self._losses(batch)
        if targets.numel() == 0:  # a filler batch
            return
        self.add_sums(stage, *regression_sums(self.point(outputs), targets), losses.sum())

    def _log_eval(self, stage: str) -> None:
        sums = self.gathered_sums(stage, 4)  # |error|, error², count (regression_sums), loss
        scores = regression_scores(sums[:3])
        self.log(f"{stage}/mae", scores["mae"], prog_bar=True, rank_zero_only=True)
        self.log(f"{stage}/rmse", scores["rmse"], rank_zero_only=True)
        self.log(f"{stage}/loss", float(sums[3]) / max(scores["examples"], 1), rank_zero_only=True)
        self.log(f"{stage}/examples", float(scores["examples"]), rank_zero_only=True)

    def on_test_epoch_end(self) -> None:
        self._log_eval("test")

    def bundle_extra(self) -> dict:
        """What the `Regressor` needs beside the network: the loss and the quantiles of its outputs."""
        return {"regression": {"loss": self.hparams.loss, "quantiles": list(self.hparams.quantiles or ())}}
