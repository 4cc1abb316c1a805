"""Training callbacks: a wall-clock budget, exact resumes, startup time, throughput and one line per validation."""

from __future__ import annotations

import json
import random
import re
import time

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info

from seq2text.errors import ConfigError

__all__ = ["ExactResume", "StartupTime", "ThroughputStats", "ValidationLine", "WallClockBudget", "budget_callback",
           "parse_duration"]


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
    """Stops training so that it (training and validation) ends within `budget` of wall-clock time.

    After each training batch it stops if the time spent plus a reserve (the longest of the last 20 steps plus
    the last validation pause, since Lightning validates once more after a stop) would pass the budget. Tasks
    read `progress()` (0 → 1) so that their schedules anneal to the end of the budget; checkpoints keep the time
    spent. A validation pass of the fit may take at most `val_share` of the budget (tasks skip the rest through
    `keep_validation_batch` and score the batches run); the final test is whole, and its expected time logged.

    Args:
        budget: a duration such as `15m`, `1h`, `900s`, or seconds.
        val_share: the share of the budget one validation pass may take.
    """

    def __init__(self, budget: str | float, val_share: float = 0.1) -> None:
        self.seconds, self.val_share = parse_duration(budget), val_share
        self._val_start: float | None = None
        self._val_run, self._val_cut, self._val_seconds_per_batch = 0, False, None
        self._start = self._end = self._step_start = self._batch_end = self._pause_start = None
        self._spent_before, self._pause = 0.0, 0.0
        self._steps: list[float] = []

    def elapsed(self) -> float:
        """Seconds of this fit so far (frozen when the fit ends), plus those before a resume."""
        if self._start is None:
            return self._spent_before
        return self._spent_before + ((self._end or time.monotonic()) - self._start)

    def progress(self) -> float:
        return min(1.0, self.elapsed() / self.seconds)

    def reserve(self) -> float:
        """Seconds kept back for one more step and the validation pause that follows a stop."""
        return max(self._steps, default=0.0) + self._pause

    def _end_pause(self) -> None:
        if self._pause_start is not None:
            self._pause, self._pause_start = time.monotonic() - self._pause_start, None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start, self._end = time.monotonic(), None

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._end_pause()
        self._end = time.monotonic()

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        self._end_pause()
        self._step_start = time.monotonic()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        self._batch_end = time.monotonic()
        if self._step_start is not None:
            self._steps = [*self._steps[-19:], self._batch_end - self._step_start]
        if self.elapsed() + self.reserve() >= self.seconds:
            trainer.should_stop = True

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and self._pause_start is None:
            self._pause_start = self._batch_end or time.monotonic()

    # ------------------------------------------------------------------------------------------ validation, test
    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._val_start, self._val_run, self._val_cut = time.monotonic(), 0, False

    def keep_validation_batch(self, trainer: pl.Trainer) -> bool:
        """False once the current validation pass of a fit has used its share of the budget (skip the batch)."""
        if trainer.sanity_checking or self._val_start is None or trainer.state.fn != "fit":
            return True
        if not self._val_cut and time.monotonic() - self._val_start >= self.val_share * self.seconds:
            self._val_cut = True
        if not self._val_cut:
            self._val_run += 1
        return not self._val_cut

    def validation_fraction(self, trainer: pl.Trainer) -> float:
        """Share of the current (or last) validation pass's batches that ran: 1 unless the budget cut it."""
        total = sum(trainer.num_val_batches) if isinstance(trainer.num_val_batches, list) else 0
        return self._val_run / total if self._val_cut and total else 1.0

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self._val_start is None or not self._val_run:
            return
        self._val_seconds_per_batch = (time.monotonic() - self._val_start) / self._val_run
        if self._val_cut:
            total = sum(trainer.num_val_batches)
            rank_zero_info(f"validation: {self._val_run} of {total} batches in the {self.val_share:.0%} of --budget "
                           "that a pass may take; this pass's scores are estimated on them (the final test is whole)")

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        batches = sum(trainer.num_test_batches) if isinstance(trainer.num_test_batches, list) else 0
        if self._val_seconds_per_batch is not None and batches:
            estimate = batches * self._val_seconds_per_batch
            rank_zero_info(f"test: {batches} batches, the whole test split; about {estimate:.0f} s at this run's "
                           "validation speed (--budget bounds training and validation, not the final test)")

    def state_dict(self) -> dict[str, float]:
        return {"spent": self.elapsed(), "pause": self._pause}

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self._spent_before, self._pause = float(state_dict.get("spent", 0.0)), float(state_dict.get("pause", 0.0))


def budget_callback(trainer: pl.Trainer) -> WallClockBudget | None:
    """The fit's wall-clock budget, if it has one."""
    return next((c for c in trainer.callbacks if isinstance(c, WallClockBudget)), None)


class StartupTime(pl.Callback):
    """Logs (and keeps as `seconds`, `after_imports`) how long the command took to reach its first training step
    from `start` (the command's start) and from `ready` (its imports done), both `time.perf_counter()` values."""
    def __init__(self, start: float, ready: float) -> None:
        self.start, self.ready, self.seconds, self.after_imports = start, ready, None, None

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: object,
                             batch_idx: int) -> None:
        if self.seconds is None:
            now = time.perf_counter()
            self.seconds, self.after_imports = now - self.start, now - self.ready
            rank_zero_info(f"first training step {self.seconds:.2f} s after the command started "
                           f"({self.after_imports:.2f} s after its imports)")


class ExactResume(pl.Callback):
    """Stores the random-number generators (torch, CUDA, NumPy, Python) in every checkpoint and restores them
    before the first batch of a resumed run: with the resumable loaders (seq2text.data.base), a seeded run killed
    mid-epoch and resumed ends with the weights of an uninterrupted run."""

    def __init__(self) -> None:
        self._pending: dict | None = None

    def state_dict(self) -> dict:
        kind, keys, position, has_gauss, gauss = np.random.get_state()
        # plain lists and tensors only, so that checkpoints load with torch.load(weights_only=True)
        state = {"torch": torch.get_rng_state(), "numpy": [kind, keys.tolist(), position, has_gauss, gauss],
                 "python": random.getstate()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        self._pending = state_dict

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        torch.set_rng_state(state["torch"])
        kind, keys, position, has_gauss, gauss = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), position, has_gauss, gauss))
        random.setstate(state["python"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


class ThroughputStats(pl.Callback):
    """Measures training throughput (every batch's `num_tokens` after `warmup` steps, the device synchronised at
    both ends) and peak accelerator memory and writes them to a JSON file at the end, e.g. `seq2text fit --config
    R.yaml --trainer.callbacks+=seq2text.tasks.callbacks.ThroughputStats --trainer.callbacks.output=stats.json`

    Args:
        output: the JSON file to write (atomically).
        warmup: steps left out of the timing (compilation, allocator and cuDNN warm-up).
    """

    def __init__(self, output: str, warmup: int = 10) -> None:
        self.output, self.warmup = output, warmup
        self._tokens, self._start, self._steps = 0, None, 0

    @staticmethod
    def _sync(pl_module: pl.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(pl_module.device)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: object,
                           batch: object, batch_idx: int) -> None:
        self._steps += 1
        if self._steps == self.warmup:
            self._sync(pl_module)
            self._start = time.perf_counter()
        elif self._start is not None:
            self._tokens += int(batch.num_tokens)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        from seq2text.text.textio import atomic_write_text
        self._sync(pl_module)
        seconds = time.perf_counter() - self._start if self._start is not None else float("nan")
        cuda = pl_module.device.type == "cuda"
        stats = {"steps": self._steps, "timed_steps": max(0, self._steps - self.warmup), "timed_seconds": seconds,
                 "tokens_per_sec": self._tokens / seconds if self._start is not None else None,
                 "peak_memory_bytes": torch.cuda.max_memory_allocated(pl_module.device) if cuda else None,
                 "device": torch.cuda.get_device_name(pl_module.device) if cuda else "cpu",
                 "precision": str(trainer.precision)}
        if trainer.is_global_zero:
            atomic_write_text(self.output, json.dumps(stats, indent=2) + "\n")


class ValidationLine(pl.Callback):
    """One console line per validation of a fit, for runs without a progress bar: epoch, step, the validation
    metrics the task logged, the median training tokens/s since the last line, and the budget left, e.g.
    `epoch 3 step 4,812: val/ppl 131.20 · 6,105 tokens/s · 9m12s of the 15m budget left`."""

    def __init__(self) -> None:
        self._speeds: list[float] = []

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        speed = trainer.callback_metrics.get("train/tokens_per_sec")
        if speed is not None:
            self._speeds.append(float(speed))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        shown = {k: float(v) for k, v in trainer.callback_metrics.items()
                 if k.startswith("val/") and k.endswith(("ppl", "loss", "acc", "bleu", "bpc", "mase", "mae", "f1"))}
        parts = [", ".join(f"{k} {v:.4g}" if abs(v) < 1e4 else f"{k} {v:,.0f}" for k, v in sorted(shown.items()))]
        if self._speeds:
            parts.append(f"{sorted(self._speeds)[len(self._speeds) // 2]:,.0f} tokens/s")
            self._speeds = []
        budget = budget_callback(trainer)
        if budget is not None:
            left = max(0.0, budget.seconds - budget.elapsed())
            parts.append(f"{_minutes(left)} of the {_minutes(budget.seconds)} budget left")
        line = " · ".join(p for p in parts if p)
        rank_zero_info(f"epoch {trainer.current_epoch} step {trainer.global_step:,}: {line}")


def _minutes(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
