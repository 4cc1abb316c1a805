"""An ensemble of translation networks that decodes as one `Seq2Seq` (greedy and beam search take it as it is).

At every step each member reads its own encoder output and state; the ensemble's next-token distribution is
the mean of the members' probabilities (log-probabilities averaged in probability space, as fairseq and Joey
NMT do), so beam search ranks hypotheses by the ensemble's log-probability. The members must share the
vocabulary and the pad/bos/eos ids (the same tokenizer); their sizes, cells and attention may differ.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from seq2text.nn.seq2seq import Seq2Seq

__all__ = ["Seq2SeqEnsemble", "EnsembleEncoderOutput", "EnsembleState"]


@dataclass(frozen=True)
class _PerMember:
    """One `EncoderOutput` (or `DecoderState`) per member, same batch rows: what search does to one, done to each."""

    members: tuple

    def index_select(self, rows: torch.Tensor) -> _PerMember:
        """Keeps (or repeats) the batch rows `rows`, (n,), in every member (beam search reorders with this)."""
        return type(self)(tuple(member.index_select(rows) for member in self.members))

    @classmethod
    def cat(cls, batches: Sequence[_PerMember]) -> _PerMember:
        """The batches one after another, in every member (see `EncoderOutput.cat`)."""
        return cls(tuple(type(parts[0]).cat(parts) for parts in zip(*(b.members for b in batches), strict=True)))

    def trim(self) -> _PerMember:
        """Without the padding columns that no row reaches, in every member's `EncoderOutput`."""
        return type(self)(tuple(enc.trim() for enc in self.members))


EnsembleEncoderOutput = EnsembleState = _PerMember


class Seq2SeqEnsemble(nn.Module):
    """Two or more `Seq2Seq` networks with the same vocabulary size and pad/bos/eos ids, decoding together."""

    def __init__(self, members: Sequence[Seq2Seq]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two networks, got {len(members)}")
        first = members[0].config
        for number, config in enumerate((m.config for m in members[1:]), start=1):
            if (config.vocab_size, config.pad_id, config.bos_id, config.eos_id) != (
                    first.vocab_size, first.pad_id, first.bos_id, first.eos_id):
                raise ValueError(f"member {number} has vocabulary size {config.vocab_size} and pad/bos/eos ids "
                                 f"{(config.pad_id, config.bos_id, config.eos_id)}, member 0 has {first.vocab_size} "
                                 f"and {(first.pad_id, first.bos_id, first.eos_id)}: ensemble members must share "
                                 "the tokenizer")
        self.members, self.config = nn.ModuleList(members), first
        self.pad_id, self.bos_id, self.eos_id = first.pad_id, first.bos_id, first.eos_id

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[EnsembleEncoderOutput, EnsembleState]:
        """Encodes a source batch, (batch, src_len) ids and (batch,) lengths, with every member."""
        encoded = [member.encode(src, src_lengths) for member in self.members]
        return EnsembleEncoderOutput(tuple(e for e, _ in encoded)), EnsembleState(tuple(s for _, s in encoded))

    def decode_step(self, tokens: torch.Tensor, state: EnsembleState, enc: EnsembleEncoderOutput
                    ) -> tuple[torch.Tensor, EnsembleState, torch.Tensor]:
        """One step of every member (arguments as `Seq2Seq.decode_step`) → log of the members' mean probability (n,
        vocab_size) float32, the new states, and the members' mean attention weights (n, src_len)."""
        steps = [member.decode_step(tokens, member_state, member_enc)
                 for member, member_state, member_enc in zip(self.members, state.members, enc.members, strict=True)]
        log_probs = torch.stack([log_p for log_p, _, _ in steps])  # (members, n, V)
        mean = torch.logsumexp(log_probs, dim=0) - math.log(len(steps))  # (n, V)
        weights = torch.stack([w.float() for _, _, w in steps]).mean(dim=0)  # (n, S)
        return mean, EnsembleState(tuple(s for _, s, _ in steps)), weights
