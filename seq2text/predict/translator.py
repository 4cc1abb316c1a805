"""The translation model's predictor (greedy and beam search, n-best lists, attention, the continuous beam
search a server batches with) and the ensemble of translators (the members' next-token distributions
averaged at every step)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from seq2text.errors import BundleError, ConfigError
from seq2text.nn.ensemble import Seq2SeqEnsemble
from seq2text.nn.search import ContinuousBeamSearch, Hypothesis, SearchConfig
from seq2text.nn.search import search as search_hypotheses
from seq2text.nn.seq2seq import Seq2Seq, Seq2SeqConfig
from seq2text.predict.shared import SAME_TOKENIZER, Ensemble, _read, _str_list
from seq2text.text.reading import TranslationReading, pad_ids
from seq2text.text.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer

__all__ = ["Translation", "Translator", "TranslatorEnsemble", "served_info"]


@dataclass(frozen=True)
class Translation:
    """One hypothesis of `Translator.translate_nbest`: the detokenized `text`, the search `score` (length-normalized
    log-probability for beam search), the target pieces `tokens`, the `source_tokens` as the model read them (after
    any cut; `</s>` last) and, if asked, the `attention` weights (len(tokens) + 1, len(source_tokens)), the last row
    for `</s>`."""

    text: str
    score: float
    tokens: list[str]
    source_tokens: list[str]
    attention: torch.Tensor | None = None


class Translator:
    """A trained translation model. Inputs are read as in evaluation (`reading`): an empty text translates to ""
    without running the model, one longer than `max_src_len` pieces is cut (with a warning). Decoding starts from
    the bundle's `search` settings (the training run's test decoding); every call may override them.

    Args:
        reading: how sources are read, and the padded-token budget of a decoding batch.
        search: the default beam size, length penalty and length limit.
    """

    task = "translation"

    def __init__(self, net: Seq2Seq, tokenizer: Tokenizer, reading: TranslationReading = TranslationReading(),
                 search: SearchConfig = SearchConfig(), metrics: dict | None = None) -> None:
        self.net, self.tokenizer, self.reading, self.search = net.eval(), tokenizer, reading, search
        self.metrics = metrics or {}

    @classmethod
    def load(cls, path: str | Path) -> Translator:
        """Loads a bundle written by `seq2text fit` (raises BundleError for other tasks or broken bundles)."""
        bundle, net = _read(path, cls.task, Seq2Seq, Seq2SeqConfig)
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

    def translate_batch(self, texts: Sequence[str]) -> list[str]:
        """Translates `texts` as one decoding batch with the bundle's settings (a server's batch, grouped already)."""
        return self.translate(texts, batch_size=max(1, len(texts)))

    @torch.inference_mode()
    def translate_nbest(self, texts: Sequence[str], n_best: int = 1, beam_size: int | None = None,
                        batch_size: int = 64, length_penalty: float | None = None, max_tokens: int | None = None,
                        return_attention: bool = False) -> list[list[Translation]]:
        """The `n_best` best translations of each text, best first, with scores, pieces and (if asked)
        attention weights; the other arguments as in `translate`."""
        search = replace(self.search, beam_size=self.search.beam_size if beam_size is None else beam_size,
                         length_penalty=self.search.length_penalty if length_penalty is None else length_penalty)
        texts = _str_list(texts, "translator.translate(['ein Satz'])")
        if search.beam_size < 1 or batch_size < 1 or not 1 <= n_best <= search.beam_size:
            raise ConfigError(f"need beam_size ≥ 1, batch_size ≥ 1 and 1 ≤ n_best ≤ beam_size (got beam_size="
                              f"{search.beam_size}, n_best={n_best}, batch_size={batch_size})")
        rows = [i for i, text in enumerate(texts) if text.strip()]
        src_ids = self.source_ids([texts[i] for i in rows])
        results: list[list[Translation]] = [[Translation("", 0.0, [], [])] for _ in texts]
        for chunk in self.reading.batches(src_ids, batch_size, max_tokens):
            src, lengths = pad_ids([src_ids[j] for j in chunk])  # (B, S), (B,)
            found = search_hypotheses(self.net, src, lengths, search, n_best, return_attention)
            decoded = iter(self.detokenize([h for hyps in found for h in hyps]))
            for j, hyps in zip(chunk, found, strict=True):
                results[rows[j]] = [self._translation(h, next(decoded), src_ids[j]) for h in hyps]
        return results

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
        return ContinuousBeamSearch(self.net, self.search)

    def detokenize(self, hyps: Sequence[Hypothesis]) -> list[str]:
        """The text of each hypothesis."""
        return self.tokenizer.decode([h.tokens for h in hyps])

    def _translation(self, hyp: Hypothesis, text: str, src_ids: list[int]) -> Translation:
        piece = self.tokenizer.id_to_piece
        return Translation(text, hyp.score, [piece(i) for i in hyp.tokens], [piece(i) for i in src_ids],
                           hyp.attention)


class TranslatorEnsemble(Ensemble, Translator):
    """Translators decoding together: at every search step the next-token distribution is the mean of the
    members' (`seq2text.nn.ensemble`). The first member reads the sources and gives the search settings; all
    `members` have one tokenizer (else a BundleError)."""

    member, rules = Translator, (SAME_TOKENIZER,)

    def __init__(self, members: Sequence[Translator]) -> None:
        members = self._join(members)
        super().__init__(Seq2SeqEnsemble([member.net for member in members]), members[0].tokenizer,
                         members[0].reading, members[0].search, self.metrics)


def served_info(translator: Translator) -> dict:
    """What a server's `/info` tells of a translator: its languages and the sacreBLEU signature of its test score
    (an ensemble: one per member)."""
    members = translator.metrics.get("members")
    signatures = [m.get("test/bleu_signature") for m in members or [translator.metrics] if isinstance(m, dict)]
    return {"languages": {"source": translator.reading.src_lang, "target": translator.reading.trg_lang},
            "sacrebleu_signature": signatures if members is not None else signatures[0]}
