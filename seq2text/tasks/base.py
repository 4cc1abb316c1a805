"""`Task`, what every LightningModule here does the same way: optimizer and learning-rate schedule, loss
normalised over the global batch, one `_eval_step` for validation and test, evaluation sums gathered across
processes, throughput logs and the bundle's weights. Each task keeps its loss, its metrics and its overrides."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import asdict, is_dataclass

import pytorch_lightning as pl
import torch
import torch.distributed as dist

from seq2text.tasks.config import Optimization
from seq2text.tasks.schedule import budget_callback, schedule_shape, training_progress

__all__ = ["Task", "shipped"]


class Task(pl.LightningModule):
    """Shared training plumbing; subclasses set `bundle_task` and `net`, and define `_eval_step` and `_log_eval`.
    `optim` is checked here; `language_model`: the task may use `sgd` and the `plateau` schedule."""

    bundle_task: str
    net: torch.nn.Module
    _eval_step: Callable[[object, str], None]  # a validation or test batch of `stage`
    _log_eval: Callable[[str], None]  # logs the scores of `stage` at the end of its pass

    def __init__(self, optim: Optimization, language_model: bool = False) -> None:
        super().__init__()
        optim.check(language_model)
        self.optim = optim
        self._sums: dict[str, torch.Tensor] = {}
        self._clock: float | None = None

    def save_settings(self) -> None:
        """`save_hyperparameters()` for the calling constructor, with each group (a dataclass) as a plain dict, as
        LightningCLI gives them: checkpoints then hold no objects and load with `weights_only=True`."""
        self.save_hyperparameters(frame=inspect.currentframe().f_back)
        self.hparams.update({k: asdict(v) for k, v in self.hparams.items() if is_dataclass(v)})

    def global_mean(self, total: torch.Tensor, count: int) -> torch.Tensor:
        """`total / count`; under DDP `total × world / (count summed over the ranks)`, so that DDP's gradient average
        is the gradient of the mean over the whole global batch (fairseq's normalisation).

        Args:
            total: the summed loss of this rank's batch, ().
            count: the items (tokens, texts) it was summed over.
        """
        world = self.trainer.world_size if self._trainer is not None else 1
        if world == 1 or not dist.is_available() or not dist.is_initialized():
            return total / max(count, 1)
        counts = torch.tensor(float(count), device=total.device)
        dist.all_reduce(counts)
        return total * world / counts.clamp_min(1.0)

    # ------------------------------------------------------------------------------------------ evaluation
    def validation_step(self, batch: object, batch_idx: int) -> None:
        budget = budget_callback(self.trainer)
        if budget is None or budget.keep_validation_batch(self.trainer):  # a budgeted fit caps each pass
            self._eval_step(batch, "val")

    def validation_fraction(self) -> float:
        """Share of this validation pass's batches that ran (below 1 when a --budget cut the pass)."""
        budget = budget_callback(self.trainer)
        return 1.0 if budget is None else budget.validation_fraction(self.trainer)

    def on_validation_epoch_end(self) -> None:
        self._log_eval("val")

    def on_test_epoch_end(self) -> None:
        self._log_eval("test")

    def test_step(self, batch: object, batch_idx: int) -> None:
        """In float32 whatever the training precision, as the bundle's predictors run."""
        with torch.autocast(self.device.type, enabled=False):
            self._eval_step(batch, "test")

    def add_sums(self, stage: str, *values: torch.Tensor) -> None:
        """Adds one batch's sums (scalars) to the running float64 sums of `stage`."""
        row = torch.stack([v.double() for v in values])  # (width,)
        self._sums[stage] = self._sums[stage] + row if stage in self._sums else row

    def gathered_sums(self, stage: str, width: int) -> torch.Tensor:
        """The sums of `stage` over every process, (width,) float64; the running sums start again."""
        sums = self._sums.pop(stage, torch.zeros(width, dtype=torch.float64, device=self.device))
        return self.all_gather(sums).reshape(-1, width).sum(0) if self.trainer.world_size > 1 else sums

    # ------------------------------------------------------------------------------------------ schedule
    def progress(self) -> float:
        """Share of training done (0 → 1): the wall-clock budget if one is set, else optimizer steps."""
        return training_progress(self.trainer)

    def lr_factor(self) -> float:
        """A task's own factor on the learning rate (the language model's plateau decays); 1 by default."""
        return 1.0

    def current_lr(self) -> float:
        """Peak learning rate × warm-up × the schedule's shape × the task's factor."""
        o = self.optim
        warm = min(1.0, (self.trainer.global_step + 1) / o.warmup_steps) if o.warmup_steps else 1.0
        shape = schedule_shape(o.lr_schedule, self.progress(), o.min_lr_ratio, o.stlr_cut_frac, o.stlr_ratio)
        return o.lr * warm * shape * self.lr_factor()

    def apply_lr(self, batch: object) -> None:
        """Sets every parameter group's learning rate for the coming step."""
        lr = self.current_lr()
        for group in self.trainer.optimizers[0].param_groups:
            group["lr"] = lr

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.make_optimizer(self.parameters())

    def make_optimizer(self, params: object) -> torch.optim.Optimizer:
        """`optim.optimizer` over `params` (parameters or groups). Adam/AdamW run the fused kernel (far faster on a
        CPU) except under a loss scaler (`16-mixed`), for which Lightning clips (`configure_gradient_clipping`)."""
        o = self.optim
        if o.optimizer == "sgd":
            return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
        adam = torch.optim.AdamW if o.optimizer == "adamw" else torch.optim.Adam
        return adam(params, lr=o.lr, weight_decay=o.weight_decay, betas=tuple(o.betas), fused=not self._loss_scaled())

    def _loss_scaled(self) -> bool:
        return self._trainer is not None and str(self.trainer.precision).startswith("16")

    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer, gradient_clip_val: float | None = None,
                                    gradient_clip_algorithm: str | None = None) -> None:
        """Lightning refuses to clip for a fused optimizer (under a loss scaler it would clip scaled gradients);
        without a scaler (fp32, bf16) the clipping is done here."""
        if self._loss_scaled() or not gradient_clip_val:
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)
        elif gradient_clip_algorithm == "value":
            torch.nn.utils.clip_grad_value_(self.parameters(), gradient_clip_val)
        else:
            torch.nn.utils.clip_grad_norm_(self.parameters(), gradient_clip_val)

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
        return shipped(self.net.state_dict())


def shipped(state: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    """Weights as a bundle ships them: float32, CPU, contiguous, each name after `prefix`."""
    return {f"{prefix}{k}": v.detach().float().cpu().contiguous() for k, v in state.items()}
