"""The `Trainer` of the `seq2text` command: Lightning's, with `precision: auto` resolved from the hardware."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.accelerators import Accelerator, CUDAAccelerator, MPSAccelerator
from pytorch_lightning.utilities import rank_zero_info

from seq2text.hardware import PrecisionChoice, resolve_precision

__all__ = ["Trainer"]


class Trainer(pl.Trainer):
    """`pytorch_lightning.Trainer` whose `precision` may be `auto` (every recipe's default): bf16-mixed where the
    hardware runs bf16 natively, 16-mixed on CUDA without bf16, else 32-true (`seq2text.hardware`). The choice is
    logged and kept in `precision_choice` (the bundle records it); an explicit precision the hardware cannot run is
    refused with a `ConfigError`.

    Args:
        precision: `auto`, or a Lightning precision (`32-true`, `bf16-mixed`, `16-mixed`, `bf16-true`,
            `16-true`, `64-true`, or 32, 16, bf16, 64).
        accelerator: as Lightning's (a name or an Accelerator).
        **kwargs: every other argument of `pytorch_lightning.Trainer`.
    """

    def __init__(self, *, precision: str | int | None = "auto", accelerator: str | Accelerator = "auto",
                 **kwargs: Any) -> None:
        choice = resolve_precision(precision, accelerator if isinstance(accelerator, str) else _kind(accelerator))
        rank_zero_info(f"seq2text: precision {choice.precision} ({choice.requested}: {choice.reason})")
        self.precision_choice: PrecisionChoice = choice
        super().__init__(precision=choice.precision, accelerator=accelerator, **kwargs)


def _kind(accelerator: Accelerator) -> str:
    """The accelerator name `resolve_precision` understands, for an Accelerator instance given in a recipe."""
    if isinstance(accelerator, CUDAAccelerator):
        return "cuda"
    return "mps" if isinstance(accelerator, MPSAccelerator) else "cpu"
