"""LSTM variants beyond the stock kernels: the peephole LSTM (Gers & Schmidhuber 2000) and the layer-normalised LSTM
(Ba, Kiros & Hinton 2016), as drop-in replacements for `nn.LSTM` (whole sequences) and `nn.LSTMCell` (one step).

    peephole   i = σ(W_i x + U_i h + w_ci ⊙ c_{t-1} + b_i)    f = σ(W_f x + U_f h + w_cf ⊙ c_{t-1} + b_f)
               c_t = f ⊙ c_{t-1} + i ⊙ tanh(W_c x + U_c h + b_c)
               o = σ(W_o x + U_o h + w_co ⊙ c_t + b_o)         h_t = o ⊙ tanh(c_t)
    layernorm  [i f g o] = LN_ih(W x) + LN_hh(U h) + b        (each LN with its own gain and bias, gates together)
               c_t = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g)          h_t = σ(o) ⊙ tanh(LN_c(c_t))

Speed: the input projection of every step is one matmul; the recurrence over time runs in a TorchScript function,
so no Python runs per step. Parameters carry `nn.LSTM`'s names and gate order (i, f, g, o): `weight_ih_l0`,
`weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0` (`_reverse` for the backward direction), so DropConnect can swap
`weight_hh_l0` through `torch.func.functional_call`; the extra ones are `weight_ci_l0`, `weight_cf_l0`,
`weight_co_l0` (peephole) and `ln_ih_weight_l0`, `ln_ih_bias_l0`, `ln_hh_*`, `ln_c_*` (layer norm).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

__all__ = ["LSTMVariant", "PeepholeLSTM", "LayerNormLSTM", "PeepholeLSTMCell", "LayerNormLSTMCell", "make_cell",
           "peephole_update", "layernorm_update"]

LSTMVariant = Literal["lstm_peephole", "lstm_layernorm"]
LN_EPS = 1e-5


# ------------------------------------------------------------------------------------------ scripted math
@torch.jit.script
def peephole_update(i: Tensor, f: Tensor, g: Tensor, o: Tensor, c: Tensor, w_ci: Tensor, w_cf: Tensor,
                    w_co: Tensor) -> tuple[Tensor, Tensor]:
    """Pre-activation gates i, f, g, o (batch, hidden) each (no peephole terms yet) and c_{t-1} → h_t, c_t."""
    c_new = torch.sigmoid(f + w_cf * c) * c + torch.sigmoid(i + w_ci * c) * torch.tanh(g)
    return torch.sigmoid(o + w_co * c_new) * torch.tanh(c_new), c_new


@torch.jit.script
def layernorm_update(i: Tensor, f: Tensor, g: Tensor, o: Tensor, c: Tensor, ln_c_weight: Tensor,
                     ln_c_bias: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """Pre-activation gates i, f, g, o (batch, hidden) each and c_{t-1} → h_t = σ(o) ⊙ tanh(LN(c_t)), c_t."""
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    normed = F.layer_norm(c_new, [c_new.size(-1)], ln_c_weight, ln_c_bias, eps)
    return torch.sigmoid(o) * torch.tanh(normed), c_new


@torch.jit.script
def _keep(h_new: Tensor, c_new: Tensor, h: Tensor, c: Tensor, mask: Tensor | None, t: int
          ) -> tuple[Tensor, Tensor, Tensor]:
    """The states to carry and this step's output: past a sequence's end (mask False) the state stays, output 0."""
    if mask is None:
        return h_new, c_new, h_new
    m = mask[t]  # (B, 1)
    return torch.where(m, h_new, h), torch.where(m, c_new, c), h_new.masked_fill(~m, 0.0)


@torch.jit.script
def _peephole_recurrence(xg: Tensor, mask: Tensor | None, h: Tensor, c: Tensor, w_hh: Tensor, w_ci: Tensor,
                         w_cf: Tensor, w_co: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """xg: input gates with both biases (T, B, 4H); mask (T, B, 1) or None; h, c (B, H) → outputs (T, B, H), h, c."""
    w_t = w_hh.t()
    outputs: list[Tensor] = []
    for t, x_t in enumerate(xg.unbind(0)):  # unbind: one gradient for all steps, not one full-size per step
        i, f, g, o = torch.addmm(x_t, h, w_t).chunk(4, 1)
        h_new, c_new = peephole_update(i, f, g, o, c, w_ci, w_cf, w_co)
        h, c, out = _keep(h_new, c_new, h, c, mask, t)
        outputs.append(out)
    return torch.stack(outputs), h, c


@torch.jit.script
def _layernorm_recurrence(xg: Tensor, mask: Tensor | None, h: Tensor, c: Tensor, w_hh: Tensor, ln_hh_weight: Tensor,
                          ln_hh_bias: Tensor, ln_c_weight: Tensor, ln_c_bias: Tensor, eps: float
                          ) -> tuple[Tensor, Tensor, Tensor]:
    """xg: LN_ih(W x) + biases (T, B, 4H); mask (T, B, 1) or None; h, c (B, H) → outputs (T, B, H), h, c."""
    w_t = w_hh.t()
    shape = [w_hh.size(0)]
    outputs: list[Tensor] = []
    for t, x_t in enumerate(xg.unbind(0)):
        recurrent = F.layer_norm(torch.mm(h, w_t), shape, ln_hh_weight, ln_hh_bias, eps)  # (B, 4H)
        i, f, g, o = (x_t + recurrent).chunk(4, 1)
        h_new, c_new = layernorm_update(i, f, g, o, c, ln_c_weight, ln_c_bias, eps)
        h, c, out = _keep(h_new, c_new, h, c, mask, t)
        outputs.append(out)
    return torch.stack(outputs), h, c


# ------------------------------------------------------------------------------------------ parameters
def _register(module: nn.Module, kind: LSTMVariant, suffix: str, input_size: int, hidden_size: int) -> None:
    """Adds one layer-direction's parameters, named as `nn.LSTM`'s (`suffix` e.g. `_l0`, `_l1_reverse`, or '')."""
    shapes = {"weight_ih": (4 * hidden_size, input_size), "weight_hh": (4 * hidden_size, hidden_size),
              "bias_ih": (4 * hidden_size,), "bias_hh": (4 * hidden_size,)}
    if kind == "lstm_peephole":
        shapes |= {"weight_ci": (hidden_size,), "weight_cf": (hidden_size,), "weight_co": (hidden_size,)}
    else:
        for part, size in (("ih", 4 * hidden_size), ("hh", 4 * hidden_size), ("c", hidden_size)):
            shapes |= {f"ln_{part}_weight": (size,), f"ln_{part}_bias": (size,)}
    for name, shape in shapes.items():
        module.register_parameter(name + suffix, nn.Parameter(torch.empty(shape)))


def _reset(module: nn.Module, hidden_size: int) -> None:
    """`nn.LSTM`'s initialisation, U(-1/√H, 1/√H), for weights, biases and peepholes; LN gains 1 and LN biases 0."""
    bound = 1.0 / math.sqrt(hidden_size)
    with torch.no_grad():
        for name, param in module.named_parameters(recurse=False):
            if name.startswith("ln_"):
                param.fill_(1.0 if "_weight" in name else 0.0)
            else:
                param.uniform_(-bound, bound)


# ------------------------------------------------------------------------------------------ sequences
def _reverse(x: Tensor, lengths: Tensor | None) -> Tensor:
    """x (T, B, F) with each sequence reversed within its length (padding stays in place); its own inverse."""
    if lengths is None:
        return x.flip(0)
    steps = torch.arange(x.size(0), device=x.device).unsqueeze(1)  # (T, 1)
    ends = lengths.to(x.device).unsqueeze(0)  # (1, B)
    index = torch.where(steps < ends, ends - 1 - steps, steps)  # (T, B)
    return x.gather(0, index.unsqueeze(-1).expand_as(x))


def _repack(output: Tensor, lengths: Tensor, like: PackedSequence) -> PackedSequence:
    """output (B, T, F) in the original batch order → a PackedSequence with the ordering of `like`."""
    if like.sorted_indices is not None:
        order = like.sorted_indices.cpu()
        output, lengths = output[like.sorted_indices], lengths[order]
    packed = pack_padded_sequence(output, lengths, batch_first=True, enforce_sorted=True)
    return PackedSequence(packed.data, packed.batch_sizes, like.sorted_indices, like.unsorted_indices)


class _ScriptedLSTM(nn.Module):
    """`nn.LSTM`'s interface (batch_first only) around a TorchScript recurrence; subclasses: `kind`, `_recurrence`."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = True, dropout: float = 0.0, bidirectional: bool = False) -> None:
        super().__init__()
        if not batch_first or not bias:
            raise ValueError(f"{type(self).__name__} supports batch_first=True and bias=True only")
        if min(input_size, hidden_size, num_layers) < 1 or not 0 <= dropout < 1:
            raise ValueError("input_size, hidden_size and num_layers must be positive and dropout in [0, 1)")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first, self.bias, self.dropout, self.bidirectional = True, True, dropout, bidirectional
        directions = 2 if bidirectional else 1
        for layer in range(num_layers):
            for suffix in self._suffixes(layer):
                _register(self, self.kind, suffix, input_size if layer == 0 else hidden_size * directions,
                          hidden_size)
        _reset(self, hidden_size)

    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}"] + ([f"_l{layer}_reverse"] if self.bidirectional else [])

    def _p(self, name: str, suffix: str) -> Tensor:
        return getattr(self, name + suffix)  # getattr, so that functional_call's substitutes are seen

    def forward(self, input: Tensor | PackedSequence, hx: tuple[Tensor, Tensor] | None = None
                ) -> tuple[Tensor | PackedSequence, tuple[Tensor, Tensor]]:
        """input (batch, seq_len, input_size) or a PackedSequence; hx: h_0, c_0 (layers × directions, batch, hidden)
        → output of the same kind (batch, seq_len, directions × hidden; zero past each end when packed) and (h_n,
        c_n), each sequence's state at its own last token (the backward direction's at its first)."""
        packed = isinstance(input, PackedSequence)
        x, lengths = pad_packed_sequence(input, batch_first=True) if packed else (input, None)
        mask = None if lengths is None else (torch.arange(x.size(1)).unsqueeze(1) < lengths).unsqueeze(-1).to(x.device)
        directions = 2 if self.bidirectional else 1
        if hx is None:
            hx = (x.new_zeros(self.num_layers * directions, x.size(0), self.hidden_size),) * 2
        layer_input, hs, cs = x.transpose(0, 1), [], []  # (T, B, F)
        for layer in range(self.num_layers):
            if layer > 0 and self.training and self.dropout > 0:
                layer_input = F.dropout(layer_input, self.dropout, True)
            outputs = []
            for d, suffix in enumerate(self._suffixes(layer)):
                index = layer * directions + d
                seq = _reverse(layer_input, lengths) if d else layer_input
                with torch.jit.optimized_execution(False):  # the interpreter alone: no JIT autodiff graphs
                    out, h, c = self._recurrence(seq, mask, hx[0][index], hx[1][index], suffix)  # (T, B, H)
                outputs.append(_reverse(out, lengths) if d else out)
                hs.append(h)
                cs.append(c)
            layer_input = torch.cat(outputs, dim=-1)  # (T, B, directions × H)
        output = layer_input.transpose(0, 1)  # (B, T, directions × H)
        return (_repack(output, lengths, input) if packed else output), (torch.stack(hs), torch.stack(cs))

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, batch_first=True, "
                f"dropout={self.dropout}, bidirectional={self.bidirectional}")


class PeepholeLSTM(_ScriptedLSTM):
    """LSTM with diagonal peephole connections (module docstring); `nn.LSTM`'s arguments, batch_first only."""

    kind: LSTMVariant = "lstm_peephole"

    def _recurrence(self, x: Tensor, mask: Tensor | None, h: Tensor, c: Tensor, suffix: str
                    ) -> tuple[Tensor, Tensor, Tensor]:
        """x (T, B, F), mask (T, B, 1) or None, h, c (B, H) → outputs (T, B, H), h, c (B, H)."""
        p = self._p
        xg = F.linear(x, p("weight_ih", suffix), p("bias_ih", suffix) + p("bias_hh", suffix))  # (T, B, 4H)
        return _peephole_recurrence(xg, mask, h, c, p("weight_hh", suffix), p("weight_ci", suffix),
                                    p("weight_cf", suffix), p("weight_co", suffix))


class LayerNormLSTM(_ScriptedLSTM):
    """Layer-normalised LSTM (module docstring); `nn.LSTM`'s arguments, batch_first only."""

    kind: LSTMVariant = "lstm_layernorm"

    def _recurrence(self, x: Tensor, mask: Tensor | None, h: Tensor, c: Tensor, suffix: str
                    ) -> tuple[Tensor, Tensor, Tensor]:
        p = self._p
        projected = F.layer_norm(F.linear(x, p("weight_ih", suffix)), (4 * self.hidden_size,),
                                 p("ln_ih_weight", suffix), p("ln_ih_bias", suffix), LN_EPS)  # (T, B, 4H)
        xg = projected + (p("bias_ih", suffix) + p("bias_hh", suffix))
        return _layernorm_recurrence(xg, mask, h, c, p("weight_hh", suffix), p("ln_hh_weight", suffix),
                                     p("ln_hh_bias", suffix), p("ln_c_weight", suffix), p("ln_c_bias", suffix),
                                     LN_EPS)


# ------------------------------------------------------------------------------------------ single steps
class _StepCell(nn.Module):
    """`nn.LSTMCell`'s interface: parameters `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh` and the extra ones."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        _register(self, self.kind, "", input_size, hidden_size)
        _reset(self, hidden_size)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class PeepholeLSTMCell(_StepCell):
    """One step of `PeepholeLSTM`: input (batch, input_size), (h, c) (batch, hidden) each → (h', c')."""

    kind: LSTMVariant = "lstm_peephole"

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        gates = F.linear(input, self.weight_ih, self.bias_ih) + F.linear(hx[0], self.weight_hh, self.bias_hh)
        i, f, g, o = gates.chunk(4, dim=1)  # (B, H) each
        return peephole_update(i, f, g, o, hx[1], self.weight_ci, self.weight_cf, self.weight_co)


class LayerNormLSTMCell(_StepCell):
    """One step of `LayerNormLSTM`: input (batch, input_size), (h, c) (batch, hidden) each → (h', c')."""

    kind: LSTMVariant = "lstm_layernorm"

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        shape = (4 * self.hidden_size,)
        gates = (F.layer_norm(F.linear(input, self.weight_ih), shape, self.ln_ih_weight, self.ln_ih_bias, LN_EPS)
                 + F.layer_norm(F.linear(hx[0], self.weight_hh), shape, self.ln_hh_weight, self.ln_hh_bias, LN_EPS)
                 + self.bias_ih + self.bias_hh)  # (B, 4H)
        i, f, g, o = gates.chunk(4, dim=1)
        return layernorm_update(i, f, g, o, hx[1], self.ln_c_weight, self.ln_c_bias, LN_EPS)


def make_cell(rnn_type: str, input_size: int, hidden_size: int) -> nn.Module:
    """One-step cell for `lstm`, `gru`, `lstm_peephole` or `lstm_layernorm` (`nn.LSTMCell`'s interface, GRU's)."""
    cells = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "lstm_peephole": PeepholeLSTMCell,
             "lstm_layernorm": LayerNormLSTMCell}
    if rnn_type not in cells:
        raise ValueError(f"unknown cell type {rnn_type!r}; use one of {', '.join(cells)}")
    return cells[rnn_type](input_size, hidden_size)
