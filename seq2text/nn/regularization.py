"""AWD-LSTM regularizers as plain functions and modules: embedding dropout, locked dropout, DropConnect."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["embedding_dropout", "keep_mask", "drop_connect", "LockedDropout"]


def keep_mask(shape: tuple[int, ...], p: float, like: torch.Tensor) -> torch.Tensor:
    """An inverted-dropout mask: each entry 1 / (1 - p) with probability 1 - p, else 0, in `like`'s dtype and
    device.

    Drawn as floor(u + 1 - p) with u uniform on [0, 1), in float32 (a bf16 sum would round near 1 and bias
    the keep rate): on a CPU this is about twice as fast as `bernoulli_`, which a training step of a small LSTM
    spends a few percent of its time in.
    """
    mask = torch.rand(shape, device=like.device).add_(1 - p).floor_().mul_(1 / (1 - p))
    return mask.to(like.dtype)


def drop_connect(weight: torch.Tensor, p: float) -> torch.Tensor:
    """DropConnect (Wan et al.): `weight` with each entry zeroed with probability `p` and the rest scaled by
    1 / (1 - p); gradients reach the kept entries. Same shape as `weight`."""
    return weight * keep_mask(tuple(weight.shape), p, weight)


def embedding_dropout(weight: torch.Tensor, ids: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Looks up `ids` in `weight` after dropping whole word vectors with probability `p` (Gal & Ghahramani).

    The looked-up rows are scaled by a per-word mask rather than multiplying the whole (vocab, emb)
    matrix: the same distribution, without a full-matrix product per step.

    Args:
        weight: the embedding matrix, (vocab_size, emb_size).
        ids: token ids, any shape S.

    Returns:
        embeddings, S + (emb_size,); a dropped word is zero at every position of the batch.
    """
    if not training or p == 0:
        return F.embedding(ids, weight)
    keep = keep_mask((weight.size(0),), p, weight)  # (vocab_size,)
    return F.embedding(ids, weight) * keep[ids].unsqueeze(-1)


class LockedDropout(nn.Module):
    """Variational dropout: one mask per sequence, shared across time steps.

    Args:
        p: drop probability.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, seq_len, features) → same shape."""
        if not self.training or self.p == 0:
            return x
        mask = keep_mask((x.size(0), 1, x.size(2)), self.p, x)  # (batch, 1, feat)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"
