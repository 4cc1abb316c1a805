"""Predictors behind the public API: load a bundle, predict in batches."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from seq2text.artifact import Bundle, read_bundle
from seq2text.data.classification import encode_texts, normalize_text, pad_ids
from seq2text.data.language_modeling import batchify, count_words, encode_stream
from seq2text.data.translation import encode_sources
from seq2text.errors import BundleError, ConfigError
from seq2text.metrics import classification_scores
from seq2text.nn.classifier import RNNClassifier
from seq2text.nn.lm import RNNLanguageModel
from seq2text.nn.search import Hypothesis, beam_search, greedy_search
from seq2text.nn.seq2seq import Seq2Seq
from seq2text.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer

__all__ = ["Classifier", "ClassifierEnsemble", "LanguageModel", "Translation", "Translator", "load"]


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
        backward: the model reads text right to left (`perplexity` and `score` reverse it; it cannot `generate`).
    """

    task = "language_model"

    def __init__(self, net: RNNLanguageModel, tokenizer: Tokenizer, eval_batch_size: int = 10,
                 eval_bptt: int = 35, metrics: dict | None = None, backward: bool = False) -> None:
        self.net, self.tokenizer = net.eval(), tokenizer
        self.eval_batch_size, self.eval_bptt = eval_batch_size, eval_bptt
        self.metrics, self.backward = metrics or {}, backward

    @classmethod
    def load(cls, path: str | Path) -> LanguageModel:
        """Loads a bundle written by `seq2text fit` (raises BundleError for other tasks or broken bundles)."""
        bundle = read_bundle(path, task=cls.task)
        data = bundle.config.get("data", {})
        return cls(_build(bundle, RNNLanguageModel), bundle.tokenizer, data.get("eval_batch_size", 10),
                   data.get("eval_bptt", 35), bundle.metrics, data.get("backward", False))

    @torch.inference_mode()
    def perplexity(self, texts: Sequence[str]) -> float:
        """Word-level perplexity of `texts` read as one running text, one line each (the test protocol).

        Uses the same batchification and state carrying as evaluation during training, so a bundle's
        perplexity on the test file equals the task's test perplexity.
        """
        texts = _check_texts(texts)
        stream = encode_stream(self.tokenizer, texts, self.backward)
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
        for ids in self.tokenizer.encode(texts):
            seq = torch.tensor([[EOS_ID, *(ids[::-1] if self.backward else ids), EOS_ID]])  # (1, len + 2)
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


def _str_list(texts: Sequence[str], example: str) -> list[str]:
    """`texts` as a list, checked to hold strings only; `example` shows the right call in the TypeError."""
    if isinstance(texts, str):
        raise TypeError(f"pass a list of strings, e.g. {example}")
    texts = list(texts)
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"texts[{bad}] is {type(texts[bad]).__name__}, not str")
    return texts


def _check_texts(texts: Sequence[str]) -> list[str]:
    texts = _str_list(texts, "lm.perplexity(['a sentence'])")
    if not texts:
        raise ConfigError("no texts given")
    return texts


class _LabelPredictor:
    """Labels and scores from `probabilities`, shared by a classifier and an ensemble of them."""

    labels: list[str]

    def probabilities(self, texts: Sequence[str]) -> torch.Tensor:
        raise NotImplementedError

    def predict_proba(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """One `{label: probability}` dict per text."""
        return [dict(zip(self.labels, row, strict=True)) for row in self.probabilities(texts).tolist()]

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most probable label of each text."""
        return [self.labels[i] for i in self.probabilities(texts).argmax(dim=-1).tolist()]

    def evaluate(self, texts: Sequence[str], gold: Sequence[str]) -> dict:
        """Accuracy, macro-F1 and confusion counts on labeled texts (see `seq2text.metrics.classification_scores`)."""
        return classification_scores(self.predict(texts), gold, self.labels)


class Classifier(_LabelPredictor):
    """A trained text classifier.

    Texts are read as in training: whitespace collapsed, lowercased if the model was trained so,
    truncated to the training `max_len`. An empty (or whitespace-only) string is classified from the start
    token alone: the model's guess with no evidence, usually close to the training label prior.

    Args:
        net: the network (eval mode).
        tokenizer: its tokenizer.
        labels: class names in class-index order.
        lowercase: lowercase texts before encoding.
        max_len: truncation length (start token included); None keeps texts whole.
        truncation: `head`, `tail` or `head_tail`.
        max_tokens: padded tokens per prediction batch.
        metrics: the metrics recorded at training time.
        columns: the (text, label) column names of the training files, the defaults of `seq2text evaluate`.
        backward: read texts right to left (a classifier fine-tuned from a backward LM).
    """

    task = "classification"

    def __init__(self, net: RNNClassifier, tokenizer: Tokenizer, labels: Sequence[str], lowercase: bool = False,
                 max_len: int | None = None, truncation: str = "head", max_tokens: int = 8000,
                 metrics: dict | None = None, columns: tuple[str, str] = ("text", "label"),
                 backward: bool = False) -> None:
        self.net, self.tokenizer, self.labels = net.eval(), tokenizer, list(labels)
        self.lowercase, self.max_len, self.truncation, self.max_tokens = lowercase, max_len, truncation, max_tokens
        self.metrics, self.columns, self.backward = metrics or {}, columns, backward

    @classmethod
    def load(cls, path: str | Path) -> Classifier:
        """Loads a bundle written by `seq2text fit` (raises BundleError for other tasks or broken bundles)."""
        bundle = read_bundle(path, task=cls.task)
        data = bundle.config.get("data", {})
        net = _build(bundle, RNNClassifier)
        labels = data.get("labels") or [str(i) for i in range(bundle.config["net"]["num_classes"])]
        if len(labels) != bundle.config["net"]["num_classes"]:
            raise BundleError(f"{bundle.path}/config.json lists {len(labels)} labels for a "
                              f"{bundle.config['net']['num_classes']}-class network; export the bundle again")
        return cls(net, bundle.tokenizer, labels, data.get("lowercase", False), data.get("max_len"),
                   data.get("truncation", "head"), data.get("eval_max_tokens", 8000), bundle.metrics,
                   (data.get("text_column", "text"), data.get("label_column", "label")), data.get("backward", False))

    @torch.inference_mode()
    def probabilities(self, texts: Sequence[str]) -> torch.Tensor:
        """Class probabilities, (len(texts), num_classes), in the order of `self.labels`."""
        texts = _check_str_rows(texts)
        if not texts:
            return torch.zeros(0, len(self.labels))
        ids = encode_texts(self.tokenizer, [normalize_text(t, self.lowercase) for t in texts], self.max_len,
                           self.truncation, self.backward)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = torch.empty(len(ids), len(self.labels))
        start = 0
        while start < len(order):
            end = start + 1  # grow the batch while its padded size fits the budget (lengths ascend)
            while end < len(order) and (end - start + 1) * len(ids[order[end]]) <= self.max_tokens:
                end += 1
            rows = order[start:end]
            text, lengths = pad_ids([ids[i] for i in rows])
            out[rows] = torch.softmax(self.net(text, lengths).float(), dim=-1)
            start = end
        return out



class ClassifierEnsemble(_LabelPredictor):
    """Classifiers of the same label set predicting together: the mean of their class probabilities.

    Members may differ in anything else (architecture, tokenizer, lowercasing), e.g. models trained with
    different seeds, or ULMFiT's forward and backward classifiers. `seq2text.load([dir, ...])` builds one.

    Args:
        members: the classifiers; their `labels` must be equal (same classes, same order).
    """

    task = "classification"

    def __init__(self, members: Sequence[Classifier]) -> None:
        self.members = list(members)
        if not self.members:
            raise ConfigError("an ensemble needs at least one classifier")
        self.labels, self.columns = list(self.members[0].labels), self.members[0].columns
        for number, member in enumerate(self.members[1:], start=1):
            if member.labels != self.labels:
                raise BundleError(f"ensemble member {number} predicts labels {member.labels}, member 0 predicts "
                                  f"{self.labels}; ensemble classifiers trained for the same labels")

    @classmethod
    def load(cls, paths: Sequence[str | Path]) -> ClassifierEnsemble:
        """Loads one classifier bundle per path (raises BundleError for other tasks or other label sets)."""
        if isinstance(paths, str | Path):
            raise TypeError("pass a list of bundle directories, e.g. ClassifierEnsemble.load(['a', 'b'])")
        members = []
        for number, path in enumerate(paths):
            try:
                members.append(Classifier.load(path))
            except BundleError as error:
                raise BundleError(f"ensemble member {number}: {error} (only classifiers form ensembles)") from None
        return cls(members)

    def probabilities(self, texts: Sequence[str]) -> torch.Tensor:
        """Mean class probabilities of the members, (len(texts), num_classes)."""
        texts = _check_str_rows(texts)
        return torch.stack([member.probabilities(texts) for member in self.members]).mean(dim=0)


def _check_str_rows(texts: Sequence[str]) -> list[str]:
    return _str_list(texts, "classifier.predict(['a sentence'])")


@dataclass(frozen=True)
class Translation:
    """One hypothesis of `Translator.translate`.

    Attributes:
        text: the detokenized translation.
        score: the search score (length-normalized log-probability for beam search).
        tokens: the target pieces.
        source_tokens: the source pieces as the model read them (after any cut; `</s>` last).
        attention: weights (len(tokens) + 1, len(source_tokens)), the last row for `</s>`; None unless asked.
    """

    text: str
    score: float
    tokens: list[str]
    source_tokens: list[str]
    attention: torch.Tensor | None = None


class Translator:
    """A trained translation model.

    Inputs are read as in evaluation: an empty or whitespace-only text translates to an empty string
    (the model is not run); a text longer than `max_src_len` pieces is cut to its first `max_src_len`
    pieces, with a warning; characters never seen in training become `<unk>` pieces.

    Args:
        net: the network (eval mode).
        tokenizer: its joint tokenizer.
        max_src_len: longest source in pieces (the training `data.max_src_len`).
        max_tokens: budget of padded source tokens per decoding batch.
        length_penalty: beam-search length normalization exponent.
        max_len_ratio, max_len_offset: hypotheses stop at floor(ratio × source length) + offset tokens.
        metrics: the metrics recorded at training time.
    """

    task = "translation"

    def __init__(self, net: Seq2Seq, tokenizer: Tokenizer, max_src_len: int = 250, max_tokens: int = 4096,
                 length_penalty: float = 1.0, max_len_ratio: float = 1.5, max_len_offset: int = 10,
                 metrics: dict | None = None) -> None:
        self.net, self.tokenizer = net.eval(), tokenizer
        self.max_src_len, self.max_tokens = max_src_len, max_tokens
        self.length_penalty, self.max_len_ratio, self.max_len_offset = length_penalty, max_len_ratio, max_len_offset
        self.metrics = metrics or {}

    @classmethod
    def load(cls, path: str | Path) -> Translator:
        """Loads a bundle written by `seq2text fit` (raises BundleError for other tasks or broken bundles)."""
        bundle = read_bundle(path, task=cls.task)
        net = _build(bundle, Seq2Seq)
        if (net.pad_id, net.bos_id, net.eos_id) != (PAD_ID, BOS_ID, EOS_ID):
            raise BundleError(f"{bundle.path}: the network's pad/bos/eos ids differ from the tokenizer's")
        data, search = bundle.config.get("data", {}), bundle.config.get("search", {})
        return cls(net, bundle.tokenizer, data.get("max_src_len", 250), data.get("eval_max_tokens", 4096),
                   search.get("length_penalty", 1.0), search.get("max_len_ratio", 1.5),
                   search.get("max_len_offset", 10), bundle.metrics)

    @torch.inference_mode()
    def translate(self, texts: Sequence[str], beam_size: int = 5, n_best: int = 1, return_attention: bool = False,
                  batch_size: int = 64) -> list[str] | list[list[Translation]]:
        """Translates a list of sentences (greedy search when `beam_size` is 1).

        Returns:
            with n_best=1 and no attention, one string per text; otherwise one list of up to `n_best`
            `Translation`s (best first) per text.
        """
        texts = _translation_inputs(texts, beam_size, n_best, batch_size)
        rows = [i for i, text in enumerate(texts) if text.strip()]
        src_ids, cut = encode_sources(self.tokenizer, [texts[i] for i in rows], self.max_src_len)
        if cut:
            warnings.warn(f"{cut} input(s) longer than max_src_len={self.max_src_len} pieces were cut to their "
                          f"first {self.max_src_len} pieces", stacklevel=2)
        results: list[list[Translation]] = [[Translation("", 0.0, [], [])] for _ in texts]
        for chunk in self._batches(src_ids, batch_size):
            src, lengths = _pad_sources([src_ids[j] for j in chunk])
            if beam_size == 1:
                found = [[h] for h in greedy_search(self.net, src, lengths, self.max_len_ratio, self.max_len_offset,
                                                    return_attention)]
            else:
                found = beam_search(self.net, src, lengths, beam_size, n_best, self.length_penalty,
                                    self.max_len_ratio, self.max_len_offset, return_attention)
            texts = iter(self._texts([h for hyps in found for h in hyps]))
            for j, hyps in zip(chunk, found, strict=True):
                results[rows[j]] = [self._translation(h, next(texts), src_ids[j]) for h in hyps]
        if n_best == 1 and not return_attention:
            return [found[0].text for found in results]
        return results

    def _texts(self, hyps: list[Hypothesis]) -> list[str]:
        return self.tokenizer.decode([h.tokens for h in hyps])  # one call: sentencepiece decodes a batch at once

    def _batches(self, src_ids: list[list[int]], batch_size: int) -> list[list[int]]:
        """Indices grouped by length, each group within `batch_size` texts and `max_tokens` padded tokens."""
        order = sorted(range(len(src_ids)), key=lambda j: len(src_ids[j]))
        groups: list[list[int]] = []
        for j in order:  # lengths ascend, so the newest text is the longest of its group
            if groups and len(groups[-1]) < batch_size and (len(groups[-1]) + 1) * len(src_ids[j]) <= self.max_tokens:
                groups[-1].append(j)
            else:
                groups.append([j])
        return groups

    def _translation(self, hyp: Hypothesis, text: str, src_ids: list[int]) -> Translation:
        piece = self.tokenizer.id_to_piece
        return Translation(text, hyp.score, [piece(i) for i in hyp.tokens], [piece(i) for i in src_ids],
                           hyp.attention)


def _translation_inputs(texts: Sequence[str], beam_size: int, n_best: int, batch_size: int) -> list[str]:
    texts = _str_list(texts, "translator.translate(['ein Satz'])")
    if beam_size < 1 or batch_size < 1 or not 1 <= n_best <= beam_size:
        raise ConfigError(f"need beam_size ≥ 1, batch_size ≥ 1 and 1 ≤ n_best ≤ beam_size (got beam_size={beam_size}, "
                          f"n_best={n_best}, batch_size={batch_size})")
    return texts


def _pad_sources(src_ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pads source ids: (batch, longest) ids and (batch,) lengths."""
    lengths = torch.tensor([len(ids) for ids in src_ids])
    src = torch.full((len(src_ids), int(lengths.max())), PAD_ID, dtype=torch.long)
    for row, ids in enumerate(src_ids):
        src[row, : len(ids)] = torch.tensor(ids)
    return src, lengths


_PREDICTORS = {LanguageModel.task: LanguageModel, Classifier.task: Classifier}
_PREDICTORS[Translator.task] = Translator


def load(path: str | Path | Sequence[str | Path]) -> LanguageModel | Classifier | ClassifierEnsemble | Translator:
    """Loads any seq2text bundle and returns the predictor of its task; a list of classifier bundles gives
    a `ClassifierEnsemble`."""
    if not isinstance(path, str | Path):
        return ClassifierEnsemble.load(path)
    bundle_task = read_bundle(path).task
    if bundle_task not in _PREDICTORS:
        raise BundleError(f"{path} holds a {bundle_task!r} model, which this seq2text version cannot load")
    return _PREDICTORS[bundle_task].load(path)
