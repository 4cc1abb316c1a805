"""Normalisation of a recurrent layer's output before the next layer (`RNNStack(between_layers=...)`), with padding
masked out: `MaskedBatchNorm` takes its statistics from the real positions only."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

__all__ = ["BetweenLayers", "MaskedBatchNorm", "MaskedLayerNorm", "make_between_layers"]

BetweenLayers = Literal["none", "layernorm", "batchnorm"]


class MaskedLayerNorm(nn.LayerNorm):
    """`nn.LayerNorm` over the features of (batch, seq_len, features) that leaves padding at zero."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (batch, seq_len, features), mask (batch, seq_len) True at real positions or None → same shape."""
        out = super().forward(x)
        return out if mask is None else out * mask.unsqueeze(-1).to(out.dtype)


class MaskedBatchNorm(nn.Module):
    """Batch normalisation over the features of (batch, seq_len, features) whose training statistics come from the
    real (mask True) positions only; running mean and (unbiased) variance for evaluation, as `nn.BatchNorm1d` (with
    its `eps` and `momentum`)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (batch, seq_len, features), mask (batch, seq_len) True at real positions or None (all real) → same
        shape, zero at padding."""
        values = x.float()
        if self.training:
            mean, var = self._batch_statistics(values, mask)
        else:
            mean, var = self.running_mean, self.running_var
        out = (values - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias  # (B, T, F)
        if mask is not None:
            out = out * mask.unsqueeze(-1)
        return out.to(x.dtype)

    def _batch_statistics(self, values: torch.Tensor, mask: torch.Tensor | None
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and biased variance (features,) over the real positions — of every DDP process together when
        training is distributed (as `nn.SyncBatchNorm`), so N processes × B normalise as one process × N·B —
        and updates the running statistics."""
        weights = (torch.ones(values.shape[:2], device=values.device) if mask is None
                   else mask.to(values.dtype)).unsqueeze(-1)  # (B, T, 1)
        if _distributed():
            mean, var, count = _global_statistics(values, weights)
        else:
            count = weights.sum().clamp(min=1.0)
            mean = (values * weights).sum(dim=(0, 1)) / count  # (F,)
            var = ((values - mean).pow(2) * weights).sum(dim=(0, 1)) / count  # (F,)
        with torch.no_grad():
            unbiased = var * count / (count - 1).clamp(min=1.0)
            self.running_mean.lerp_(mean.detach(), self.momentum)
            self.running_var.lerp_(unbiased.detach(), self.momentum)
        return mean, var

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


def _distributed() -> bool:
    import torch.distributed as dist
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _global_statistics(values: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Mean, biased variance (features,) and count over the real positions of every process (a differentiable
    all-reduce of the sums, so the gradient flows through the other processes' statistics too)."""
    from torch.distributed.nn.functional import all_reduce
    features = values.size(-1)
    sums = torch.cat([(values * weights).sum(dim=(0, 1)), (values.pow(2) * weights).sum(dim=(0, 1)),
                      weights.sum().view(1)])  # (2F + 1,)
    sums = all_reduce(sums)
    count = sums[-1].clamp(min=1.0)
    mean = sums[:features] / count
    var = (sums[features: 2 * features] / count - mean.pow(2)).clamp(min=0.0)
    return mean, var, count


def make_between_layers(kind: BetweenLayers, num_features: int) -> nn.Module | None:
    """The normalisation `kind` for `num_features` features (None for `none`)."""
    if kind not in ("none", "layernorm", "batchnorm"):
        raise ValueError(f"unknown between_layers {kind!r}; use none, layernorm or batchnorm")
    return None if kind == "none" else (MaskedLayerNorm if kind == "layernorm" else MaskedBatchNorm)(num_features)
