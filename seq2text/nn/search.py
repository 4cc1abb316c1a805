"""Decoding a `Seq2Seq`: batched greedy and beam search.

Every decision is taken per sentence (its own maximum length, its own top-k), and sentences that are
done leave the batch, so the output of a sentence is the same whatever batch it is decoded in.

Beam search keeps `beam_size` live hypotheses per sentence. At each step it takes the best
2 × beam_size expansions; those ending in eos among the first beam_size are finished (scored with the
length penalty `log_prob / length ** length_penalty`, the length counting eos), and the best beam_size
others stay live. A sentence stops when beam_size hypotheses have finished (all its beams have ended)
or at its maximum length `floor(max_len_ratio × src_len) + max_len_offset` (where every live beam is
ended with eos); the search stops when every sentence has.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from seq2text.nn.seq2seq import DecoderState, EncoderOutput, Seq2Seq

__all__ = ["ContinuousBeamSearch", "Hypothesis", "SearchConfig", "beam_search", "greedy_search", "max_lengths",
           "search"]


@dataclass(frozen=True)
class SearchConfig:
    """How a translation model decodes by default (stored in its bundle; the `Translator` may override per call).

    Attributes:
        beam_size: live hypotheses per sentence (1 = greedy).
        length_penalty: exponent α of beam search's length normalization (0: raw log-probabilities).
        max_len_ratio, max_len_offset: hypotheses stop at floor(max_len_ratio × source length) + max_len_offset.
    """

    beam_size: int = 5
    length_penalty: float = 1.0
    max_len_ratio: float = 1.5
    max_len_offset: int = 10


_DEFAULT = SearchConfig()


@dataclass(frozen=True)
class Hypothesis:
    """One decoded sentence.

    Attributes:
        tokens: target ids without bos and eos.
        score: the ranking score (log_prob / length ** length_penalty; log_prob for greedy).
        log_prob: summed log-probability of the tokens and eos.
        attention: (len(tokens) + 1, src_len) weights of every step (eos included), or None.
    """

    tokens: list[int]
    score: float
    log_prob: float
    attention: torch.Tensor | None = None


def max_lengths(src_lengths: torch.Tensor, config: SearchConfig) -> torch.Tensor:
    """Per-sentence limit on generated tokens (eos included): floor(max_len_ratio × src_len) + max_len_offset ≥ 1."""
    limits = (src_lengths.float() * config.max_len_ratio).floor().long()
    return limits.add(config.max_len_offset).clamp(min=1)  # (batch,)


def search(model: Seq2Seq, src: torch.Tensor, src_lengths: torch.Tensor, config: SearchConfig = _DEFAULT,
           n_best: int = 1, return_attention: bool = False) -> list[list[Hypothesis]]:
    """Greedy search for `config.beam_size` 1, else `beam_search`: per sentence, up to `n_best` hypotheses, best
    first. The one place that chooses between them."""
    if config.beam_size == 1:
        return [[h] for h in greedy_search(model, src, src_lengths, config, return_attention)]
    return beam_search(model, src, src_lengths, config, n_best, return_attention)


# ---------------------------------------------------------------------------------------------- greedy
@torch.inference_mode()
def greedy_search(model: Seq2Seq, src: torch.Tensor, src_lengths: torch.Tensor, config: SearchConfig = _DEFAULT,
                  return_attention: bool = False) -> list[Hypothesis]:
    """Picks the most likely token at every step (`.eval()` the model first): src (batch, src_len) ids, src_lengths
    (batch,) → one hypothesis per sentence, in batch order. Of `config` only the length limit is used."""
    enc, state = model.encode(src, src_lengths)
    limits = max_lengths(src_lengths, config).tolist()
    rows = list(range(src.size(0)))  # the sentence of each live row
    tokens = src.new_full((src.size(0),), model.bos_id)
    steps: list[tuple[list[int], list[int], list[float], torch.Tensor | None]] = []
    for t in range(max(limits)):
        log_probs, state, weights = model.decode_step(tokens, state, enc)  # (n, V), (n, S)
        at_limit = torch.tensor([limits[r] <= t + 1 for r in rows], device=src.device)
        tokens = log_probs.argmax(dim=-1).masked_fill(at_limit, model.eos_id)  # (n,)
        picked = log_probs.gather(1, tokens.unsqueeze(1)).squeeze(1)  # (n,)
        steps.append((rows, tokens.tolist(), picked.tolist(), weights.float() if return_attention else None))
        live = (tokens != model.eos_id).nonzero().squeeze(1)  # (n',)
        if live.numel() == 0:
            break
        if live.numel() < len(rows):
            rows = [rows[i] for i in live.tolist()]
            tokens, state, enc = tokens[live], state.index_select(live), enc.index_select(live)
    return _greedy_results(steps, src_lengths.tolist(), model.eos_id)


def _greedy_results(steps: list, src_lengths: list[int], eos_id: int) -> list[Hypothesis]:
    """Reassembles per-step (rows, tokens, log-probs, weights) into one hypothesis per sentence."""
    tokens, attention = [[] for _ in src_lengths], [[] for _ in src_lengths]  # per sentence: ids, (src_len,) weights
    log_probs = [0.0] * len(src_lengths)
    for rows, picked, scores, weights in steps:
        for i, row in enumerate(rows):
            tokens[row].append(picked[i])
            log_probs[row] += scores[i]
            if weights is not None:
                attention[row].append(weights[i, : src_lengths[row]])
    return [Hypothesis(seq[:-1] if seq and seq[-1] == eos_id else seq, lp, lp, torch.stack(att) if att else None)
            for seq, lp, att in zip(tokens, log_probs, attention, strict=True)]


# ---------------------------------------------------------------------------------------------- beam
@dataclass
class _Beams:
    """The live part of a beam search: `live` sentences × `k` beams, flattened as row = sentence × k + beam."""

    sentences: torch.Tensor  # (live,) the original index of each live sentence
    scores: torch.Tensor  # (live, k) summed log-probabilities; -inf for empty beams
    history: torch.Tensor  # (live, k, t) generated tokens
    attention: torch.Tensor | None  # (live, k, t, src_len) weights of every step, or None
    state: DecoderState  # live × k rows
    enc: EncoderOutput  # live rows: a sentence's k beams share its row (attention broadcasts it)


@torch.inference_mode()
def beam_search(model: Seq2Seq, src: torch.Tensor, src_lengths: torch.Tensor, config: SearchConfig = _DEFAULT,
                n_best: int = 1, return_attention: bool = False) -> list[list[Hypothesis]]:
    """Batched beam search (rules in the module docstring; `.eval()` the model first): src (batch, src_len) ids,
    src_lengths (batch,) → per sentence, up to `n_best` (≤ beam_size) hypotheses, best first."""
    _check_n_best(n_best, config)
    sentences = torch.arange(src.size(0), device=src.device)
    beams, tokens = _new_beams(model, src, src_lengths, config.beam_size, sentences, return_attention)
    limits = max_lengths(src_lengths, config)
    finished: list[list[Hypothesis]] = [[] for _ in range(src.size(0))]
    for t in range(int(limits.max())):
        at_limit = limits[beams.sentences] <= t + 1  # (live,)
        tokens, _, _ = _advance(model, beams, tokens, at_limit, t, config.length_penalty, finished, src_lengths)
        if beams.sentences.numel() == 0:
            break
    return [_best(hyps, n_best) for hyps in finished]


def _best(hyps: list[Hypothesis], n_best: int) -> list[Hypothesis]:
    return sorted(hyps, key=lambda h: -h.score)[:n_best]


def _check_n_best(n_best: int, config: SearchConfig) -> None:
    if not 1 <= n_best <= config.beam_size:
        raise ValueError(f"n_best={n_best} must lie in [1, beam_size={config.beam_size}]")


def _new_beams(model: Seq2Seq, src: torch.Tensor, src_lengths: torch.Tensor, k: int, sentences: torch.Tensor,
               return_attention: bool) -> tuple[_Beams, torch.Tensor]:
    """Encodes n sentences into beams (beam 0 live, the others -inf) and their first tokens, bos (n × k,)."""
    n = src.size(0)
    enc, state = model.encode(src, src_lengths)
    expand = torch.arange(n, device=src.device).repeat_interleave(k)  # (n × k,)
    scores = torch.full((n, k), -math.inf, device=src.device)
    scores[:, 0] = 0.0
    attention = src.new_empty((n, k, 0, src.size(1)), dtype=torch.float) if return_attention else None
    beams = _Beams(sentences, scores, src.new_empty((n, k, 0)), attention, state.index_select(expand), enc)
    return beams, src.new_full((n * k,), model.bos_id)


def _advance(model: Seq2Seq, beams: _Beams, tokens: torch.Tensor, at_limit: torch.Tensor, made: int | list[int],
             length_penalty: float, finished: list[list[Hypothesis]] | dict[int, list[Hypothesis]],
             src_lengths: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """One step of every live sentence (`_expand`, `_finalize`, `_prune`) → the next tokens (live' × k,), the rows
    kept (live',) and the sentences that ended."""
    log_probs, beams.state, weights = model.decode_step(tokens, beams.state, beams.enc)  # (live × k, V)
    top_scores, origin, top_tokens = _expand(log_probs, beams.scores, at_limit, model.eos_id)
    done = _finalize(beams, top_scores, origin, top_tokens, weights, made, length_penalty, model.eos_id, finished,
                     src_lengths) | at_limit
    ended = beams.sentences[done].tolist()
    tokens, keep = _prune(beams, top_scores, origin, top_tokens, weights, done, model.eos_id)
    return tokens, keep, ended


def _expand(log_probs: torch.Tensor, scores: torch.Tensor, at_limit: torch.Tensor, eos_id: int
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keeps each sentence's best 2k one-token extensions: log_probs (live × k, V), scores (live, k), at_limit
    (live,) sentences that must end now → scores, beam of origin and token, each (live, 2k), best first."""
    (live, k), vocab = scores.shape, log_probs.size(-1)
    log_probs = log_probs.view(live, k, vocab)
    if bool(at_limit.any()):
        forced = torch.full_like(log_probs, -math.inf)
        forced[..., eos_id] = log_probs[..., eos_id]
        log_probs = torch.where(at_limit.view(live, 1, 1), forced, log_probs)
    width = min(2 * k, vocab)  # a sentence's best 2k extensions lie among its beams' best 2k each
    beam_scores, beam_tokens = log_probs.topk(width, dim=2)  # (live, k, width)
    candidates = (scores.unsqueeze(2) + beam_scores).view(live, k * width)  # (live, k × width)
    top_scores, top_index = candidates.topk(min(2 * k, k * width), dim=1)  # (live, 2k)
    return top_scores, top_index // width, beam_tokens.view(live, k * width).gather(1, top_index)


def _finalize(beams: _Beams, top_scores: torch.Tensor, origin: torch.Tensor, top_tokens: torch.Tensor,
              weights: torch.Tensor, made: int | list[int], length_penalty: float, eos_id: int,
              finished: list[list[Hypothesis]] | dict[int, list[Hypothesis]],
              src_lengths: torch.Tensor | None) -> torch.Tensor:
    """Moves extensions ending in eos (among each sentence's best k) to `finished` → (live,) True for the sentences
    that now have k finished hypotheses. `made`: tokens each live sentence generated before this step (its history
    is the last `made` columns of `beams.history`); `src_lengths` cut the attention weights (when kept)."""
    k = beams.scores.size(1)
    ends = (top_tokens[:, :k] == eos_id) & torch.isfinite(top_scores[:, :k])  # (live, k)
    sentences = beams.sentences.tolist()
    width = beams.history.size(2)
    for row, rank in ends.nonzero().tolist():
        sentence = sentences[row]
        if len(finished[sentence]) >= k:
            continue
        steps = made if isinstance(made, int) else made[row]
        beam = int(origin[row, rank])
        log_prob, attention = float(top_scores[row, rank]), None
        if beams.attention is not None:
            steps_att = torch.cat([beams.attention[row, beam],
                                   weights.view(*beams.scores.shape, -1)[row, beam, None]])
            attention = steps_att[:, : int(src_lengths[sentence])].clone()  # (t + 1, src_len)
        tokens = beams.history[row, beam, width - steps:].tolist()
        finished[sentence].append(Hypothesis(tokens, log_prob / float(steps + 1) ** length_penalty, log_prob,
                                             attention))
    counts = torch.tensor([len(finished[s]) for s in sentences], device=top_scores.device)
    return counts >= k


def _prune(beams: _Beams, top_scores: torch.Tensor, origin: torch.Tensor, top_tokens: torch.Tensor,
           weights: torch.Tensor, done: torch.Tensor, eos_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keeps each sentence's best k extensions not ending in eos, drops the sentences done, reorders the state →
    the last token of every live beam (live' × k,) and the rows of the sentences kept (live',)."""
    live, k = beams.scores.shape
    is_eos = (top_tokens == eos_id).to(torch.int8)  # (live, 2k)
    keep_rank = torch.argsort(is_eos, dim=1, stable=True)[:, :k]  # the first k non-eos, best first
    scores = top_scores.gather(1, keep_rank)  # (live, k)
    scores = scores.masked_fill(is_eos.gather(1, keep_rank).bool(), -math.inf)
    beam = origin.gather(1, keep_rank)  # (live, k)
    tokens = top_tokens.gather(1, keep_rank)  # (live, k)
    keep = (~done).nonzero().squeeze(1)  # (live',)
    rows = (keep.unsqueeze(1) * k + beam[keep]).view(-1)  # (live' × k,) rows of the old state
    steps = beams.history.size(2)
    history = beams.history.view(live * k, steps)[rows].view(keep.numel(), k, steps)
    beams.history = torch.cat([history, tokens[keep].unsqueeze(2)], dim=2)  # (live', k, t + 1)
    if beams.attention is not None:
        src_len = weights.size(-1)
        old = beams.attention.view(live * k, steps, src_len)[rows]  # (live' × k, t, S)
        beams.attention = torch.cat([old, weights.float()[rows].unsqueeze(1)], dim=1).view(
            keep.numel(), k, steps + 1, src_len)
    beams.sentences, beams.scores = beams.sentences[keep], scores[keep]
    beams.state = beams.state.index_select(rows)
    if keep.numel() < live:  # one row of encoder output per sentence: copied only when some leave
        beams.enc = beams.enc.index_select(keep)
    return tokens[keep].view(-1), keep


# ---------------------------------------------------------------------------------------------- continuous
class ContinuousBeamSearch:
    """Beam search that sentences join and leave between steps (iteration-level batching, as serving stacks
    do for generation): `add` encodes new sentences into the running batch, `step` advances every live
    sentence by one token and hands back those that ended. A server keeps its batch full this way: a client
    answered sends its next sentence, and it joins at the next step instead of waiting for the whole batch.

    Every rule is `beam_search`'s, taken per sentence (its own step count, length limit and length penalty),
    so a sentence's hypotheses are the ones `beam_search` gives it in any batch. `model`: a `Seq2Seq` or an
    ensemble, in eval mode.
    """

    def __init__(self, model: Seq2Seq, config: SearchConfig = _DEFAULT, n_best: int = 1) -> None:
        _check_n_best(n_best, config)
        self.model, self.config, self.k, self.n_best = model, config, config.beam_size, n_best
        self._beams: _Beams | None = None
        self._tokens = self._steps = self._limits = torch.empty(0, dtype=torch.long)
        self._keys: dict[int, object] = {}  # slot → the caller's key
        self._finished: dict[int, list[Hypothesis]] = {}
        self._next_slot = 0

    def __len__(self) -> int:
        """Sentences being decoded."""
        return 0 if self._beams is None else int(self._beams.sentences.numel())

    @torch.inference_mode()
    def add(self, src: torch.Tensor, src_lengths: torch.Tensor, keys: list[object]) -> None:
        """Encodes src (n, src_len), src_lengths (n,) into the running batch (first step with the others' next);
        `keys`, one per sentence, are handed back by `step`."""
        n, k = src.size(0), self.k
        if len(keys) != n:
            raise ValueError(f"{len(keys)} keys for {n} sentences")
        slots = torch.arange(self._next_slot, self._next_slot + n, device=src.device)
        new, tokens = _new_beams(self.model, src, src_lengths, k, slots, False)
        self._keys.update(zip(slots.tolist(), keys, strict=True))
        self._finished.update((s, []) for s in slots.tolist())
        self._next_slot += n
        limits = max_lengths(src_lengths, self.config).to(src.device)
        if self._beams is None:
            self._beams, self._tokens, self._steps, self._limits = new, tokens, torch.zeros_like(limits), limits
            return
        beams = self._beams
        width = beams.history.size(2)  # the new sentences' history is left padding, never read
        self._beams = _Beams(torch.cat([beams.sentences, slots]), torch.cat([beams.scores, new.scores]),
                             torch.cat([beams.history, src.new_full((n, k, width), self.model.pad_id)]), None,
                             type(beams.state).cat([beams.state, new.state]), type(beams.enc).cat([beams.enc, new.enc]))
        self._tokens = torch.cat([self._tokens, tokens])
        self._steps = torch.cat([self._steps, torch.zeros_like(limits)])
        self._limits = torch.cat([self._limits, limits])

    @torch.inference_mode()
    def remove(self, gone: Callable[[object], bool]) -> int:
        """Drops the live sentences whose key `gone(key)` is true (their client went away) → how many."""
        beams = self._beams
        if beams is None:
            return 0
        slots = beams.sentences.tolist()
        drop = [gone(self._keys[slot]) for slot in slots]
        if not any(drop):
            return 0
        keep = torch.tensor([i for i, d in enumerate(drop) if not d], dtype=torch.long, device=beams.scores.device)
        rows = (keep.unsqueeze(1) * self.k + torch.arange(self.k, device=keep.device)).view(-1)  # (kept × k,)
        beams.sentences, beams.scores, beams.history = beams.sentences[keep], beams.scores[keep], beams.history[keep]
        if beams.attention is not None:
            beams.attention = beams.attention[keep]
        beams.state, beams.enc = beams.state.index_select(rows), beams.enc.index_select(keep)
        self._tokens = self._tokens.view(len(slots), self.k)[keep].view(-1)
        self._steps, self._limits = self._steps[keep], self._limits[keep]
        for slot, dropped in zip(slots, drop, strict=True):
            if dropped:
                del self._keys[slot], self._finished[slot]
        if keep.numel() == 0:
            self._beams = None
        return sum(drop)

    @torch.inference_mode()
    def step(self) -> list[tuple[object, list[Hypothesis]]]:
        """Advances every live sentence by one token → (key, up to n_best hypotheses, best first) of each sentence
        that ended."""
        beams = self._beams
        if beams is None:
            return []
        at_limit = self._limits <= self._steps + 1  # (live,)
        self._tokens, keep, ended = _advance(self.model, beams, self._tokens, at_limit, self._steps.tolist(),
                                             self.config.length_penalty, self._finished, None)
        self._steps, self._limits = self._steps[keep] + 1, self._limits[keep]
        if beams.sentences.numel() == 0:
            self._beams = None
        else:  # drop the history columns no live sentence reaches back to, and the source padding no one reads
            need = int(self._steps.max())
            if need < beams.history.size(2):
                beams.history = beams.history[:, :, beams.history.size(2) - need:]
            if ended:
                beams.enc = beams.enc.trim()
        return [(self._keys.pop(slot), _best(self._finished.pop(slot), self.n_best)) for slot in ended]
