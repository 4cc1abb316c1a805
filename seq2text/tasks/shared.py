"""What the tasks share: a loss normalised over the whole global batch (DDP), Adam/AdamW with the fused kernel
wherever gradient clipping allows it, and the checks of a task that starts from a language-model bundle."""

from __future__ import annotations

from dataclasses import dataclass

import pytorch_lightning as pl
import torch
import torch.distributed as dist

from seq2text.errors import ConfigError
from seq2text.text.reading import LMReading

__all__ = ["FusedAdamClipping", "LMOrigin", "check_lm_origin", "check_lm_vocab", "global_mean"]


def global_mean(module: pl.LightningModule, total: torch.Tensor, count: int) -> torch.Tensor:
    """`total / count` on one process. Under DDP, `total × world / (count summed over the ranks)`: DDP averages
    the ranks' gradients, so the result is the gradient of the mean over the whole global batch, whatever
    share of it each rank holds (fairseq's normalisation). Then N processes train like one process that sees
    all N batches at once.

    Args:
        total: the summed loss of this rank's batch, ().
        count: the items (tokens, texts) it was summed over.
    """
    world = module.trainer.world_size if module._trainer is not None else 1
    if world == 1 or not dist.is_available() or not dist.is_initialized():
        return total / max(count, 1)
    counts = torch.tensor(float(count), device=total.device)
    dist.all_reduce(counts)
    return total * world / counts.clamp_min(1.0)


class FusedAdamClipping:
    """Mixin for the tasks' LightningModules: `make_adam` builds Adam/AdamW with the fused kernel (many times
    faster than the per-tensor loop on a CPU, where large embeddings dominate), and gradient clipping works
    with it in every precision.

    Lightning refuses to clip for an optimizer that unscales internally (fused), because with a loss scaler
    (`16-mixed`) the gradients would be clipped while still scaled. So: without a scaler (fp32, bf16) the
    fused kernel is used and clipping is done directly; with one, the plain kernel and Lightning's clipping.
    """

    def _loss_scaled(self) -> bool:
        return self._trainer is not None and str(self.trainer.precision).startswith("16")

    def make_adam(self, params: object, adamw: bool, **kwargs: object) -> torch.optim.Optimizer:
        optimizer = torch.optim.AdamW if adamw else torch.optim.Adam
        return optimizer(params, fused=not self._loss_scaled(), **kwargs)

    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer, gradient_clip_val: float | None = None,
                                    gradient_clip_algorithm: str | None = None) -> None:
        if self._loss_scaled() or not gradient_clip_val:
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)
        elif gradient_clip_algorithm == "value":
            torch.nn.utils.clip_grad_value_(self.parameters(), gradient_clip_val)
        else:
            torch.nn.utils.clip_grad_norm_(self.parameters(), gradient_clip_val)


def check_lm_vocab(lm_vocab_size: int, vocab_size: int, path: str) -> None:
    """The LM bundle at `path` must have as many token ids as the data's tokenizer."""
    if lm_vocab_size != vocab_size:
        raise ConfigError(f"the LM bundle {path} has {lm_vocab_size} token ids but the data's tokenizer has "
                          f"{vocab_size}; set data.tokenizer_model to {path}/tokenizer.model")


@dataclass(frozen=True)
class LMOrigin:
    """Where a task's starting weights came from (an LM bundle), and so how its text must be read: with that
    bundle's tokenizer and in its direction."""

    path: str
    fingerprint: str
    backward: bool

    @classmethod
    def of(cls, bundle: object, path: str) -> LMOrigin:
        """The origin of a bundle from `seq2text.bundles.io.read_bundle` (a language model's) found at `path`."""
        return cls(path, bundle.tokenizer.fingerprint, LMReading.from_bundle(bundle.config, path).backward)


def check_lm_origin(module: pl.LightningModule, reading: LMOrigin | None) -> None:
    """The trainer's data module must use the tokenizer of the LM bundle the module started from and read text in
    that LM's direction (None: no bundle)."""
    datamodule = getattr(module.trainer, "datamodule", None) if module._trainer is not None else None
    if reading is None or datamodule is None:
        return
    path, backward = reading.path, reading.backward
    tokenizer = getattr(datamodule, "tokenizer", None)
    if tokenizer is not None and tokenizer.fingerprint != reading.fingerprint:
        raise ConfigError(f"the data module's tokenizer is not the one of the LM bundle {path}; set "
                          f"data.tokenizer_model to {path}/tokenizer.model")
    reads_backward = getattr(datamodule, "hparams", {}).get("backward")
    if reads_backward is not None and bool(reads_backward) != backward:
        raise ConfigError(f"the LM bundle {path} is a {'backward' if backward else 'forward'} language model but "
                          f"data.backward is {str(reads_backward).lower()}; set data.backward to "
                          f"{str(backward).lower()}")
