"""Attention over an encoder memory: Bahdanau (additive) and Luong (general, dot) scoring.

Every module is stateless and has two named methods. `project_keys(memory)` runs once per source batch
(before the decoder loop); `attention(query, keys, memory, mask)` (the module's `forward`) runs at each
decoder step. Masked positions get exactly zero weight, so padding never changes a result.

A memory row may serve a group of consecutive query rows (a sentence's beams in beam search): with `batch`
memory rows and `batch × group` queries, each group reads its own row, broadcast, never copied.
"""

from __future__ import annotations

import functools
from typing import Literal

import torch
from torch import nn

__all__ = ["AttentionType", "Attention", "BahdanauAttention", "LuongAttention", "make_attention"]

AttentionType = Literal["bahdanau", "luong_general", "luong_dot"]


@functools.cache
def _sigmoid_tanh_pays() -> bool:
    """ATen's x86 kernels (AVX2, AVX-512) compute tanh several times slower than the sigmoid
    (benchmarks/decode_kernels.py); read once, on first use."""
    return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")


class Attention(nn.Module):
    """Interface: `project_keys` once per source batch, then `forward` at every decoder step."""

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        """memory (batch, src_len, memory_size) → keys (batch, src_len, key_size)."""
        raise NotImplementedError

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """query (batch × group, query_size), keys (batch, src_len, key_size) → scores (batch, group, src_len)."""
        raise NotImplementedError

    def forward(self, query: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """query (batch × group, query_size), rows g·i … g·i + g − 1 reading memory row i; keys `project_keys(memory)`
        (batch, src_len, key_size); memory (batch, src_len, memory_size); mask (batch, src_len) True at real positions
        (≥ 1 per row) → context (batch × group, memory_size), attention weights (batch × group, src_len) (sum 1)."""
        batch = keys.size(0)
        if query.size(0) % batch:
            raise ValueError(f"{query.size(0)} query rows cannot share {batch} memory rows in equal groups")
        scores = self.score(query, keys).float()  # (batch, group, src_len)
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (batch, group, src_len)
        context = torch.bmm(weights.to(memory.dtype), memory)  # (batch, group, memory_size)
        return context.flatten(0, 1), weights.flatten(0, 1)


class BahdanauAttention(Attention):
    """Additive attention (Bahdanau et al., 2015): `v · tanh(W_k m + W_q q)`, `attention_size` wide."""

    def __init__(self, query_size: int, memory_size: int, attention_size: int) -> None:
        super().__init__()
        self.key_layer = nn.Linear(memory_size, attention_size, bias=False)
        self.query_layer = nn.Linear(query_size, attention_size, bias=False)
        self.v = nn.Parameter(torch.empty(attention_size).uniform_(-attention_size ** -0.5, attention_size ** -0.5))

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.key_layer(memory)  # (batch, src_len, attention_size)

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        batch, _, size = keys.shape
        projected = self.query_layer(query).view(batch, -1, 1, size)  # (batch, group, 1, attention_size)
        hidden = _tanh_(keys.unsqueeze(1) + projected)  # (batch, group, src_len, attention_size)
        return torch.matmul(hidden, self.v.to(hidden.dtype))  # (batch, group, src_len): a matrix-vector product


def _tanh_(x: torch.Tensor) -> torch.Tensor:
    """tanh of a fresh tensor, in place; decoding in float32 on an x86 CPU takes tanh(x) = 2σ(2x) − 1 (within 1e-6,
    tested): Bahdanau's (rows × src_len × attention_size) scores are a decoder step's largest elementwise step."""
    if (x.device.type == "cpu" and _sigmoid_tanh_pays() and x.dtype == torch.float32
            and not (torch.is_grad_enabled() and x.requires_grad)):
        return x.mul_(2).sigmoid_().mul_(2).sub_(1)
    return torch.tanh(x)


class LuongAttention(Attention):
    """Multiplicative attention (Luong et al., 2015): `q · W m` (`general`) or `q · m` (`dot`: query_size must equal
    memory_size)."""

    def __init__(self, query_size: int, memory_size: int, kind: Literal["general", "dot"] = "general") -> None:
        super().__init__()
        if kind == "dot" and query_size != memory_size:
            raise ValueError(f"dot attention needs query_size == memory_size, got {query_size} and {memory_size}")
        self.key_layer = nn.Linear(memory_size, query_size, bias=False) if kind == "general" else None

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        return memory if self.key_layer is None else self.key_layer(memory)  # (batch, src_len, query_size)

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        grouped = query.view(keys.size(0), -1, query.size(-1))  # (batch, group, query_size)
        return torch.bmm(grouped, keys.transpose(1, 2))  # (batch, group, src_len)


def make_attention(kind: AttentionType, query_size: int, memory_size: int, attention_size: int) -> Attention:
    """Builds the attention named `kind` (`attention_size` is used by `bahdanau` only)."""
    if kind == "bahdanau":
        return BahdanauAttention(query_size, memory_size, attention_size)
    if kind in ("luong_general", "luong_dot"):
        return LuongAttention(query_size, memory_size, "general" if kind == "luong_general" else "dot")
    raise ValueError(f"unknown attention {kind!r}; use bahdanau, luong_general or luong_dot")
