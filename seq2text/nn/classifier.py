"""Recurrent text classifier: embedding → (bi)LSTM/GRU stack over packed sequences → pooling → MLP head.

The embedding and the stack use the layout of `RNNLanguageModel` (`embedding.*`, `rnn.layers.<i>.rnn.*`),
so a unidirectional classifier can start from a trained language model (ULMFiT, Howard & Ruder 2018).
Long texts can be read in `bptt`-token chunks that carry the recurrent state (ULMFiT's BPT3C); only the
last `max_grad_len` tokens keep a graph, so training memory stays bounded whatever the text length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from seq2text.nn.config import Config
from seq2text.nn.normalization import BetweenLayers
from seq2text.nn.rnn import EmbeddedRNN, Hidden, RNNType

__all__ = ["ClassifierConfig", "Pooling", "RNNClassifier", "pool"]

Pooling = Literal["last", "max", "mean", "attention", "concat"]


def pool(outputs: torch.Tensor, lengths: torch.Tensor, mode: Pooling, bidirectional: bool,
         attention: nn.Module | None = None) -> torch.Tensor:
    """Reduces outputs (batch, seq_len, features) over time → (batch, features), (batch, 3 × features) for `concat`.

    Args:
        lengths: (batch,) on the outputs' device, all ≥ 1.
        mode: `last` (both directions' final states when bidirectional), `max`, `mean`, `attention` (weighted by
            `attention`, features → 1) or `concat` (last, max and mean: ULMFiT).
    """
    batch, seq_len, features = outputs.shape
    mask = torch.arange(seq_len, device=outputs.device) < lengths.unsqueeze(1)  # (B, T)
    if mode == "attention":
        if attention is None:
            raise ValueError("attention pooling needs an attention scorer")
        scores = attention(outputs).squeeze(-1).masked_fill(~mask, float("-inf"))  # (B, T)
        return torch.einsum("bt,btf->bf", torch.softmax(scores.float(), dim=-1).to(outputs.dtype), outputs)
    pooled = []  # (B, F) each
    if mode in ("last", "concat"):
        last = outputs[torch.arange(batch, device=outputs.device), lengths - 1]
        half = features // 2  # bidirectional: the forward direction's end, then the backward one's
        pooled.append(torch.cat([last[:, :half], outputs[:, 0, half:]], dim=-1) if bidirectional else last)
    if mode in ("max", "concat"):
        pooled.append(outputs.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1))
    if mode in ("mean", "concat"):
        pooled.append((outputs * mask.unsqueeze(-1)).sum(dim=1) / lengths.unsqueeze(1).to(outputs.dtype))
    return pooled[0] if len(pooled) == 1 else torch.cat(pooled, dim=-1)  # (B, F) or (B, 3F)


def _mlp(in_size: int, sizes: Sequence[int], out_size: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for size in sizes:
        layers += [nn.Dropout(dropout), nn.Linear(in_size, size), nn.ReLU()]
        in_size = size
    return nn.Sequential(*layers, nn.Dropout(dropout), nn.Linear(in_size, out_size))


def _rows(hidden: list[Hidden], count: int) -> list[Hidden]:
    """The state of the first `count` texts of every layer."""
    return [tuple(h[:, :count] for h in s) if isinstance(s, tuple) else s[:, :count] for s in hidden]


@dataclass(frozen=True)
class ClassifierConfig(Config):
    """The classifier's architecture, regularizers and reading of long texts.

    Args:
        vocab_size: number of token ids.
        num_classes: number of labels.
        emb_size: embedding width.
        hidden_size: width of the inner recurrent layers (per direction).
        num_layers: recurrent depth.
        rnn_type: `lstm`, `gru`, `rnn`, `lstm_peephole` or `lstm_layernorm`.
        bidirectional: bidirectional layers (a language-model encoder is unidirectional).
        output_size: width of the last recurrent layer (per direction); None: `hidden_size`. A tied
            language model's last layer has `emb_size`.
        pooling: `last`, `max`, `mean`, `attention` or `concat` (last + max + mean), see `pool`.
        head_sizes: hidden widths of the MLP head (empty: one linear layer).
        dropout: locked dropout on the encoder's output.
        dropout_hidden: locked dropout between recurrent layers.
        dropout_input: locked dropout on the embeddings.
        dropout_embedding: drop whole words from the embedding matrix.
        weight_dropout: DropConnect on hidden-to-hidden weights.
        dropout_head: dropout before each layer of the head.
        bptt: read texts longer than this in chunks of `bptt` tokens, carrying the state (unidirectional
            only; None reads each text at once).
        max_grad_len: with `bptt`, only chunks within the last `max_grad_len` tokens keep a graph; earlier
            chunks run without gradients (None: all chunks keep one).
        between_layers: normalisation between recurrent layers: `none`, `layernorm` or `batchnorm` (statistics
            over the real tokens only).
    """

    vocab_size: int
    num_classes: int
    emb_size: int = 300
    hidden_size: int = 256
    num_layers: int = 1
    rnn_type: RNNType = "lstm"
    bidirectional: bool = True
    output_size: int | None = None
    pooling: Pooling = "concat"
    head_sizes: tuple[int, ...] = ()
    dropout: float = 0.3
    dropout_hidden: float = 0.2
    dropout_input: float = 0.2
    dropout_embedding: float = 0.05
    weight_dropout: float = 0.0
    dropout_head: float = 0.2
    bptt: int | None = None
    max_grad_len: int | None = None
    between_layers: BetweenLayers = "none"

    def __post_init__(self) -> None:
        if self.pooling not in ("last", "max", "mean", "attention", "concat"):
            raise ValueError(f"unknown pooling {self.pooling!r}; use last, max, mean, attention or concat")


class RNNClassifier(EmbeddedRNN):
    """Recurrent classifier with AWD-LSTM regularizers and a pooling head, built from a `ClassifierConfig`."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__(config, config.output_size or config.hidden_size, config.bidirectional)
        self.bidirectional, self.pooling = config.bidirectional, config.pooling
        self.bptt, self.max_grad_len = config.bptt, config.max_grad_len
        features = self.rnn.output_size
        self.attention = (nn.Sequential(nn.Linear(features, features), nn.Tanh(), nn.Linear(features, 1, bias=False))
                          if config.pooling == "attention" else None)
        self.head = _mlp(features * (3 if config.pooling == "concat" else 1), config.head_sizes, config.num_classes,
                         config.dropout_head)

    def forward(self, text: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """text: (batch, seq_len) ids; lengths: (batch,), all ≥ 1 → logits (batch, num_classes)."""
        return self.head(self.features(text, lengths))

    def features(self, text: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The pooled text representation that the head reads, (batch, pooled features)."""
        lengths_cpu = lengths.detach().cpu()
        order = torch.argsort(lengths_cpu, descending=True, stable=True)  # packing wants longest first
        sorted_lengths = lengths_cpu[order]
        outputs = self.encode(text[order.to(text.device), : int(sorted_lengths[0])], sorted_lengths)  # (B, T, F)
        pooled = pool(outputs, sorted_lengths.to(text.device), self.pooling, self.bidirectional, self.attention)
        return pooled[torch.argsort(order).to(text.device)]  # back to the input order

    def encode(self, text: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """text (batch, seq_len = lengths[0]), lengths (batch,) CPU sorted descending → encoder outputs after output
        dropout, (batch, seq_len, features), zero past each text's end."""
        seq_len = text.size(1)
        if not self.bptt or self.bidirectional or seq_len <= self.bptt:
            return self.read(text, None, lengths)[0]
        chunks, hidden = [], None
        for start in range(0, seq_len, self.bptt):
            active = int((lengths > start).sum())  # texts still running: a prefix, as lengths are sorted
            chunk_lengths = (lengths[:active] - start).clamp(max=self.bptt)
            width = int(chunk_lengths[0])
            keep_graph = self.max_grad_len is None or start + width > seq_len - self.max_grad_len
            with torch.set_grad_enabled(torch.is_grad_enabled() and keep_graph):
                out, hidden, _ = self.read(text[:active, start: start + width],
                                           None if hidden is None else _rows(hidden, active), chunk_lengths)
            hidden = self.detach(hidden)  # truncated BPTT between chunks
            chunks.append(F.pad(out, (0, 0, 0, 0, 0, text.size(0) - active)))  # (B, width, F)
        return torch.cat(chunks, dim=1)  # (B, T, F)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Parameters by depth, input first: embedding, each recurrent layer, then head (and attention)."""
        head = list(self.head.parameters()) + (list(self.attention.parameters()) if self.attention else [])
        return [list(self.embedding.parameters()), *(list(layer.parameters()) for layer in self.rnn.layers), head]

    def load_encoder(self, state: dict[str, torch.Tensor]) -> int:
        """Copies `embedding.*` and `rnn.*` from a language model's weights → the tensors copied (ValueError when
        one is missing or shaped otherwise)."""
        own = {k: v for k, v in self.state_dict().items() if k.startswith(("embedding.", "rnn."))}
        missing = sorted(k for k in own if k not in state)
        wrong = sorted(k for k in own if k in state and state[k].shape != own[k].shape)
        if missing or wrong:
            detail = ", ".join(f"{k} {tuple(own[k].shape)} vs {tuple(state[k].shape)}" for k in wrong[:3])
            raise ValueError(f"the language model's encoder does not fit: missing {missing[:3]} {detail}".strip())
        self.load_state_dict({k: state[k] for k in own}, strict=False)
        return len(own)
