"""Output layers over a vocabulary: full softmax, or adaptive softmax with weights that can be tied."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AdaptiveSoftmax"]


class AdaptiveSoftmax(nn.Module):
    """Softmax over `vocab_size` words whose projection matrix is passed in (so it can be the embedding).

    With `cutoffs` (e.g. `[2000, 10000]`, ids sorted by frequency as SentencePiece sorts them) the
    vocabulary is split into a head (ids below the first cutoff, plus one logit per tail cluster) and tails
    (Grave et al., 2017). Each tail is scored only for the tokens whose target falls in it, which makes
    training several times faster with large vocabularies; `log_prob` still gives exact full
    distributions. Tails keep the full width (`in_size`) so that every row of the weight can be tied.
    """

    def __init__(self, vocab_size: int, in_size: int, cutoffs: Sequence[int] = ()) -> None:
        super().__init__()
        cutoffs = [int(c) for c in cutoffs]
        if cutoffs and (sorted(set(cutoffs)) != cutoffs or cutoffs[0] <= 0 or cutoffs[-1] >= vocab_size):
            raise ValueError(f"adaptive cutoffs {cutoffs} must increase strictly within (0, {vocab_size})")
        self.bounds = [0, *cutoffs, vocab_size]
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        self.cluster = nn.Linear(in_size, len(cutoffs)) if cutoffs else None

    def _head_log_prob(self, hidden: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """(N, in_size) → (N, head words + clusters) log-probabilities."""
        end = self.bounds[1]
        logits = F.linear(hidden, weight[:end], self.bias[:end])  # (N, head)
        if self.cluster is not None:
            logits = torch.cat([logits, self.cluster(hidden)], dim=-1)  # (N, head + clusters)
        return F.log_softmax(logits.float(), dim=-1)

    def _tail_log_prob(self, hidden: torch.Tensor, weight: torch.Tensor, i: int) -> torch.Tensor:
        """(n, in_size) → (n, size of tail i) log-probabilities within tail i (i ≥ 1)."""
        lo, hi = self.bounds[i], self.bounds[i + 1]
        return F.log_softmax(F.linear(hidden, weight[lo:hi], self.bias[lo:hi]).float(), dim=-1)

    def nll(self, hidden: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """hidden (N, in_size), target (N,) word ids, weight (vocab_size, in_size) output projection → the NLL of
        each target, (N,) float32 nats."""
        head = self._head_log_prob(hidden, weight)  # (N, head + clusters)
        if self.cluster is None:
            return -head.gather(1, target.unsqueeze(1)).squeeze(1)
        head_size = self.bounds[1]
        # one gather from the head for every row: the word's own logit, or its cluster's (no row copies of head)
        cluster = torch.bucketize(target, target.new_tensor(self.bounds[1:-1]), right=True)  # (N,) 0 = head
        column = torch.where(cluster == 0, target, head_size + cluster - 1)  # (N,)
        nll = -head.gather(1, column.unsqueeze(1)).squeeze(1)  # (N,)
        for i in range(1, len(self.bounds) - 1):
            rows = (cluster == i).nonzero().squeeze(1)  # (n,)
            if rows.numel() == 0:
                continue
            tail = self._tail_log_prob(hidden[rows], weight, i)  # (n, tail size)
            within = tail.gather(1, (target[rows] - self.bounds[i]).unsqueeze(1)).squeeze(1)  # (n,)
            nll = nll.index_add(0, rows, -within)
        return nll

    def log_prob(self, hidden: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Full log-distribution: (N, in_size) → (N, vocab_size), float32."""
        head = self._head_log_prob(hidden, weight)
        if self.cluster is None:
            return head
        head_size = self.bounds[1]
        parts = [head[:, :head_size]]
        for i in range(1, len(self.bounds) - 1):
            parts.append(head[:, head_size + i - 1: head_size + i] + self._tail_log_prob(hidden, weight, i))
        return torch.cat(parts, dim=-1)
