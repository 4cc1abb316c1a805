"""Recurrent layers with DropConnect on the hidden-to-hidden weights, and the AWD-style stack of them (packed or
not, one direction or both) that every model uses.

DropConnect ("weight drop") calls the stock cuDNN/oneDNN kernels (or the TorchScript recurrence of the LSTM
variants in `cells`) with a dropped copy of `weight_hh_l0` through `torch.func.functional_call`, so no attribute
of the layer is deleted or monkey-patched.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from seq2text.nn.cells import LayerNormLSTM, PeepholeLSTM
from seq2text.nn.normalization import BetweenLayers, make_between_layers
from seq2text.nn.regularization import LockedDropout, drop_connect, embedding_dropout

__all__ = ["RNNType", "RNN_TYPES", "Hidden", "DropConnectRNN", "EmbeddedRNN", "RNNStack", "make_rnn"]

RNNType = Literal["lstm", "gru", "rnn", "lstm_peephole", "lstm_layernorm"]
RNN_TYPES: tuple[str, ...] = get_args(RNNType)
Hidden = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def make_rnn(rnn_type: RNNType, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
             dropout: float = 0.0) -> nn.Module:
    """The recurrent layer(s) of `rnn_type`, all with `nn.LSTM`'s interface (batch_first, packed or padded input,
    `weight_hh_l0`...): `lstm`, `gru`, `rnn` (Elman, tanh), `lstm_peephole` or `lstm_layernorm` (see `cells`)."""
    layers = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN, "lstm_peephole": PeepholeLSTM,
              "lstm_layernorm": LayerNormLSTM}
    if rnn_type not in layers:
        raise ValueError(f"unknown rnn_type {rnn_type!r}; use one of {', '.join(RNN_TYPES)}")
    return layers[rnn_type](input_size, hidden_size, num_layers, batch_first=True, bidirectional=bidirectional,
                            dropout=dropout if num_layers > 1 else 0.0)


class DropConnectRNN(nn.Module):
    """One RNN layer (`make_rnn`, one or both directions) whose hidden-to-hidden weights are dropped with
    probability `weight_dropout` (DropConnect) in training; `hidden_size` features out per direction."""

    def __init__(self, rnn_type: RNNType, input_size: int, hidden_size: int, weight_dropout: float = 0.0,
                 bidirectional: bool = False) -> None:
        super().__init__()
        self.rnn = make_rnn(rnn_type, input_size, hidden_size, bidirectional=bidirectional)
        self.weight_dropout = weight_dropout

    def forward(self, x: torch.Tensor | PackedSequence, hidden: Hidden | None
                ) -> tuple[torch.Tensor | PackedSequence, Hidden]:
        """x: (batch, seq_len, input_size) or a PackedSequence → output of the same kind (hidden_size features per
        direction), new hidden state."""
        if self.training and self.weight_dropout > 0:
            names = ["weight_hh_l0"] + (["weight_hh_l0_reverse"] if self.rnn.bidirectional else [])
            dropped = {n: drop_connect(getattr(self.rnn, n), self.weight_dropout) for n in names}
            return functional_call(self.rnn, dropped, (x, hidden))
        return self.rnn(x, hidden)


class RNNStack(nn.Module):
    """Layers of `DropConnectRNN` with locked dropout (`dropout_hidden`) between them (AWD-LSTM); the one recurrent
    stack of the language model, the classifier and the numeric-sequence models. `hidden_size`: width of every layer
    but the last, `output_size`: of the last (per direction); `between_layers`: normalisation of each layer's output
    but the last (`none`, `layernorm`, `batchnorm` over real positions only)."""

    def __init__(self, rnn_type: RNNType, input_size: int, hidden_size: int, output_size: int,
                 num_layers: int, dropout_hidden: float = 0.0, weight_dropout: float = 0.0,
                 bidirectional: bool = False, between_layers: BetweenLayers = "none") -> None:
        super().__init__()
        directions = 2 if bidirectional else 1
        sizes = [hidden_size] * (num_layers - 1) + [output_size]
        inputs = [input_size] + [size * directions for size in sizes[:-1]]
        self.layers = nn.ModuleList(DropConnectRNN(rnn_type, i, o, weight_dropout, bidirectional)
                                    for i, o in zip(inputs, sizes, strict=True))
        self.dropout = LockedDropout(dropout_hidden)
        norms = [make_between_layers(between_layers, size) for size in inputs[1:]]
        self.norms = None if between_layers == "none" else nn.ModuleList(norms)
        self.output_size = output_size * directions

    def forward(self, x: torch.Tensor, hidden: list[Hidden] | None = None, lengths: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, list[Hidden]]:
        """x (batch, seq_len, input_size) → the last layer's output (batch, seq_len, output_size) and every layer's
        new state. With `lengths` ((batch,) on the CPU, sorted descending, all ≥ 1) the layers run packed: outputs
        are zero after each text's end, states taken at its last token."""
        states = []
        mask = None if lengths is None or self.norms is None else (
            torch.arange(x.size(1)) < lengths.unsqueeze(1)).to(x.device)  # (B, T)
        for i, layer in enumerate(self.layers):
            state = None if hidden is None else hidden[i]
            if lengths is None:
                x, state = layer(x, state)
            else:
                packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=True)
                out, state = layer(packed, state)
                x, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))  # (B, T, out)
            states.append(state)
            if i < len(self.layers) - 1:
                if self.norms is not None:
                    x = self.norms[i](x, mask)  # (B, T, out)
                x = self.dropout(x)
        return x, states

    @staticmethod
    def detach(hidden: list[Hidden]) -> list[Hidden]:
        """Cuts the graph between truncated-BPTT windows."""
        return [tuple(h.detach() for h in s) if isinstance(s, tuple) else s.detach() for s in hidden]


class EmbeddedRNN(nn.Module):
    """Embedding → locked dropout → `RNNStack` → locked dropout (AWD-LSTM), from a config with `LMConfig`'s fields:
    the base of the language model and the classifier (so that a classifier can load an LM's `embedding.*`, `rnn.*`).
    `output_size`: the last layer's width per direction."""

    def __init__(self, config: object, output_size: int, bidirectional: bool = False) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.emb_size)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        self.rnn = RNNStack(config.rnn_type, config.emb_size, config.hidden_size, output_size, config.num_layers,
                            config.dropout_hidden, config.weight_dropout, bidirectional, config.between_layers)
        self.input_dropout = LockedDropout(config.dropout_input)
        self.output_dropout = LockedDropout(config.dropout)
        self.dropout_embedding = config.dropout_embedding

    detach = staticmethod(RNNStack.detach)

    def read(self, ids: torch.Tensor, hidden: list[Hidden] | None = None, lengths: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, list[Hidden], torch.Tensor]:
        """ids (batch, seq_len); hidden, lengths as in `RNNStack.forward` → the output after output dropout (batch,
        seq_len, features), the new state, and the output before dropout (for temporal activation regularization)."""
        emb = embedding_dropout(self.embedding.weight, ids, self.dropout_embedding, self.training)  # (B, T, E)
        raw, hidden = self.rnn(self.input_dropout(emb), hidden, lengths)  # (B, T, features)
        return self.output_dropout(raw), hidden, raw
