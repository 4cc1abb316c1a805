"""AWD-LSTM regularizers as plain functions and modules: embedding dropout, locked dropout, DropConnect."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["embedding_dropout", "LockedDropout"]


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
    keep = weight.new_empty(weight.size(0)).bernoulli_(1 - p) / (1 - p)  # (vocab_size,)
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
        mask = x.new_empty((x.size(0), 1, x.size(2))).bernoulli_(1 - self.p) / (1 - self.p)  # (batch, 1, feat)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"
