"""Recurrent layers with DropConnect on the hidden-to-hidden weights, and AWD-style stacks of them.

DropConnect ("weight drop") calls the stock cuDNN/oneDNN kernels with a dropped copy of `weight_hh_l0`
through `torch.func.functional_call`, so no attribute of `nn.LSTM` is deleted or monkey-patched.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from seq2text.nn.regularization import LockedDropout

__all__ = ["RNNType", "Hidden", "DropConnectRNN", "RNNStack"]

RNNType = Literal["lstm", "gru", "rnn"]
Hidden = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def _make_rnn(rnn_type: RNNType, input_size: int, hidden_size: int) -> nn.RNNBase:
    if rnn_type == "lstm":
        return nn.LSTM(input_size, hidden_size, batch_first=True)
    if rnn_type == "gru":
        return nn.GRU(input_size, hidden_size, batch_first=True)
    if rnn_type == "rnn":
        return nn.RNN(input_size, hidden_size, nonlinearity="tanh", batch_first=True)
    raise ValueError(f"unknown rnn_type {rnn_type!r}; use lstm, gru or rnn")


class DropConnectRNN(nn.Module):
    """One unidirectional RNN layer whose `weight_hh_l0` is dropped (DropConnect) in training.

    Args:
        rnn_type: `lstm`, `gru` or `rnn` (Elman, tanh).
        input_size: features in.
        hidden_size: features out.
        weight_dropout: DropConnect probability on the hidden-to-hidden matrix.
    """

    def __init__(self, rnn_type: RNNType, input_size: int, hidden_size: int, weight_dropout: float = 0.0) -> None:
        super().__init__()
        self.rnn = _make_rnn(rnn_type, input_size, hidden_size)
        self.weight_dropout = weight_dropout

    def forward(self, x: torch.Tensor, hidden: Hidden | None) -> tuple[torch.Tensor, Hidden]:
        """x: (batch, seq_len, input_size) → output (batch, seq_len, hidden_size), new hidden state."""
        if self.training and self.weight_dropout > 0:
            dropped = F.dropout(self.rnn.weight_hh_l0, self.weight_dropout, training=True)
            return functional_call(self.rnn, {"weight_hh_l0": dropped}, (x, hidden))
        return self.rnn(x, hidden)


class RNNStack(nn.Module):
    """Layers of `DropConnectRNN` with locked dropout between them (AWD-LSTM).

    Args:
        rnn_type: `lstm`, `gru` or `rnn`.
        input_size: features of the input sequence.
        hidden_size: width of every layer but the last.
        output_size: width of the last layer (the embedding size when weights are tied).
        num_layers: depth.
        dropout_hidden: locked dropout between layers.
        weight_dropout: DropConnect on each layer's hidden-to-hidden weights.
    """

    def __init__(self, rnn_type: RNNType, input_size: int, hidden_size: int, output_size: int,
                 num_layers: int, dropout_hidden: float = 0.0, weight_dropout: float = 0.0) -> None:
        super().__init__()
        sizes = [input_size] + [hidden_size] * (num_layers - 1) + [output_size]
        self.layers = nn.ModuleList(
            DropConnectRNN(rnn_type, sizes[i], sizes[i + 1], weight_dropout) for i in range(num_layers))
        self.dropout = LockedDropout(dropout_hidden)
        self.rnn_type = rnn_type

    def forward(self, x: torch.Tensor, hidden: list[Hidden] | None) -> tuple[torch.Tensor, list[Hidden]]:
        """x: (batch, seq_len, input_size).

        Returns:
            output of the last layer (batch, seq_len, output_size) and the new state of every layer.
        """
        states = []
        for i, layer in enumerate(self.layers):
            x, state = layer(x, None if hidden is None else hidden[i])
            states.append(state)
            if i < len(self.layers) - 1:
                x = self.dropout(x)
        return x, states

    @staticmethod
    def detach(hidden: list[Hidden]) -> list[Hidden]:
        """Cuts the graph between truncated-BPTT windows."""
        return [tuple(h.detach() for h in s) if isinstance(s, tuple) else s.detach() for s in hidden]
