"""The language model's predictor: perplexity, scores and sampling, reading text through the bundle's
`LMReading` exactly as training did."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

from seq2text.bundles.io import read_bundle
from seq2text.errors import ConfigError
from seq2text.nn.lm import LMConfig, RNNLanguageModel
from seq2text.predict.shared import _build, _str_list
from seq2text.text.reading import LMReading, batchify, count_words
from seq2text.text.tokenizer import EOS_ID, UNK_ID, Tokenizer

__all__ = ["LanguageModel"]


class LanguageModel:
    """A trained language model.

    Args:
        net: the network (eval mode).
        tokenizer: its tokenizer.
        reading: how text is read (direction; the evaluation columns and windows of `perplexity`, as in
            training's test). A backward model reads text right to left and cannot `generate`.
        metrics: the metrics recorded at training time.
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
        bundle = read_bundle(path, task=cls.task)
        net = _build(bundle, RNNLanguageModel, LMConfig)
        return cls(net, bundle.tokenizer, LMReading.from_bundle(bundle.config, path), bundle.metrics)

    @torch.inference_mode()
    def perplexity(self, texts: Sequence[str]) -> float:
        """Word-level perplexity of `texts` read as one running text, one line each (the test protocol).

        Uses the same batchification and state carrying as evaluation during training, so a bundle's
        perplexity on the test file equals the task's test perplexity.
        """
        texts = _check_texts(texts)
        stream = self.reading.stream(self.tokenizer, texts)
        batch_size = max(1, min(self.reading.eval_batch_size, (stream.numel()) // 2))
        data, mask = batchify(stream, batch_size, pad=True)
        total, hidden, bptt = 0.0, None, self.reading.eval_bptt
        for start in range(0, data.size(1) - 1, bptt):
            end = min(start + bptt, data.size(1) - 1)
            features, hidden, _ = self.net(data[:, start:end], hidden)
            nll = self.net.nll(features, data[:, start + 1: end + 1]) * mask[:, start + 1: end + 1]
            total += float(nll.double().sum())
        return math.exp(total / count_words(texts))

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
        """Samples a continuation of `prompt` (an empty prompt samples from the start of a line).

        Args:
            min_tokens: tokens sampled before the end of the line may be (its probability is set to zero until
                then), so that a continuation is never empty.

        Returns:
            the generated continuation only (decoded text); `<unk>` is never sampled.
        """
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
            logp = self.net.log_probs(features[:, -1])[0]  # (vocab,)
            logp[UNK_ID] = -math.inf
            if len(out) < min_tokens:
                logp[EOS_ID] = -math.inf
            token = _sample(logp, temperature, top_k, generator)
            if token == EOS_ID and stop_at_eos:
                break
            out.append(token)
            features, hidden, _ = self.net(torch.tensor([[token]]), hidden)
        return self.tokenizer.decode([out])[0]


def _sample(logp: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator | None) -> int:
    if temperature == 0:
        return int(logp.argmax())
    if top_k is not None:
        threshold = torch.topk(logp, min(top_k, logp.numel())).values[-1]
        logp = logp.masked_fill(logp < threshold, -math.inf)
    probs = torch.softmax(logp / temperature, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


def _check_texts(texts: Sequence[str]) -> list[str]:
    texts = _str_list(texts, "lm.perplexity(['a sentence'])")
    if not texts:
        raise ConfigError("perplexity needs at least one text (the perplexity of no text is undefined)")
    return texts
