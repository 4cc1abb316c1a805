"""The base of the three tasks: what every LightningModule here does the same way.

`Task` applies the learning-rate schedule before each training step (warm-up × the schedule's shape at the
training progress × any task factor), logs throughput and the learning rate after it, routes validation and test
batches to one `_eval_step`, gathers evaluation sums across processes, and gives a bundle its weights. Each task
keeps only what differs: its loss, its metrics, and the hooks below that it overrides.
"""

from __future__ import annotations

import time

import pytorch_lightning as pl
import torch

from seq2text.tasks.schedule import budget_callback, schedule_shape, training_progress
from seq2text.tasks.shared import FusedAdamClipping

__all__ = ["Task"]


class Task(FusedAdamClipping, pl.LightningModule):
    """Shared training plumbing; subclasses set `bundle_task` and `net`, and define `_eval_step`.

    Hyperparameters it reads (every task has them): `lr`, `warmup_steps`, `lr_schedule`, `min_lr_ratio`.
    """

    bundle_task: str
    net: torch.nn.Module

    def __init__(self) -> None:
        super().__init__()
        self._sums: dict[str, torch.Tensor] = {}
        self._clock: float | None = None

    # ------------------------------------------------------------------------------------------ evaluation
    def _eval_step(self, batch: object, stage: str) -> None:
        raise NotImplementedError

    def validation_step(self, batch: object, batch_idx: int) -> None:
        budget = budget_callback(self.trainer)
        if budget is None or budget.keep_validation_batch(self.trainer):  # a budgeted fit caps each pass
            self._eval_step(batch, "val")

    def validation_fraction(self) -> float:
        """Share of this validation pass's batches that ran (below 1 when a --budget cut the pass)."""
        budget = budget_callback(self.trainer)
        return 1.0 if budget is None else budget.validation_fraction(self.trainer)

    def test_step(self, batch: object, batch_idx: int) -> None:
        """In float32 whatever the training precision: the test figures stored in the bundle are then the ones
        its predictors (float32) give, on every machine."""
        with torch.autocast(self.device.type, enabled=False):
            self._eval_step(batch, "test")

    def add_sums(self, stage: str, *values: torch.Tensor) -> None:
        """Adds one batch's sums (scalars) to the running float64 sums of `stage`."""
        row = torch.stack([v.double() for v in values])  # (width,)
        if stage in self._sums:
            self._sums[stage] += row
        else:
            self._sums[stage] = row

    def gathered_sums(self, stage: str, width: int) -> torch.Tensor:
        """The sums of `stage` over every process, (width,) float64; the running sums start again."""
        sums = self._sums.pop(stage, torch.zeros(width, dtype=torch.float64, device=self.device))
        return self.all_gather(sums).reshape(-1, width).sum(0) if self.trainer.world_size > 1 else sums

    # ------------------------------------------------------------------------------------------ schedule
    def progress(self) -> float:
        """Share of training done (0 → 1): the wall-clock budget if one is set, else optimizer steps."""
        return training_progress(self.trainer)

    def schedule_factor(self) -> float:
        """The schedule's shape at the current progress."""
        hp = self.hparams
        return schedule_shape(hp.lr_schedule, self.progress(), hp.min_lr_ratio)

    def lr_factor(self) -> float:
        """A task's own factor on the learning rate (the language model's plateau decays); 1 by default."""
        return 1.0

    def current_lr(self) -> float:
        """Peak learning rate × warm-up × the schedule's shape × the task's factor."""
        hp = self.hparams
        warm = min(1.0, (self.trainer.global_step + 1) / hp.warmup_steps) if hp.warmup_steps else 1.0
        return hp.lr * warm * self.schedule_factor() * self.lr_factor()

    def apply_lr(self, batch: object) -> None:
        """Sets every parameter group's learning rate for the coming step."""
        lr = self.current_lr()
        for group in self.trainer.optimizers[0].param_groups:
            group["lr"] = lr

    # ------------------------------------------------------------------------------------------ hooks
    def on_train_epoch_start(self) -> None:
        self._clock = None

    def on_train_batch_start(self, batch: object, batch_idx: int) -> None:
        self.apply_lr(batch)
        if self._clock is None:
            self._clock = time.perf_counter()

    def throughput_metrics(self, batch: object, seconds: float) -> dict[str, float]:
        """What one training step processed per second (logged after every step)."""
        return {"train/tokens_per_sec": batch.num_tokens / seconds}

    def on_train_batch_end(self, outputs: object, batch: object, batch_idx: int) -> None:
        now = time.perf_counter()
        for name, value in self.throughput_metrics(batch, max(now - self._clock, 1e-9)).items():
            self.log(name, value)
        self.log("train/lr", self.current_lr())
        self._clock = now

    # ------------------------------------------------------------------------------------------ export
    def export_state(self) -> dict[str, torch.Tensor]:
        """The weights a bundle ships (float32, CPU)."""
        return {k: v.detach().float().cpu().contiguous() for k, v in self.net.state_dict().items()}
