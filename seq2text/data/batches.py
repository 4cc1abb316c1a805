"""The batch contract: every data module produces these, every task consumes them."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

__all__ = ["ClassificationBatch", "LMBatch", "SeriesBatch", "TranslationBatch"]


class _Batch:
    def to(self, device: torch.device | str) -> _Batch:
        """The same batch with every tensor on `device`."""
        return type(self)(**{f.name: value.to(device) if isinstance(value := getattr(self, f.name), torch.Tensor)
                             else value for f in fields(self)})


@dataclass(frozen=True)
class LMBatch(_Batch):
    """One truncated-BPTT window of a batchified token stream.

    Attributes:
        input: token ids, (batch, seq_len).
        target: the next token of each position, (batch, seq_len).
        mask: True where `target` is real text, False on the padding of the stream's end, (batch, seq_len).
        lr_scale: learning-rate factor for variable BPTT (seq_len / bptt), 1.0 otherwise.
        reset: True for the first window of a pass: the recurrent state starts from zeros.
    """

    input: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor
    lr_scale: float = 1.0
    reset: bool = False

    @property
    def num_tokens(self) -> int:
        return int(self.mask.sum())


@dataclass(frozen=True)
class ClassificationBatch(_Batch):
    """Texts of similar length, padded, with their labels.

    Attributes:
        text: token ids, each text starting with the start token and right-padded with PAD_ID, (batch, max_len).
        lengths: tokens of each text (start token included, padding excluded), (batch,); all ≥ 1.
        labels: class index of each text, (batch,).
        indices: row of each text in its split, (batch,); -1 marks DDP filler (left out of loss and metrics).
        soft: a teacher's class probabilities of each text (distillation), (batch, num_classes), or None.
    """

    text: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor
    soft: torch.Tensor | None = None

    @property
    def num_tokens(self) -> int:
        return int(self.lengths.sum())

    @property
    def real(self) -> torch.Tensor:
        """True for the texts that count, (batch,)."""
        return self.indices >= 0


@dataclass(frozen=True)
class TranslationBatch(_Batch):
    """Sentence pairs of similar length, padded with PAD_ID.

    Attributes:
        src: source ids, each sentence ending with eos, (batch, src_len).
        src_lengths: tokens of each source (eos included), (batch,); all ≥ 1.
        trg_in: decoder input, bos + target ids, (batch, trg_len).
        trg_out: decoder target, target ids + eos, (batch, trg_len).
        trg_mask: True at the real positions of `trg_out`, (batch, trg_len).
        indices: line of each pair in its split's files (0-based), (batch,).
    """

    src: torch.Tensor
    src_lengths: torch.Tensor
    trg_in: torch.Tensor
    trg_out: torch.Tensor
    trg_mask: torch.Tensor
    indices: torch.Tensor

    @property
    def num_tokens(self) -> int:
        """Target tokens predicted (eos included)."""
        return int(self.trg_mask.sum())


@dataclass(frozen=True)
class SeriesBatch(_Batch):
    """Forecast windows: history read relative to its last value and divided by the series' scale.

    Attributes:
        input: (batch, lookback, input_size): the values, then calendar features.
        target: the next `horizon` values in the units of `input`, (batch, horizon, V).
        last: the last observed value of each window, (batch, V), in the series' units.
        scale: the series' scale, (batch, V): `target × scale + last` is the series' future.
        mase_scale: MASE's denominator of each window's series, (batch, V).
        naive: the seasonal-naive forecast in the units of `target`, (batch, horizon, V).
        series: the number of each window's series in the table (its row of a series embedding), (batch,) int64.
        weight: each window's weight in the training loss, (batch,): 1, or less for older training windows with
            data.recency (mean 1 over each series' training windows).
        indices: window number within its split, (batch,).
    """

    input: torch.Tensor
    target: torch.Tensor
    last: torch.Tensor
    scale: torch.Tensor
    mase_scale: torch.Tensor
    naive: torch.Tensor
    series: torch.Tensor
    weight: torch.Tensor
    indices: torch.Tensor

    @property
    def num_tokens(self) -> int:
        """Time steps read (the throughput unit)."""
        return self.input.size(0) * self.input.size(1)
