"""Attentional encoder–decoder: bidirectional LSTM/GRU encoder, bridge, input-feeding decoder, tied softmax.
The LSTM variants of `cells` (`lstm_peephole`, `lstm_layernorm`) serve in the encoder and the decoder too.

The decoder follows Luong et al. (2015) with input feeding, for every attention type (as Joey NMT does):

    gates_t  = W_e · emb(y_{t-1}) + W_r · [att_{t-1}; h_{t-1}]     (first layer)
    h_t      = cell(gates_t)
    c_t, a_t = attention(h_t (top layer), keys, memory, mask)
    att_t    = tanh(W_a · dropout([h_t; c_t]))                        (fed to step t+1)
    logits_t = att_t · E^T + b                                        (E: the tied embedding)

CPU speed: only the recurrence runs step by step. The embedding half of the first layer's gates
(`W_e · emb` for every target position), the attention keys and the output projection + softmax are
each computed once per batch with one large matmul; training projects only the non-padding positions.

With `tie_weights="all"` one embedding matrix (joint vocabulary) serves as source embedding, target
embedding and output projection.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seq2text.nn.attention import AttentionType, make_attention
from seq2text.nn.cells import LN_EPS, layernorm_update, make_cell, peephole_update
from seq2text.nn.config import Config
from seq2text.nn.rnn import make_rnn

__all__ = ["Seq2Seq", "Seq2SeqConfig", "Encoder", "Decoder", "EncoderOutput", "DecoderState", "FeedingCell", "CellType",
           "TieWeights"]

TieWeights = Literal["none", "decoder", "all"]
CellType = Literal["lstm", "gru", "lstm_peephole", "lstm_layernorm"]


@dataclass(frozen=True)
class EncoderOutput:
    """What the decoder reads at every step."""

    memory: torch.Tensor  # (batch, src_len, memory_size) encoder outputs, zero at padding
    keys: torch.Tensor  # (batch, src_len, key_size): `attention.project_keys(memory)`
    mask: torch.Tensor  # (batch, src_len) True at real source positions

    def index_select(self, rows: torch.Tensor) -> EncoderOutput:
        """Keeps (or repeats) the batch rows `rows`, (n,)."""
        return EncoderOutput(self.memory[rows], self.keys[rows], self.mask[rows])

    def trim(self) -> EncoderOutput:
        """Without the padding columns that no row reaches (after the longest sources left a batch)."""
        width = int(self.mask.sum(1).max())
        if width == self.mask.size(1):
            return self
        return EncoderOutput(self.memory[:, :width].contiguous(), self.keys[:, :width].contiguous(),
                             self.mask[:, :width].contiguous())

    @staticmethod
    def cat(outputs: Sequence[EncoderOutput]) -> EncoderOutput:
        """The batches one after another, shorter sources padded (zeros, masked out) to the longest."""
        width = max(o.mask.size(1) for o in outputs)
        def pad(x: torch.Tensor, value: float | bool = 0) -> torch.Tensor:  # (B, S, ...) → (B, width, ...)
            return F.pad(x, (0, 0) * (x.dim() - 2) + (0, width - x.size(1)), value=value)
        return EncoderOutput(torch.cat([pad(o.memory) for o in outputs]), torch.cat([pad(o.keys) for o in outputs]),
                             torch.cat([pad(o.mask, False) for o in outputs]))


@dataclass(frozen=True)
class DecoderState:
    """The recurrent state between decoder steps."""

    hidden: tuple[torch.Tensor, ...]  # per layer, (batch, hidden_size)
    cell: tuple[torch.Tensor, ...]  # per layer LSTM cell state, (batch, hidden_size); empty for GRU
    att: torch.Tensor  # (batch, att_size) the previous attentional vector (input feeding)

    def index_select(self, rows: torch.Tensor) -> DecoderState:
        """Keeps (or repeats) the batch rows `rows`, (n,) (beam search reorders with this)."""
        return DecoderState(tuple(h[rows] for h in self.hidden), tuple(c[rows] for c in self.cell), self.att[rows])

    @staticmethod
    def cat(states: Sequence[DecoderState]) -> DecoderState:
        """The batches' states one after another."""
        return DecoderState(tuple(torch.cat(layer) for layer in zip(*(s.hidden for s in states), strict=True)),
                            tuple(torch.cat(layer) for layer in zip(*(s.cell for s in states), strict=True)),
                            torch.cat([s.att for s in states]))


class Encoder(nn.Module):
    """Bidirectional `num_layers` deep recurrent layers (`rnn.make_rnn`) over packed sequences; `dropout` between
    layers, `hidden_size` per direction."""

    def __init__(self, rnn_type: CellType, emb_size: int, hidden_size: int, num_layers: int,
                 dropout: float) -> None:
        super().__init__()
        self.rnn = make_rnn(rnn_type, emb_size, hidden_size, num_layers, bidirectional=True, dropout=dropout)

    def forward(self, emb: torch.Tensor, lengths: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """emb (batch, src_len, emb_size), lengths (batch,) each ≥ 1 → memory (batch, src_len, 2 × hidden_size), zero
        at padding, and the top layer's final hidden and LSTM cell state (None for GRU), (batch, 2 × hidden_size),
        both directions concatenated."""
        packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        output, final = self.rnn(packed)
        memory, _ = pad_packed_sequence(output, batch_first=True, total_length=emb.size(1))
        h_n, c_n = final if isinstance(final, tuple) else (final, None)  # (layers × 2, batch, hidden)
        top_h = torch.cat([h_n[-2], h_n[-1]], dim=-1)  # (batch, 2 × hidden)
        top_c = torch.cat([c_n[-2], c_n[-1]], dim=-1) if c_n is not None else None
        return memory, top_h, top_c


class FeedingCell(nn.Module):
    """The decoder's first recurrent layer with its input split in two: the embedding part of the gates
    is computed for all steps at once (`project_input`), the input-feeding part (`feed_size` wide) at each `step`.
    Gate layout: LSTM (input, forget, output, candidate); GRU (reset, update, new) as in `nn.GRUCell`.
    `lstm_peephole` adds the peepholes w_ci, w_cf (on c_{t-1}) and w_co (on c_t); `lstm_layernorm` normalises the
    embedding part and the recurrent part ([att; h]) of the gates separately and c_t before the output tanh
    (the equations of `cells`).
    """

    def __init__(self, rnn_type: CellType, emb_size: int, feed_size: int, hidden_size: int) -> None:
        super().__init__()
        self.rnn_type, self.hidden_size = rnn_type, hidden_size
        gates = (3 if rnn_type == "gru" else 4) * hidden_size
        self.input_layer = nn.Linear(emb_size, gates)
        if rnn_type != "gru":
            self.recurrent_layer = nn.Linear(feed_size + hidden_size, gates, bias=False)
            with torch.no_grad():
                self.input_layer.bias[hidden_size: 2 * hidden_size].fill_(1.0)  # forget-gate bias 1
        else:
            self.feed_layer = nn.Linear(feed_size, gates, bias=False)
            self.hidden_layer = nn.Linear(hidden_size, gates)
        if rnn_type == "lstm_peephole":
            bound = 1.0 / math.sqrt(hidden_size)  # nn.LSTM's initialisation
            self.weight_ci, self.weight_cf, self.weight_co = (
                nn.Parameter(torch.empty(hidden_size).uniform_(-bound, bound)) for _ in range(3))
        if rnn_type == "lstm_layernorm":
            self.ln_ih, self.ln_hh, self.ln_c = nn.LayerNorm(gates), nn.LayerNorm(gates), nn.LayerNorm(hidden_size)
            with torch.no_grad():
                self.ln_ih.bias[hidden_size: 2 * hidden_size].fill_(1.0)  # forget-gate bias 1, after the norm

    def project_input(self, emb: torch.Tensor) -> torch.Tensor:
        """emb (..., emb_size) → the embedding part of the gates (..., 4 or 3 × hidden_size)."""
        gates = self.input_layer(emb)
        return self.ln_ih(gates) if self.rnn_type == "lstm_layernorm" else gates

    def step(self, input_gates: torch.Tensor, feed: torch.Tensor, hidden: torch.Tensor,
             cell: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One step: input_gates (batch, gates), feed (batch, feed_size), hidden/cell (batch, hidden_size)
        → new hidden and cell (cell is None for GRU). Nonlinearities and the cell state stay in float32."""
        size = self.hidden_size
        if self.rnn_type == "gru":
            gx = (input_gates + self.feed_layer(feed)).float()  # (B, 3H)
            gh = self.hidden_layer(hidden).float()  # (B, 3H)
            reset_update = (gx[:, : 2 * size] + gh[:, : 2 * size]).sigmoid()
            new = torch.tanh(gx[:, 2 * size:] + reset_update[:, :size] * gh[:, 2 * size:])
            return new + reset_update[:, size:] * (hidden.float() - new), None
        recurrent = self.recurrent_layer(torch.cat([feed, hidden], dim=1))  # (B, 4H)
        if self.rnn_type == "lstm_layernorm":
            recurrent = self.ln_hh(recurrent)
        gates = (input_gates + recurrent).float()  # (B, 4H)
        i, f, o, g = gates.chunk(4, dim=1)
        if self.rnn_type == "lstm_peephole":
            return peephole_update(i, f, g, o, cell, self.weight_ci, self.weight_cf, self.weight_co)
        if self.rnn_type == "lstm_layernorm":
            return layernorm_update(i, f, g, o, cell, self.ln_c.weight, self.ln_c.bias, LN_EPS)
        sig = gates[:, : 3 * size].sigmoid()
        cell = sig[:, size: 2 * size] * cell + sig[:, :size] * gates[:, 3 * size:].tanh()
        return sig[:, 2 * size: 3 * size] * cell.tanh(), cell


class Decoder(nn.Module):
    """Input-feeding attentional decoder (module docstring; arguments as in `Seq2SeqConfig`); `memory_size`: encoder
    output width, `att_size`: width of the attentional vector."""

    def __init__(self, rnn_type: CellType, emb_size: int, hidden_size: int, memory_size: int, att_size: int,
                 num_layers: int, attention: AttentionType, attention_size: int, dropout: float) -> None:
        super().__init__()
        self.rnn_type, self.num_layers, self.att_size, self.dropout = rnn_type, num_layers, att_size, dropout
        self.first = FeedingCell(rnn_type, emb_size, att_size, hidden_size)
        self.upper = nn.ModuleList(make_cell(rnn_type, hidden_size, hidden_size) for _ in range(num_layers - 1))
        self.attention = make_attention(attention, hidden_size, memory_size, attention_size)
        self.att_layer = nn.Linear(hidden_size + memory_size, att_size, bias=False)

    def step(self, input_gates: torch.Tensor, state: DecoderState, enc: EncoderOutput
             ) -> tuple[DecoderState, torch.Tensor]:
        """input_gates `first.project_input(emb(y_{t-1}))` (batch, gates), the state after step t-1, and `enc` with
        batch / group rows (each serving `group` consecutive state rows: a sentence's beams) → the new state (`att`
        (batch, att_size) is this step's attentional vector) and the attention weights (batch, src_len)."""
        lstm = self.rnn_type != "gru"  # an LSTM variant: a cell state per layer
        h, c = self.first.step(input_gates, state.att, state.hidden[0], state.cell[0] if lstm else None)
        hidden, cells = [h], [c] if lstm else []
        for i, layer in enumerate(self.upper, start=1):
            x = F.dropout(h, self.dropout, self.training)
            if lstm:
                h, c = layer(x, (state.hidden[i], state.cell[i]))
                cells.append(c)
            else:
                h = layer(x, state.hidden[i])
            hidden.append(h)
        context, weights = self.attention(h, enc.keys, enc.memory, enc.mask)  # (B, M), (B, S)
        features = F.dropout(torch.cat([h.to(context.dtype), context], dim=-1), self.dropout, self.training)
        att = torch.tanh(self.att_layer(features))  # (B, att_size)
        return DecoderState(tuple(hidden), tuple(cells), att), weights


@dataclass(frozen=True)
class Seq2SeqConfig(Config):
    """The translation network's architecture.

    Args:
        vocab_size: size of the joint source/target vocabulary.
        emb_size: embedding width.
        hidden_size: decoder state width.
        encoder_hidden_size: encoder width per direction (default hidden_size // 2, so that the memory is
            hidden_size wide, as `luong_dot` requires).
        num_encoder_layers: encoder depth.
        num_decoder_layers: decoder depth.
        rnn_type: `lstm`, `gru`, `lstm_peephole` or `lstm_layernorm` (encoder and decoder).
        attention: `bahdanau`, `luong_general` or `luong_dot`.
        attention_size: Bahdanau MLP width (default hidden_size).
        dropout: on embeddings, between layers and on the attentional layer's input.
        tie_weights: `all` (source embedding = target embedding = output projection), `decoder`
            (target embedding = output projection) or `none`.
        pad_id: padding id; bos_id / eos_id: start and end of a target sentence.
    """

    vocab_size: int
    emb_size: int = 256
    hidden_size: int = 256
    encoder_hidden_size: int | None = None
    num_encoder_layers: int = 1
    num_decoder_layers: int = 1
    rnn_type: CellType = "gru"
    attention: AttentionType = "bahdanau"
    attention_size: int | None = None
    dropout: float = 0.2
    tie_weights: TieWeights = "all"
    pad_id: int = 0
    bos_id: int = 2
    eos_id: int = 3

    def __post_init__(self) -> None:
        if self.rnn_type not in ("lstm", "gru", "lstm_peephole", "lstm_layernorm"):
            raise ValueError(f"unknown rnn_type {self.rnn_type!r} for translation; use lstm, gru, lstm_peephole or "
                             "lstm_layernorm")
        # the defaults that depend on other fields are resolved once, so that a bundle stores the sizes
        object.__setattr__(self, "encoder_hidden_size", self.encoder_hidden_size or max(1, self.hidden_size // 2))
        object.__setattr__(self, "attention_size", self.attention_size or self.hidden_size)

    @property
    def memory_size(self) -> int:
        """Width of the encoder memory: both directions."""
        return 2 * self.encoder_hidden_size

    @property
    def att_size(self) -> int:
        """Width of the attentional vector: the embedding width when the output layer is tied."""
        return self.emb_size if self.tie_weights != "none" else self.hidden_size


class Seq2Seq(nn.Module):
    """The translation network: embeddings, `Encoder`, bridge, `Decoder`, tied output layer, from a `Seq2SeqConfig`."""

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        c = self.config = config
        self.pad_id, self.bos_id, self.eos_id, self.dropout = c.pad_id, c.bos_id, c.eos_id, c.dropout
        self.embedding = nn.Embedding(c.vocab_size, c.emb_size, padding_idx=c.pad_id)
        self.src_embedding = (None if c.tie_weights == "all"
                              else nn.Embedding(c.vocab_size, c.emb_size, padding_idx=c.pad_id))
        self.encoder = Encoder(c.rnn_type, c.emb_size, c.encoder_hidden_size, c.num_encoder_layers, c.dropout)
        states = c.num_decoder_layers * c.hidden_size  # every decoder layer's initial state, from the encoder's
        self.bridge = nn.Linear(c.memory_size, states)
        self.cell_bridge = nn.Linear(c.memory_size, states) if c.rnn_type != "gru" else None
        self.decoder = Decoder(c.rnn_type, c.emb_size, c.hidden_size, c.memory_size, c.att_size, c.num_decoder_layers,
                               c.attention, c.attention_size, c.dropout)
        self.out_weight = None if c.tie_weights != "none" else nn.Parameter(torch.empty(c.vocab_size, c.att_size))
        self.out_bias = nn.Parameter(torch.zeros(c.vocab_size))
        self.output_layer: nn.Linear | None = None  # set by `untie_output` for inference only
        self._transposed: tuple[tuple, torch.Tensor] | None = None  # see `_decoding_weight`
        embeddings = [e for e in (self.embedding, self.src_embedding) if e is not None]
        for weight in [e.weight for e in embeddings] + ([] if self.out_weight is None else [self.out_weight]):
            nn.init.uniform_(weight, -0.1, 0.1)
        with torch.no_grad():
            for embedding in embeddings:
                embedding.weight[self.pad_id].zero_()

    @property
    def output_weight(self) -> torch.Tensor:
        """(vocab_size, att_size): the target embedding when tied."""
        return self.embedding.weight if self.out_weight is None else self.out_weight

    # ------------------------------------------------------------------------------------------ encoder
    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[EncoderOutput, DecoderState]:
        """src (batch, src_len) ids padded with `pad_id`, src_lengths (batch,) each ≥ 1 → the encoder output and the
        initial decoder state (zeros as the first fed attentional vector)."""
        embedding = self.embedding if self.src_embedding is None else self.src_embedding
        emb = F.dropout(embedding(src), self.dropout, self.training)  # (B, S, E)
        memory, final_h, final_c = self.encoder(emb, src_lengths)  # (B, S, M), (B, M)
        if torch.is_autocast_enabled(src.device.type):  # cast once here, not at every decoder step (bf16-mixed)
            memory = memory.to(torch.get_autocast_dtype(src.device.type))
        mask = torch.arange(src.size(1), device=src.device).unsqueeze(0) < src_lengths.unsqueeze(1)  # (B, S)
        enc = EncoderOutput(memory, self.decoder.attention.project_keys(memory), mask)
        layers = self.decoder.num_layers
        hidden = torch.tanh(self.bridge(final_h)).float().chunk(layers, dim=-1)  # layers × (B, H), float32 states
        cell = torch.tanh(self.cell_bridge(final_c)).float().chunk(layers, dim=-1) if final_c is not None else ()
        att = memory.new_zeros(src.size(0), self.decoder.att_size)  # (B, att_size)
        return enc, DecoderState(tuple(hidden), tuple(cell), att)

    # ------------------------------------------------------------------------------------------ training
    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, trg_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced decoding: src (batch, src_len) ids, src_lengths (batch,), trg_in (batch, trg_len) starting
        with `bos_id` → the attentional vectors, (batch, trg_len, att_size); `logits` turns them into scores."""
        enc, state = self.encode(src, src_lengths)
        emb = F.dropout(self.embedding(trg_in), self.dropout, self.training)  # (B, T, E)
        input_gates = self.decoder.first.project_input(emb)  # (B, T, gates): one matmul for all steps
        outputs = []
        for gates in input_gates.unbind(1):  # unbind: one gradient for all steps, not one full-size per step
            state, _ = self.decoder.step(gates, state, enc)
            outputs.append(state.att)
        return torch.stack(outputs, dim=1)  # (B, T, att_size)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """features (..., att_size) → vocabulary scores (..., vocab_size)."""
        if self.output_layer is not None:
            return self.output_layer(features)
        if features.dim() == 2 and features.device.type == "cpu" and not (self.training or torch.is_grad_enabled()):
            return torch.addmm(self.out_bias, features, self._decoding_weight())
        return F.linear(features, self.output_weight, self.out_bias)

    def _decoding_weight(self) -> torch.Tensor:
        """The output weight transposed, contiguous (att_size, vocab_size): MKL multiplies this layout a little faster
        on a CPU (`benchmarks/decode_kernels.py`). Dropped by `train()`/`eval()`, rebuilt when the weight changes."""
        weight = self.output_weight
        key = (weight.data_ptr(), weight._version, weight.dtype)
        if self._transposed is None or self._transposed[0] != key:
            with torch.inference_mode(False):
                self._transposed = (key, weight.detach().t().contiguous())
        return self._transposed[1]

    def train(self, mode: bool = True) -> Seq2Seq:
        """As `nn.Module.train`, dropping the decoding copy of the output weight (a fused optimizer step changes the
        weight without bumping its version)."""
        self._transposed = None
        return super().train(mode)

    def untie_output(self) -> None:
        """Copies the output projection (the tied embedding when tied) into its own `nn.Linear` for inference,
        so that a layer-swapping transform (int8 dynamic quantisation) reaches it too; training keeps it tied."""
        layer = nn.Linear(self.output_weight.size(1), self.output_weight.size(0))
        with torch.no_grad():
            layer.weight.copy_(self.output_weight)
            layer.bias.copy_(self.out_bias)
        self.output_layer = layer.to(self.out_bias.device)

    # ------------------------------------------------------------------------------------------ search
    def decode_step(self, tokens: torch.Tensor, state: DecoderState, enc: EncoderOutput
                    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """One free-running step: the previous tokens (n,), the state and the encoder output (as in `Decoder.step`)
        → log-probabilities (n, vocab_size) float32, the new state, attention weights (n, src_len)."""
        gates = self.decoder.first.project_input(self.embedding(tokens))  # (n, gates)
        state, weights = self.decoder.step(gates, state, enc)
        return F.log_softmax(self.logits(state.att).float(), dim=-1), state, weights
