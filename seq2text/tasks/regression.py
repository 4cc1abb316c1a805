"""TextRegressionTask: a number from a text (e.g. a review's 1–10 rating) on the classifier's encoder and head: one
output, one per quantile, or a distribution (or ordinal probabilities) over the target values, their median the
prediction."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from seq2text.data.batches import ClassificationBatch
from seq2text.errors import ConfigError
from seq2text.nn.loss import regression_loss
from seq2text.predict.metrics import regression_scores, regression_sums
from seq2text.predict.regressor import distribution_median, ordinal_median
from seq2text.tasks.classification import ClassificationTask
from seq2text.tasks.config import ClassifierNetwork, FineTuning, Optimization, TextObjective, check_support

__all__ = ["TextRegressionTask"]


class TextRegressionTask(ClassificationTask):
    """Trains an `RNNClassifier` whose head gives one number (or one per quantile, a logit per target value of a
    `distribution`, or one per gap between them, `ordinal`); reports MAE and RMSE. The arguments are
    `ClassificationTask`'s without the label ones, and:

    Args:
        objective: the loss, its quantiles or support (`seq2text.tasks.config.TextObjective`).
    """

    bundle_task = "text_regression"

    def __init__(
        self,
        vocab_size: int,
        objective: TextObjective = TextObjective(),
        network: ClassifierNetwork = ClassifierNetwork(),
        fine_tuning: FineTuning = FineTuning(),
        optim: Optimization = Optimization("adamw", 2e-3, 0.01, lr_schedule="slanted_triangular"),
        pretrained_lm: str | None = None,
        word_vectors: str | None = None,
    ) -> None:
        quantiles = objective.resolved()
        support, ordinal = tuple(objective.support or ()), objective.loss == "ordinal"
        if objective.loss in ("distribution", "ordinal"):
            outputs = len(support) - ordinal if support else None  # None: from the training targets (setup)
        else:
            outputs = max(1, len(quantiles))
        super().__init__(vocab_size, outputs, None, network, fine_tuning, optim, pretrained_lm, word_vectors)
        self.objective, self.quantiles, self.support, self.ordinal = objective, quantiles, support, ordinal

    def _take_labels(self, datamodule: object) -> None:
        """Numbers have no label set. The support of a distribution or ordinal head is the distinct training targets
        (unless given); the head's bias starts from the training targets (`_initial_bias`, a fresh fit)."""
        targets = getattr(datamodule, "train_targets", None)
        if targets is None:
            return
        if self.objective.loss in ("distribution", "ordinal") and not self.support:
            try:
                self.support = check_support(np.unique(targets).tolist())
            except ConfigError as error:
                raise ConfigError(f"the training targets: {error}") from None
            self.hparams.num_classes = len(self.support) - self.ordinal
            self.hparams.objective = {**self.hparams.objective, "support": list(self.support)}  # kept in checkpoints
        if self.net is None:
            self._build(self.hparams.num_classes)
        if self.trainer.global_step == 0:
            with torch.no_grad():
                self.net.head[-1].bias.copy_(self._initial_bias(np.asarray(targets, dtype=np.float64)))

    def _initial_bias(self, targets: np.ndarray) -> torch.Tensor:
        """The head's starting bias, (outputs,): the training mean, the log-frequency of each support value, or
        (ordinal) the log-odds of exceeding each value but the last."""
        if not self.support:
            return torch.full_like(self.net.head[-1].bias, float(targets.mean()))
        counts = np.bincount(self._nearest(torch.from_numpy(targets)).numpy(), minlength=len(self.support)) + 1.0
        if not self.ordinal:
            return torch.from_numpy(np.log(counts / counts.sum())).to(self.net.head[-1].bias)
        above = counts[::-1].cumsum()[::-1][1:]  # (K - 1,) targets above each value but the last
        return torch.from_numpy(np.log(above / (counts.sum() - above))).to(self.net.head[-1].bias)

    def _nearest(self, targets: torch.Tensor) -> torch.Tensor:
        """The index of the support value nearest each target, (n,) int64."""
        support = torch.tensor(self.support, dtype=torch.float64, device=targets.device)  # (K,)
        return torch.bucketize(targets.double(), (support[1:] + support[:-1]) / 2)

    def _build_metrics(self, num_classes: int) -> None:
        """No classification metrics: evaluation adds up errors (`_eval_step`)."""

    # ------------------------------------------------------------------------------------------ steps
    def _losses(self, batch: ClassificationBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Outputs (n, Q) (logits (n, K) of a distribution, (n, K - 1) ordinal), targets (n,) and the loss of each
        real (non-filler) text."""
        outputs, targets = self._forward(batch)
        if self.ordinal:
            return outputs, targets, self._ordinal_loss(outputs, self._nearest(targets))
        if self.support:  # cross-entropy on the nearest support value
            return outputs, targets, F.cross_entropy(outputs, self._nearest(targets), reduction="none")
        loss, delta = self.objective.loss, self.objective.huber_delta
        return outputs, targets, regression_loss(outputs, targets, loss, self.quantiles, delta)

    def _ordinal_loss(self, logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """logits (n, K - 1) of P(target > support[k]), index (n,) of the target's value → (n,): the binary
        cross-entropy of each gap weighted by its width (as a share of the mean width)."""
        support = torch.tensor(self.support, dtype=torch.float32, device=logits.device)  # (K,)
        gaps = support.diff()  # (K - 1,)
        above = (index.unsqueeze(1) > torch.arange(len(gaps), device=logits.device)).float()  # (n, K - 1)
        losses = F.binary_cross_entropy_with_logits(logits, above, reduction="none")  # (n, K - 1)
        return (losses * (gaps / gaps.mean())).sum(dim=-1)

    def point(self, outputs: torch.Tensor) -> torch.Tensor:
        """The point prediction, (n,): the median where quantiles, a distribution or ordinal gaps are predicted."""
        if self.support:
            support = torch.tensor(self.support, dtype=torch.float32, device=outputs.device)  # (K,)
            if self.ordinal:
                return ordinal_median(outputs.sigmoid(), support)
            return distribution_median(outputs.softmax(dim=-1), support)
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
        """What the `Regressor` needs beside the network: the loss, the quantiles of its outputs, the support of a
        distribution."""
        return {"regression": {"loss": self.objective.loss, "quantiles": list(self.quantiles),
                               "support": list(self.support)}}
