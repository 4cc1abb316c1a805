"""Training callbacks: a wall-clock budget that stops training and drives budget-aware LR schedules."""

from __future__ import annotations

import math
import re
import time

import pytorch_lightning as pl

from seq2text.errors import ConfigError

__all__ = ["WallClockBudget", "parse_duration", "training_progress", "schedule_shape"]


def parse_duration(text: str | float | int) -> float:
    """`"15m"`, `"1h30m"`, `"900s"`, `"90"` or a number → seconds."""
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        parts = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text)
        if not text.strip() or parts is None:
            raise ConfigError(f"cannot read duration {text!r}; write e.g. 15m, 1h30m, 900s or 900")
        hours, minutes, secs = (float(p) if p else 0.0 for p in parts.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    if seconds <= 0:
        raise ConfigError(f"duration {text!r} must be positive")
    return seconds


class WallClockBudget(pl.Callback):
    """Stops training once `budget` of wall-clock time (training and validation) has passed.

    Tasks read `progress()` (0 → 1) so that their learning-rate schedules anneal to the end of the budget
    rather than to an epoch count. Time already spent before a resume is kept in checkpoints.

    Args:
        budget: a duration such as `15m`, `1h`, `900s`, or seconds.
    """

    def __init__(self, budget: str | float) -> None:
        self.seconds = parse_duration(budget)
        self._start: float | None = None
        self._spent_before = 0.0

    def elapsed(self) -> float:
        return self._spent_before + (time.monotonic() - self._start if self._start is not None else 0.0)

    def progress(self) -> float:
        return min(1.0, self.elapsed() / self.seconds)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.monotonic()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        if self.elapsed() >= self.seconds:
            trainer.should_stop = True

    def state_dict(self) -> dict[str, float]:
        return {"spent": self.elapsed()}

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self._spent_before = float(state_dict.get("spent", 0.0))


def schedule_shape(schedule: str, progress: float, min_lr_ratio: float = 0.0, cut_frac: float = 0.1,
                   ratio: float = 32.0) -> float:
    """The learning-rate factor of `schedule` at `progress` (0 → 1); `constant`/`plateau` give 1.

    `cosine` and `linear` anneal from 1 to `min_lr_ratio`; `slanted_triangular` (ULMFiT) rises for the first
    `cut_frac` of training from 1/ratio to 1, then falls back to 1/ratio.
    """
    if schedule == "cosine":
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "linear":
        return 1 - (1 - min_lr_ratio) * progress
    if schedule == "slanted_triangular":
        rise = progress / cut_frac if progress < cut_frac else 1 - (progress - cut_frac) / (1 - cut_frac)
        return (1 + rise * (ratio - 1)) / ratio
    return 1.0


def training_progress(trainer: pl.Trainer) -> float:
    """Share of training done (0 → 1): the wall-clock budget if one is set, else steps or epochs."""
    for callback in trainer.callbacks:
        if isinstance(callback, WallClockBudget):
            return callback.progress()
    if trainer.max_steps and trainer.max_steps > 0:
        return min(1.0, trainer.global_step / trainer.max_steps)
    if trainer.max_epochs and trainer.max_epochs > 0:
        batches = trainer.num_training_batches
        within = trainer.fit_loop.epoch_loop.batch_progress.current.ready / batches if batches else 0.0
        return min(1.0, (trainer.current_epoch + within) / trainer.max_epochs)
    return 0.0
