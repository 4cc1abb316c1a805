"""Learning-rate schedule maths: the shape of each schedule, and how far training has come (the wall-clock
budget if one is set, else optimizer steps)."""

from __future__ import annotations

import math

import pytorch_lightning as pl

from seq2text.tasks.callbacks import budget_callback

__all__ = ["budget_callback", "epochs_done", "schedule_shape", "step_progress", "training_progress"]


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
    """Share of training done (0 → 1): the wall-clock budget if one is set, else optimizer steps."""
    budget = budget_callback(trainer)
    return budget.progress() if budget is not None else step_progress(trainer)


def step_progress(trainer: pl.Trainer) -> float:
    """Optimizer steps taken (which checkpoints restore exactly) / steps that `max_steps` or `max_epochs` allow (0
    when unbounded)."""
    total = trainer.estimated_stepping_batches
    return min(1.0, trainer.global_step / total) if math.isfinite(total) and total > 0 else 0.0


def epochs_done(trainer: pl.Trainer) -> float:
    """Epochs trained so far, fractions included, from the optimizer step count."""
    batches = trainer.num_training_batches
    if not batches or not math.isfinite(batches):
        return float(trainer.current_epoch)
    return trainer.global_step / math.ceil(batches / trainer.accumulate_grad_batches)
