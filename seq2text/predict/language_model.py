"""The language model's predictor (perplexity, scores and sampling, reading text through the bundle's `LMReading`
exactly as training did) and the ensemble of language models (the mixture: mean of the members' probabilities)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

from seq2text.errors import ConfigError
from seq2text.nn.lm import LMConfig, RNNLanguageModel
from seq2text.predict.metrics import lm_scores, lm_sums
from seq2text.predict.shared import SAME_TOKENIZER, Ensemble, _read, _str_list
from seq2text.text.reading import LMReading, batchify, count_words
from seq2text.text.tokenizer import EOS_ID, UNK_ID, Tokenizer

__all__ = ["LanguageModel", "LanguageModelEnsemble"]


class LanguageModel:
    """A trained language model.

    Args:
        reading: how text is read (direction; the evaluation columns and windows of `perplexity`, as in
            training's test). A backward model reads text right to left and cannot `generate`.
    """

    task = "language_model"

    def __init__(self, net: RNNLanguageModel, tokenizer: Tokenizer, reading: LMReading = LMReading(),
                 metrics: dict | None = None) -> None:
        self.net, self.tokenizer, self.reading, self.metrics = net.eval(), tokenizer, reading, metrics or {}

    @property
    def backward(self) -> bool:
        return self.reading.backward

    @classmethod
    def load(cls, path: str | Path) -> LanguageModel:
        """Loads a bundle written by `seq2text fit` (raises BundleError for other tasks or broken bundles)."""
        bundle, net = _read(path, cls.task, RNNLanguageModel, LMConfig)
        return cls(net, bundle.tokenizer, LMReading.from_bundle(bundle.config, path), bundle.metrics)

    @torch.inference_mode()
    def evaluate(self, texts: Sequence[str]) -> dict[str, float]:
        """Loss per token, word-level perplexity, bits per character and counts of `texts` read as one running text,
        one line each, exactly as training's test reads and scores it (`lm_scores`)."""
        texts = _str_list(texts, "lm.perplexity(['a sentence'])")
        if not texts:
            raise ConfigError("perplexity needs at least one text (the perplexity of no text is undefined)")
        stream = self.reading.stream(self.tokenizer, texts)
        data, mask = batchify(stream, max(1, min(self.reading.eval_batch_size, stream.numel() // 2)), pad=True)
        sums, hidden, bptt = torch.zeros(2, dtype=torch.float64), None, self.reading.eval_bptt
        for start in range(0, data.size(1) - 1, bptt):
            end = min(start + bptt, data.size(1) - 1)
            features, hidden, _ = self.net(data[:, start:end], hidden)  # (B, T, E)
            window = mask[:, start + 1: end + 1]  # (B, T)
            sums += lm_sums(self.net.nll(features, data[:, start + 1: end + 1]) * window, window)
        return lm_scores(sums, count_words(texts), sum(map(len, texts)) + len(texts))

    def perplexity(self, texts: Sequence[str]) -> float:
        """Word-level perplexity of `texts` read as one running text, one line each (see `evaluate`)."""
        return self.evaluate(texts)["ppl"]

    @torch.inference_mode()
    def score(self, texts: Sequence[str]) -> list[float]:
        """Log-probability (nats) of each text on its own, end-of-line included; an empty text scores its eos
        alone, and no texts give `[]`."""
        texts = _str_list(texts, "lm.score(['a sentence'])")
        scores = []
        for text in texts:
            seq = torch.tensor([[EOS_ID, *self.reading.ids(self.tokenizer, text), EOS_ID]])  # (1, len + 2)
            features, _, _ = self.net(seq[:, :-1])
            scores.append(-float(self.net.nll(features, seq[:, 1:]).sum()))
        return scores

    @torch.inference_mode()
    def generate(self, prompt: str = "", max_tokens: int = 50, temperature: float = 1.0, top_k: int | None = None,
                 seed: int | None = None, stop_at_eos: bool = True, min_tokens: int = 1) -> str:
        """The sampled continuation (decoded text only) of `prompt` (empty: from the start of a line); `<unk>` is
        never sampled, nor the end of the line before `min_tokens` tokens (so a continuation is never empty)."""
        if max_tokens < 0 or temperature < 0 or (top_k is not None and top_k < 1) or min_tokens < 0:
            raise ConfigError("max_tokens ≥ 0, min_tokens ≥ 0, temperature ≥ 0 (0 = greedy) and top_k ≥ 1 are "
                              "required")
        if self.backward:
            raise ConfigError("this is a backward language model (it predicts the text to the left); generate "
                              "with a forward one")
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        context = torch.tensor([[EOS_ID, *self.tokenizer.encode([prompt])[0]]])
        features, hidden, _ = self.net(context)
        out: list[int] = []
        for _ in range(max_tokens):
            logp = self.net.log_probs(features)[0, -1]  # (vocab,): the last position's
            logp[UNK_ID] = -math.inf
            if len(out) < min_tokens:
                logp[EOS_ID] = -math.inf
            token = _sample(logp, temperature, top_k, generator)
            if token == EOS_ID and stop_at_eos:
                break
            out.append(token)
            features, hidden, _ = self.net(torch.tensor([[token]]), hidden)
        return self.tokenizer.decode([out])[0]


class LanguageModelEnsemble(Ensemble, LanguageModel):
    """Language models predicting together as their mixture: each next token's probability is the mean of the
    members', so `score`, `perplexity` and `evaluate` are the mixture's and `generate` samples from it. Text is
    read as the first member reads it. Its `members` have one tokenizer and one direction (else a BundleError)."""

    member = LanguageModel
    rules = (SAME_TOKENIZER, (lambda member: member.backward, "reads text in the other direction than member 0 "
                              "(backward: {mine}); ensemble forward models with forward ones, backward with backward"))

    def __init__(self, members: Sequence[LanguageModel]) -> None:
        members = self._join(members)
        super().__init__(_Mixture([member.net for member in members]), members[0].tokenizer, members[0].reading,
                         self.metrics)


class _Mixture(torch.nn.Module):
    """Networks read as one `RNNLanguageModel` whose distribution is the mean of theirs: `features` and `hidden`
    are tuples with one entry per member."""

    def __init__(self, nets: Sequence[RNNLanguageModel]) -> None:
        super().__init__()
        self.nets = torch.nn.ModuleList(nets)

    def forward(self, input: torch.Tensor, hidden: tuple | None = None) -> tuple[tuple, tuple, None]:
        """input (B, T) ids → each member's features (B, T, E_m) and state."""
        found = [net(input, None if hidden is None else hidden[m]) for m, net in enumerate(self.nets)]
        return tuple(f for f, _, _ in found), tuple(h for _, h, _ in found), None

    def nll(self, features: tuple, target: torch.Tensor) -> torch.Tensor:
        """target (...) → the mixture's NLL per target (...): -log mean_m exp(-nll_m)."""
        nll = torch.stack([net.nll(f, target) for net, f in zip(self.nets, features, strict=True)])  # (M, ...)
        return math.log(len(self.nets)) - torch.logsumexp(-nll, dim=0)

    def log_probs(self, features: tuple) -> torch.Tensor:
        """The mixture's log-probabilities (..., vocab_size): log mean_m exp(log p_m)."""
        logp = torch.stack([net.log_probs(f) for net, f in zip(self.nets, features, strict=True)])  # (M, ..., V)
        return torch.logsumexp(logp, dim=0) - math.log(len(self.nets))


def _sample(logp: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator | None) -> int:
    if temperature == 0:
        return int(logp.argmax())
    if top_k is not None:
        threshold = torch.topk(logp, min(top_k, logp.numel())).values[-1]
        logp = logp.masked_fill(logp < threshold, -math.inf)
    probs = torch.softmax(logp / temperature, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))
