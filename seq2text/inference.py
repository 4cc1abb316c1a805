"""Predictors behind the public API: load a bundle, predict in batches."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

from seq2text.artifact import Bundle, read_bundle
from seq2text.data.language_modeling import batchify, count_words, encode_stream
from seq2text.errors import BundleError, ConfigError
from seq2text.nn.lm import RNNLanguageModel
from seq2text.tokenizer import EOS_ID, UNK_ID, Tokenizer

__all__ = ["LanguageModel", "load"]


def _build(bundle: Bundle, module_class: type[torch.nn.Module]) -> torch.nn.Module:
    try:
        net = module_class(**bundle.config["net"])
        net.load_state_dict(bundle.weights, strict=True)
    except (TypeError, RuntimeError) as error:
        raise BundleError(f"{bundle.path}: the weights do not fit the configured network ({error}); "
                          "the bundle is corrupt or mixes files of two models") from None
    return net.eval()


class LanguageModel:
    """A trained language model.

    Args:
        net: the network (eval mode).
        tokenizer: its tokenizer.
        eval_batch_size: stream columns used for `perplexity` (as in training's test).
        eval_bptt: window length used for `perplexity`.
        metrics: the metrics recorded at training time.
    """

    task = "language_model"

    def __init__(self, net: RNNLanguageModel, tokenizer: Tokenizer, eval_batch_size: int = 10,
                 eval_bptt: int = 35, metrics: dict | None = None) -> None:
        self.net, self.tokenizer = net.eval(), tokenizer
        self.eval_batch_size, self.eval_bptt = eval_batch_size, eval_bptt
        self.metrics = metrics or {}

    @classmethod
    def load(cls, path: str | Path) -> LanguageModel:
        """Loads a bundle written by `seq2text fit` (raises BundleError for other tasks or broken bundles)."""
        bundle = read_bundle(path, task=cls.task)
        data = bundle.config.get("data", {})
        return cls(_build(bundle, RNNLanguageModel), bundle.tokenizer, data.get("eval_batch_size", 10),
                   data.get("eval_bptt", 35), bundle.metrics)

    @torch.inference_mode()
    def perplexity(self, texts: Sequence[str]) -> float:
        """Word-level perplexity of `texts` read as one running text, one line each (the test protocol).

        Uses the same batchification and state carrying as evaluation during training, so a bundle's
        perplexity on the test file equals the task's test perplexity.
        """
        texts = _check_texts(texts)
        stream = encode_stream(self.tokenizer, texts)
        batch_size = max(1, min(self.eval_batch_size, (stream.numel()) // 2))
        data, mask = batchify(stream, batch_size, pad=True)
        total, hidden = 0.0, None
        for start in range(0, data.size(1) - 1, self.eval_bptt):
            end = min(start + self.eval_bptt, data.size(1) - 1)
            features, hidden, _ = self.net(data[:, start:end], hidden)
            nll = self.net.nll(features, data[:, start + 1: end + 1]) * mask[:, start + 1: end + 1]
            total += float(nll.double().sum())
        return math.exp(total / count_words(texts))

    @torch.inference_mode()
    def score(self, texts: Sequence[str]) -> list[float]:
        """Log-probability (nats) of each text on its own, end-of-line included; empty texts score their eos."""
        texts = _check_texts(texts)
        scores = []
        for ids in self.tokenizer.encode(texts, add_eos=True):
            seq = torch.tensor([[EOS_ID, *ids]])  # (1, len + 1)
            features, _, _ = self.net(seq[:, :-1])
            scores.append(-float(self.net.nll(features, seq[:, 1:]).sum()))
        return scores

    @torch.inference_mode()
    def generate(self, prompt: str = "", max_tokens: int = 50, temperature: float = 1.0, top_k: int | None = None,
                 seed: int | None = None, stop_at_eos: bool = True) -> str:
        """Samples a continuation of `prompt` (an empty prompt samples from the start of a line).

        Returns:
            the generated continuation only (decoded text); `<unk>` is never sampled.
        """
        if max_tokens < 0 or temperature < 0 or (top_k is not None and top_k < 1):
            raise ConfigError("max_tokens ≥ 0, temperature ≥ 0 (0 = greedy) and top_k ≥ 1 are required")
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        context = torch.tensor([[EOS_ID, *self.tokenizer.encode([prompt])[0]]])
        features, hidden, _ = self.net(context)
        out: list[int] = []
        for _ in range(max_tokens):
            logp = self.net.log_probs(features[:, -1])[0]  # (vocab,)
            logp[UNK_ID] = -math.inf
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
    if isinstance(texts, str):
        raise TypeError("pass a list of strings, e.g. lm.perplexity(['a sentence'])")
    texts = list(texts)
    if not texts:
        raise ConfigError("no texts given")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"texts[{bad[0]}] is {type(texts[bad[0]]).__name__}, not str")
    return texts


_PREDICTORS = {LanguageModel.task: LanguageModel}


def load(path: str | Path) -> LanguageModel:
    """Loads any seq2text bundle and returns the predictor of its task."""
    bundle_task = read_bundle(path).task
    if bundle_task not in _PREDICTORS:
        raise BundleError(f"{path} holds a {bundle_task!r} model, which this seq2text version cannot load")
    return _PREDICTORS[bundle_task].load(path)
