"""Predictors behind the public API: load a bundle, predict in batches, reading text through the bundle's reading
spec (`seq2text.reading`) exactly as training did. No Lightning is imported here."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seq2text.bundle import Bundle, read_bundle
from seq2text.compression import quantize_network
from seq2text.errors import BundleError, ConfigError, DataError
from seq2text.metrics import classification_scores
from seq2text.nn.classifier import ClassifierConfig, RNNClassifier
from seq2text.nn.config import config_from
from seq2text.nn.ensemble import Seq2SeqEnsemble
from seq2text.nn.lm import LMConfig, RNNLanguageModel
from seq2text.nn.regressor import RegressorConfig, SequenceRegressor
from seq2text.nn.search import ContinuousBeamSearch, Hypothesis, SearchConfig, beam_search, greedy_search
from seq2text.nn.seq2seq import Seq2Seq, Seq2SeqConfig
from seq2text.reading import ClassifierReading, LMReading, TranslationReading, batchify, count_words, pad_ids
from seq2text.series import Series, SeriesReading, read_series
from seq2text.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer

__all__ = ["Classifier", "ClassifierEnsemble", "Forecaster", "ForecasterEnsemble", "LanguageModel", "Regressor",
           "Translation", "Translator", "TranslatorEnsemble", "load"]


def _build(bundle: Bundle, module_class: type[torch.nn.Module], config_class: type) -> torch.nn.Module:
    try:
        net = module_class(config_from(config_class, bundle.config["net"]))
        net.load_state_dict(bundle.weights, strict=True)
    except (TypeError, ValueError, RuntimeError) as error:
        raise BundleError(f"{bundle.path}: the weights do not fit the configured network ({error}); "
                          "the bundle is corrupt or mixes files of two models") from None
    if (bundle.config.get("compression") or {}).get("kind") == "int8":  # seq2text compress --int8
        return quantize_network(net.eval())
    return net.eval()


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
        raise ConfigError("perplexity needs at least one text (the perplexity of no text is undefined)")
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

    Texts are read as in training (`reading`): whitespace collapsed, lowercased if the model was trained so,
    truncated to the training `max_len`, in the training direction. An empty (or whitespace-only) string is
    classified from the start token alone: the model's guess with no evidence, usually close to the training
    label prior.

    Args:
        net: the network (eval mode).
        tokenizer: its tokenizer.
        reading: how texts are read, the class names (`reading.labels`, in class-index order) and the batch
            budget of prediction (`reading.eval_max_tokens` padded tokens).
        metrics: the metrics recorded at training time.
    """

    task = "classification"

    def __init__(self, net: RNNClassifier, tokenizer: Tokenizer, reading: ClassifierReading,
                 metrics: dict | None = None) -> None:
        if not reading.labels:
            raise ConfigError("reading.labels is empty: give the class names in class-index order")
        self.net, self.tokenizer, self.reading, self.metrics = net.eval(), tokenizer, reading, metrics or {}
        self.labels = list(reading.labels)

    @property
    def backward(self) -> bool:
        return self.reading.backward

    @property
    def columns(self) -> tuple[str, str]:
        """The (text, label) columns of the training files: the defaults of `seq2text evaluate`."""
        return self.reading.text_column, self.reading.label_column

    @classmethod
    def load(cls, path: str | Path) -> Classifier:
        """Loads a bundle written by `seq2text fit` (raises BundleError for other tasks or broken bundles)."""
        bundle = read_bundle(path, task=cls.task)
        net = _build(bundle, RNNClassifier, ClassifierConfig)
        reading = ClassifierReading.from_bundle(bundle.config, path)
        classes = bundle.config["net"]["num_classes"]
        if not reading.labels:
            reading = replace(reading, labels=tuple(str(i) for i in range(classes)))
        if len(reading.labels) != classes:
            raise BundleError(f"{bundle.path}/config.json lists {len(reading.labels)} labels for a "
                              f"{classes}-class network; export the bundle again")
        return cls(net, bundle.tokenizer, reading, bundle.metrics)

    @torch.inference_mode()
    def probabilities(self, texts: Sequence[str], max_tokens: int | None = None) -> torch.Tensor:
        """Class probabilities, (len(texts), num_classes), in the order of `self.labels`.

        Args:
            max_tokens: padded tokens per batch (default: the bundle's `eval_max_tokens`).
        """
        texts = _check_str_rows(texts)
        if not texts:
            return torch.zeros(0, len(self.labels))
        ids = self.reading.encode(self.tokenizer, texts)
        out = torch.empty(len(ids), len(self.labels))
        for rows in self.reading.batches(ids, max_tokens):
            text, lengths = pad_ids([ids[i] for i in rows])  # (B, T), (B,)
            out[rows] = torch.softmax(self.net(text, lengths).float(), dim=-1)
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
        return cls(_load_members(Classifier, paths, "classifiers"))

    def probabilities(self, texts: Sequence[str]) -> torch.Tensor:
        """Mean class probabilities of the members, (len(texts), num_classes)."""
        texts = _check_str_rows(texts)
        return torch.stack([member.probabilities(texts) for member in self.members]).mean(dim=0)


class Regressor:
    """A trained text regressor: a number per text (e.g. a review's rating), read as in training.

    Args:
        net: the network (eval mode); its head gives one output, or one per quantile.
        tokenizer: its tokenizer.
        reading: how texts are read (as a classifier's).
        quantiles: the quantile of each output (empty: one point output).
        metrics: the metrics recorded at training time.
    """

    task = "text_regression"

    def __init__(self, net: RNNClassifier, tokenizer: Tokenizer, reading: ClassifierReading,
                 quantiles: Sequence[float] = (), metrics: dict | None = None) -> None:
        if net.config.num_classes != max(1, len(quantiles)):
            raise BundleError(f"the network has {net.config.num_classes} outputs but {len(quantiles)} quantiles")
        self.net, self.tokenizer, self.reading = net.eval(), tokenizer, reading
        self.quantiles, self.metrics = tuple(quantiles), metrics or {}

    @classmethod
    def load(cls, path: str | Path) -> Regressor:
        """Loads a bundle written by `seq2text fit` (raises BundleError for other tasks or broken bundles)."""
        bundle = read_bundle(path, task=cls.task)
        net = _build(bundle, RNNClassifier, ClassifierConfig)
        quantiles = bundle.config.get("regression", {}).get("quantiles", [])
        return cls(net, bundle.tokenizer, ClassifierReading.from_bundle(bundle.config, path), quantiles,
                   bundle.metrics)

    @torch.inference_mode()
    def outputs(self, texts: Sequence[str], max_tokens: int | None = None) -> torch.Tensor:
        """The head's outputs, (len(texts), Q): one per quantile, or Q = 1."""
        texts = _str_list(texts, "regressor.predict(['a review'])")
        ids = self.reading.encode(self.tokenizer, texts)
        out = torch.empty(len(ids), max(1, len(self.quantiles)))
        for rows in self.reading.batches(ids, max_tokens):
            text, lengths = pad_ids([ids[i] for i in rows])  # (B, T), (B,)
            out[rows] = self.net(text, lengths).float()
        return out

    def predict(self, texts: Sequence[str]) -> list[float]:
        """The point prediction of each text (the median where quantiles were trained)."""
        point = self.quantiles.index(0.5) if self.quantiles else 0
        return self.outputs(texts)[:, point].tolist()

    def evaluate(self, texts: Sequence[str], targets: Sequence[float]) -> dict[str, float]:
        """MAE and RMSE of the point predictions against `targets`."""
        if len(texts) != len(targets):
            raise DataError(f"{len(texts)} texts but {len(targets)} targets; they must align")
        error = torch.tensor(self.predict(texts), dtype=torch.float64) - torch.tensor(targets, dtype=torch.float64)
        return {"mae": float(error.abs().mean()), "rmse": float(error.square().mean().sqrt()),
                "examples": len(targets)}


def _load_members(predictor: type, paths: Sequence[str | Path], kind: str) -> list:
    """One `predictor` per bundle path, for an ensemble; a failing member is named by its number."""
    if isinstance(paths, str | Path):
        raise TypeError(f"pass a list of bundle directories, e.g. {predictor.__name__}Ensemble.load(['a', 'b'])")
    members = []
    for number, path in enumerate(paths):
        try:
            members.append(predictor.load(path))
        except BundleError as error:
            raise BundleError(f"ensemble member {number}: {error} (only {kind} form these ensembles)") from None
    return members


def _check_str_rows(texts: Sequence[str]) -> list[str]:
    return _str_list(texts, "classifier.predict(['a sentence'])")


@dataclass(frozen=True)
class Translation:
    """One hypothesis of `Translator.translate_nbest`.

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

    Inputs are read as in evaluation (`reading`): an empty or whitespace-only text translates to an empty
    string (the model is not run); a text longer than `max_src_len` pieces is cut to its first `max_src_len`
    pieces, with a warning; characters never seen in training become `<unk>` pieces. Decoding starts from the
    bundle's `search` settings (the training run's test decoding); every call may override them.

    Args:
        net: the network (eval mode).
        tokenizer: its joint tokenizer.
        reading: how sources are read, and the padded-token budget of a decoding batch.
        search: the default beam size, length penalty and length limit.
        metrics: the metrics recorded at training time.
    """

    task = "translation"

    def __init__(self, net: Seq2Seq, tokenizer: Tokenizer, reading: TranslationReading = TranslationReading(),
                 search: SearchConfig = SearchConfig(), metrics: dict | None = None) -> None:
        self.net, self.tokenizer, self.reading, self.search = net.eval(), tokenizer, reading, search
        self.metrics = metrics or {}

    @classmethod
    def load(cls, path: str | Path) -> Translator:
        """Loads a bundle written by `seq2text fit` (raises BundleError for other tasks or broken bundles)."""
        bundle = read_bundle(path, task=cls.task)
        net = _build(bundle, Seq2Seq, Seq2SeqConfig)
        if (net.pad_id, net.bos_id, net.eos_id) != (PAD_ID, BOS_ID, EOS_ID):
            raise BundleError(f"{bundle.path}: the network's pad/bos/eos ids differ from the tokenizer's")
        search = {k: v for k, v in bundle.config.get("search", {}).items() if k in SearchConfig.__dataclass_fields__}
        return cls(net, bundle.tokenizer, TranslationReading.from_bundle(bundle.config, path), SearchConfig(**search),
                   bundle.metrics)

    def translate(self, texts: Sequence[str], beam_size: int | None = None, batch_size: int = 64,
                  length_penalty: float | None = None, max_tokens: int | None = None) -> list[str]:
        """Translates a list of sentences: one string per text (`[]` for no texts).

        Args:
            beam_size: 1 = greedy search (default: the bundle's).
            batch_size: at most this many sentences decoded together.
            length_penalty: beam search's length normalization exponent (default: the bundle's).
            max_tokens: padded source tokens per batch (default: the bundle's evaluation budget).
        """
        found = self.translate_nbest(texts, 1, beam_size, batch_size, length_penalty, max_tokens)
        return [hyps[0].text for hyps in found]

    @torch.inference_mode()
    def translate_nbest(self, texts: Sequence[str], n_best: int = 1, beam_size: int | None = None,
                        batch_size: int = 64, length_penalty: float | None = None, max_tokens: int | None = None,
                        return_attention: bool = False) -> list[list[Translation]]:
        """The `n_best` best translations of each text, best first, with scores, pieces and (if asked)
        attention weights; the other arguments as in `translate`."""
        search = replace(self.search, beam_size=self.search.beam_size if beam_size is None else beam_size,
                         length_penalty=self.search.length_penalty if length_penalty is None else length_penalty)
        texts = _translation_inputs(texts, search.beam_size, n_best, batch_size)
        rows = [i for i, text in enumerate(texts) if text.strip()]
        src_ids = self.source_ids([texts[i] for i in rows])
        results: list[list[Translation]] = [[Translation("", 0.0, [], [])] for _ in texts]
        for chunk in self.reading.batches(src_ids, batch_size, max_tokens):
            src, lengths = pad_ids([src_ids[j] for j in chunk])  # (B, S), (B,)
            found = self._search(src, lengths, search, n_best, return_attention)
            decoded = iter(self._texts([h for hyps in found for h in hyps]))
            for j, hyps in zip(chunk, found, strict=True):
                results[rows[j]] = [self._translation(h, next(decoded), src_ids[j]) for h in hyps]
        return results

    def _search(self, src: torch.Tensor, lengths: torch.Tensor, search: SearchConfig, n_best: int,
                return_attention: bool) -> list[list[Hypothesis]]:
        if search.beam_size == 1:
            return [[h] for h in greedy_search(self.net, src, lengths, search.max_len_ratio, search.max_len_offset,
                                               return_attention)]
        return beam_search(self.net, src, lengths, search.beam_size, n_best, search.length_penalty,
                           search.max_len_ratio, search.max_len_offset, return_attention)

    def _texts(self, hyps: list[Hypothesis]) -> list[str]:
        return self.tokenizer.decode([h.tokens for h in hyps])

    # ------------------------------------------------------------------------------ continuous batching
    def source_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Sources as `translate` reads them (non-empty texts only: an empty one translates to ""), cut to
        `max_src_len` pieces."""
        src_ids, cut = self.reading.encode(self.tokenizer, list(texts))
        if cut:
            warnings.warn(f"{cut} input(s) longer than max_src_len={self.reading.max_src_len} pieces were cut to "
                          f"their first {self.reading.max_src_len} pieces", stacklevel=3)
        return src_ids

    def continuous_search(self) -> ContinuousBeamSearch:
        """A beam search that sentences join and leave between steps, with this model's default settings (a
        server's batch; beam size 1 finds greedy search's tokens)."""
        s = self.search
        return ContinuousBeamSearch(self.net, s.beam_size, 1, s.length_penalty, s.max_len_ratio, s.max_len_offset)

    def detokenize(self, hyps: Sequence[Hypothesis]) -> list[str]:
        """The text of each hypothesis."""
        return self._texts(list(hyps))

    def _translation(self, hyp: Hypothesis, text: str, src_ids: list[int]) -> Translation:
        piece = self.tokenizer.id_to_piece
        return Translation(text, hyp.score, [piece(i) for i in hyp.tokens], [piece(i) for i in src_ids],
                           hyp.attention)


class TranslatorEnsemble(Translator):
    """Several translation bundles decoding together: at every step of greedy or beam search the next-token
    distribution is the mean of the members' (`seq2text.nn.ensemble`). Sources are read as the first member
    reads them, and it gives the default search settings.

    Args:
        members: two or more translators trained with the same tokenizer.

    Raises:
        BundleError: fewer than two members, or members with different tokenizers.
    """

    def __init__(self, members: Sequence[Translator]) -> None:
        if len(members) < 2:
            raise BundleError(f"an ensemble needs at least two translation bundles, got {len(members)}")
        first = members[0]
        for number, member in enumerate(members[1:], start=1):
            if member.tokenizer.fingerprint != first.tokenizer.fingerprint:
                raise BundleError(f"ensemble member {number} was trained with another tokenizer than member 0; "
                                  "translation ensembles need one shared vocabulary: train the members on the same "
                                  "data with the same tokenizer options")
        metrics = {"members": [member.metrics for member in members]}
        super().__init__(Seq2SeqEnsemble([member.net for member in members]), first.tokenizer, first.reading,
                         first.search, metrics)
        self.members = tuple(members)

    @classmethod
    def load(cls, paths: Sequence[str | Path]) -> TranslatorEnsemble:
        """Loads the member bundles (a list of directories) and checks that they can decode together."""
        return cls(_load_members(Translator, paths, "translation bundles"))


def _translation_inputs(texts: Sequence[str], beam_size: int, n_best: int, batch_size: int) -> list[str]:
    texts = _str_list(texts, "translator.translate(['ein Satz'])")
    if beam_size < 1 or batch_size < 1 or not 1 <= n_best <= beam_size:
        raise ConfigError(f"need beam_size ≥ 1, batch_size ≥ 1 and 1 ≤ n_best ≤ beam_size (got beam_size={beam_size}, "
                          f"n_best={n_best}, batch_size={batch_size})")
    return texts


class Forecaster:
    """A trained forecaster: the next `horizon` steps of each series from its recent history.

    Args:
        net: the trained `SequenceRegressor` (eval mode).
        reading: how the training data was read (columns, lookback, step, each series' scale).
        metrics: the bundle's metrics.
    """

    task = "forecasting"

    def __init__(self, net: SequenceRegressor, reading: SeriesReading, metrics: dict | None = None) -> None:
        self.net, self.reading, self.metrics = net.eval(), reading, metrics or {}

    @classmethod
    def load(cls, path: str | Path) -> Forecaster:
        """Loads a bundle written by `seq2text fit` (raises BundleError for other tasks or broken bundles)."""
        bundle = read_bundle(path, task=cls.task)
        return cls(_build(bundle, SequenceRegressor, RegressorConfig), SeriesReading.from_bundle(bundle.config, path),
                   bundle.metrics)

    @property
    def quantiles(self) -> tuple[float, ...]:
        """The quantiles it predicts (empty: point forecasts only)."""
        return self.net.config.quantiles

    @torch.inference_mode()
    def forecast(self, history: object, horizon: int | None = None) -> Any:  # noqa: ANN401 - a pandas DataFrame
        """Forecasts every series of `history` (a CSV/TSV/Parquet path or a DataFrame with the training columns).

        Args:
            history: at least `lookback` time steps of each series, spaced as in training.
            horizon: steps to forecast, at most the trained horizon (default: all of them).

        Returns:
            a DataFrame with the id column (if any), the future timestamps and the point forecast of each value
            column; a quantile model adds `<column>_q<percent>` columns (e.g. `value_q10`, `value_q90`).

        Raises:
            DataError: unreadable history (see `read_series`), too short, or spaced unlike the training data.
            ConfigError: a horizon beyond the trained one.
        """
        import pandas as pd

        reading = self.reading
        horizon = reading.horizon if horizon is None else horizon
        if not 1 <= horizon <= reading.horizon:
            raise ConfigError(f"horizon={horizon}: this model forecasts 1 to {reading.horizon} steps at once; "
                              "train with a larger data.horizon for more")
        where = str(history) if not hasattr(history, "columns") else "the history DataFrame"
        series = read_series(history, reading.time_column, reading.value_columns, reading.id_column, where)
        for one in series:
            reading.check_compatible(one, where)
        frames = []
        for one, predicted in zip(series, self._predict(series), strict=True):  # predicted (H, V, Q)
            frame = {reading.id_column: [one.id] * horizon} if reading.id_column else {}
            frame[reading.time_column] = _future_times(one, reading.step, horizon)
            for v, column in enumerate(reading.value_columns):
                frame[column] = predicted[:horizon, v, self._point_index()]
                for q, level in enumerate(self.quantiles):
                    if level != 0.5:
                        frame[f"{column}_q{round(level * 100):02d}"] = predicted[:horizon, v, q]
            frames.append(pd.DataFrame(frame))
        return pd.concat(frames, ignore_index=True)

    def _point_index(self) -> int:
        return self.quantiles.index(0.5) if self.quantiles else 0

    def _predict(self, series: list[Series]) -> list[np.ndarray]:
        """Each series' forecast from its end, (horizon, V, Q) in its units."""
        reading, origins = self.reading, [len(one) for one in series]
        scales = [reading.window_scale(one, origin, reading.scale_of(one)) for one, origin in zip(series, origins,
                                                                                                   strict=True)]
        inputs = torch.from_numpy(np.stack([reading.inputs(one, origin, scale)
                                            for one, origin, scale in zip(series, origins, scales, strict=True)]))
        predicted = self.net(inputs).numpy()  # (N, H, V, Q)
        return [reading.restore(p, one.values[-1][None, :, None], scale[None, :, None])
                for p, one, scale in zip(predicted, series, scales, strict=True)]


class ForecasterEnsemble:
    """Forecasters of the same columns, horizon and time step forecasting together: the mean of their point
    forecasts and of their quantiles (e.g. one recipe trained with several seeds). `seq2text.load([dir, ...])`
    builds one from forecasting bundles.

    Args:
        members: the forecasters.
    """

    task = "forecasting"

    def __init__(self, members: Sequence[Forecaster]) -> None:
        self.members = list(members)
        if not self.members:
            raise ConfigError("an ensemble needs at least one forecaster")
        first = self.members[0].reading
        for number, member in enumerate(self.members[1:], start=1):
            r = member.reading
            if (r.time_column, r.value_columns, r.id_column, r.horizon, r.step) != (
                    first.time_column, first.value_columns, first.id_column, first.horizon, first.step):
                raise BundleError(f"ensemble member {number} reads other columns, horizon or time step than member 0; "
                                  "ensemble forecasters trained on the same table")
            if member.quantiles != self.members[0].quantiles:
                raise BundleError(f"ensemble member {number} predicts quantiles {member.quantiles}, member 0 "
                                  f"{self.members[0].quantiles}")
        self.reading, self.quantiles = first, self.members[0].quantiles

    @classmethod
    def load(cls, paths: Sequence[str | Path]) -> ForecasterEnsemble:
        """Loads one forecaster bundle per path (raises BundleError for other tasks or other tables)."""
        return cls(_load_members(Forecaster, paths, "forecasters"))

    def forecast(self, history: object, horizon: int | None = None) -> Any:  # noqa: ANN401 - a pandas DataFrame
        """As `Forecaster.forecast`; every forecast column is the mean of the members'."""
        frames = [member.forecast(history, horizon) for member in self.members]
        mean = frames[0].copy()
        columns = [c for c in mean.columns if c not in (self.reading.time_column, self.reading.id_column)]
        mean[columns] = sum(frame[columns].to_numpy() for frame in frames) / len(frames)
        return mean


def _future_times(series: Series, step: str | None, horizon: int) -> list:
    """The `horizon` timestamps after the series' last one."""
    import pandas as pd

    last = series.times[-1]
    if series.times.dtype.kind == "f":
        gap = float(step) if step is not None else float(series.times[-1] - series.times[-2])
        return [float(last + gap * k) for k in range(1, horizon + 1)]
    frequency = step or pd.infer_freq(pd.DatetimeIndex(series.times[-3:]))
    return list(pd.date_range(start=pd.Timestamp(last), periods=horizon + 1, freq=frequency)[1:])


_PREDICTORS = {LanguageModel.task: LanguageModel, Classifier.task: Classifier}
_PREDICTORS[Translator.task] = Translator
_PREDICTORS[Forecaster.task] = Forecaster
_PREDICTORS[Regressor.task] = Regressor


def load(path: str | Path | Sequence[str | Path]) -> (LanguageModel | Classifier | ClassifierEnsemble | Translator
                                                     | TranslatorEnsemble | Forecaster | ForecasterEnsemble
                                                     | Regressor):
    """Loads any seq2text bundle and returns the predictor of its task; a list of classifier bundles gives a
    `ClassifierEnsemble`, a list of translation bundles a `TranslatorEnsemble`, a list of forecaster bundles a
    `ForecasterEnsemble`."""
    from seq2text.hub import resolve  # "hf://user/repo[@revision]": the repo's snapshot in the Hugging Face cache

    path = resolve(path) if isinstance(path, str | Path) else [resolve(item) for item in path]
    if not isinstance(path, str | Path):
        paths = list(path)
        first_task = read_bundle(paths[0]).task if paths else None
        if first_task == Forecaster.task:
            return ForecasterEnsemble.load(paths)
        if first_task == Translator.task:
            return TranslatorEnsemble.load(paths)
        return ClassifierEnsemble.load(paths)
    bundle_task = read_bundle(path).task
    if bundle_task not in _PREDICTORS:
        raise BundleError(f"{path} holds a {bundle_task!r} model, which this seq2text version cannot load")
    return _PREDICTORS[bundle_task].load(path)
