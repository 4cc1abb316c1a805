"""The batch contract: every data module produces these, every task consumes them."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["LMBatch"]


@dataclass(frozen=True)
class LMBatch:
    """One truncated-BPTT window of a batchified token stream.

    Attributes:
        input: token ids, (batch, seq_len).
        target: the next token of each position, (batch, seq_len).
        mask: True where `target` is real text, False on the padding of the stream's end, (batch, seq_len).
        lr_scale: learning-rate factor for variable BPTT (seq_len / bptt), 1.0 otherwise.
        reset: True for the first window of a pass: the recurrent state starts from zeros.
    """

    input: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor
    lr_scale: float = 1.0
    reset: bool = False

    @property
    def num_tokens(self) -> int:
        return int(self.mask.sum())

    def to(self, device: torch.device | str) -> LMBatch:
        return LMBatch(self.input.to(device), self.target.to(device), self.mask.to(device),
                       self.lr_scale, self.reset)
