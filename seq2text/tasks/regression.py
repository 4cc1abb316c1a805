"""TextRegressionTask: a number from a text (e.g. a review's 1–10 rating) on the classifier's encoder and head."""

from __future__ import annotations

import torch

from seq2text.data.batches import ClassificationBatch
from seq2text.nn.loss import regression_loss
from seq2text.predict.metrics import regression_scores, regression_sums
from seq2text.tasks.classification import ClassificationTask
from seq2text.tasks.config import ClassifierNetwork, FineTuning, Objective, Optimization

__all__ = ["TextRegressionTask"]


class TextRegressionTask(ClassificationTask):
    """Trains an `RNNClassifier` whose head gives one number (or one per quantile); reports MAE and RMSE. The
    arguments are `ClassificationTask`'s without the label ones, and:

    Args:
        objective: the loss and its quantiles (`seq2text.tasks.config.Objective`).
    """

    bundle_task = "text_regression"

    def __init__(
        self,
        vocab_size: int,
        objective: Objective = Objective(),
        network: ClassifierNetwork = ClassifierNetwork(),
        fine_tuning: FineTuning = FineTuning(),
        optim: Optimization = Optimization("adamw", 2e-3, 0.01, lr_schedule="slanted_triangular"),
        pretrained_lm: str | None = None,
        word_vectors: str | None = None,
    ) -> None:
        quantiles = objective.resolved()
        super().__init__(vocab_size, max(1, len(quantiles)), None, network, fine_tuning, optim, pretrained_lm,
                         word_vectors)
        self.objective, self.quantiles = objective, quantiles

    def _take_labels(self, datamodule: object) -> None:
        """Numbers have no label set; the head's bias starts at the training mean (a fresh fit only)."""
        mean = getattr(datamodule, "target_mean", None)
        if mean is not None and self.net is not None and self.trainer.global_step == 0:
            with torch.no_grad():
                self.net.head[-1].bias.fill_(mean)

    def _build_metrics(self, num_classes: int) -> None:
        """No classification metrics: evaluation adds up errors (`_eval_step`)."""

    # ------------------------------------------------------------------------------------------ steps
    def _losses(self, batch: ClassificationBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Outputs (n, Q), targets (n,) and the loss of each real (non-filler) text."""
        outputs, targets = self._forward(batch)
        loss, delta = self.objective.loss, self.objective.huber_delta
        return outputs, targets, regression_loss(outputs, targets, loss, self.quantiles, delta)

    def point(self, outputs: torch.Tensor) -> torch.Tensor:
        """The point prediction, (n,): the median where quantiles are predicted."""
        return outputs[:, self.quantiles.index(0.5) if self.quantiles else 0]

    def training_step(self, batch: ClassificationBatch, batch_idx: int) -> torch.Tensor:
        _, targets, losses = self._losses(batch)
        total, count = losses.sum(), max(targets.numel(), 1)
        self.log("train/loss", total.detach() / count, prog_bar=True, batch_size=count)
        return self.global_mean(total, count)

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

    def bundle_extra(self) -> dict:
        """What the `Regressor` needs beside the network: the loss and the quantiles of its outputs."""
        return {"regression": {"loss": self.objective.loss, "quantiles": list(self.quantiles)}}
