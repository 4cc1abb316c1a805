"""Translation data: aligned source/target files, a joint SentencePiece vocabulary, length-bucketed batches.

Training drops (and logs) pairs with an empty side or more than `max_len` pieces on a side. Validation and test
keep every pair once, in file order, for BLEU against the raw reference file: an empty line there is an error,
and sources are cut to `max_src_len` pieces (as the `Translator` does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pytorch_lightning.utilities import rank_zero_info
from torch.utils.data import DataLoader, Dataset

from seq2text.data.base import BucketSampler, SplitDataModule, check_positive, split_files
from seq2text.data.batches import TranslationBatch
from seq2text.data.catalog import resolve_parallel
from seq2text.errors import ConfigError, DataError
from seq2text.text.prepared import PreparedCache, Ragged, prepare_texts, text_digest
from seq2text.text.reading import TRANSLATION_MAX_TOKENS, TranslationReading, encode_sources, read_parallel
from seq2text.text.tokenizer import BOS_ID, EOS_ID, PAD_ID, ModelType, Tokenizer

__all__ = ["TranslationDataModule", "ParallelCorpus", "PairBatchSampler", "read_parallel", "encode_sources"]

SPLITS = ("train", "valid", "test")


class ParallelCorpus(Dataset[TranslationBatch]):
    """Encoded pairs (flat or memory-mapped); a list of rows → their `TranslationBatch`.

    Args:
        src_ids: source ids of each pair, eos included (each non-empty), or a `Ragged` of them.
        trg_ids: target ids of each pair, without bos/eos, or a `Ragged` of them.
        lines: line of each pair in its files, (num_pairs,).
    """

    def __init__(self, src_ids: Sequence[Sequence[int]] | Ragged, trg_ids: Sequence[Sequence[int]] | Ragged,
                 lines: np.ndarray) -> None:
        self.src, self.trg = (ids if isinstance(ids, Ragged) else Ragged.from_lists(ids) for ids in (src_ids, trg_ids))
        self.src_lengths, self.trg_lengths = self.src.lengths, self.trg.lengths
        self.lines = np.asarray(lines, dtype=np.int64)

    @classmethod
    def from_cache(cls, cache: PreparedCache) -> ParallelCorpus:
        """Pairs whose ids stay in a prepared cache (a batch reads its rows only)."""
        return cls(cache.ragged("src"), cache.ragged("trg"), cache.array("lines"))

    def __len__(self) -> int:
        return len(self.src_lengths)

    def __getitem__(self, rows: list[int]) -> TranslationBatch:
        trg_len = self.trg_lengths[rows] + 1  # + bos / eos
        body = self.trg.padded(rows)  # (B, T - 1)
        trg_in = np.concatenate([np.full((len(rows), 1), BOS_ID), body], axis=1)  # (B, T)
        trg_out = np.concatenate([body, np.full((len(rows), 1), PAD_ID)], axis=1)  # (B, T)
        trg_out[np.arange(len(rows)), trg_len - 1] = EOS_ID
        trg_mask = np.arange(trg_in.shape[1])[None, :] < trg_len[:, None]  # (B, T)
        return TranslationBatch(torch.from_numpy(self.src.padded(rows)), torch.from_numpy(self.src_lengths[rows]),
                                torch.from_numpy(trg_in), torch.from_numpy(trg_out), torch.from_numpy(trg_mask),
                                torch.from_numpy(self.lines[rows]))


class PairBatchSampler(BucketSampler):
    """`BucketSampler` over pairs, `src_lengths`, `trg_lengths` (num_pairs,) each, sized by the longer side. In
    evaluation the largest batches are halved until the count divides by `world_size` (every pair once)."""

    def __init__(self, src_lengths: np.ndarray, trg_lengths: np.ndarray, max_tokens: int, shuffle: bool = False,
                 seed: int = 0, rank: int = 0, world_size: int = 1, max_batch_size: int | None = None) -> None:
        self.src_lengths = np.asarray(src_lengths, dtype=np.int64)
        self.trg_lengths = np.asarray(trg_lengths, dtype=np.int64)
        sizes = np.maximum(self.src_lengths, self.trg_lengths + 1)  # the decoder reads <s> + target
        super().__init__(sizes, (self.src_lengths, self.trg_lengths), max_tokens, max_batch_size, shuffle, seed, rank,
                         world_size, "pairs")

    def _shard_evaluation(self, batches: list[list[int]]) -> list[list[int]]:
        batches = list(batches)
        while len(batches) % self.world_size:
            largest = max(range(len(batches)), key=lambda i: len(batches[i]))
            if len(batches[largest]) < 2:
                raise DataError(f"{sum(map(len, batches))} evaluation pairs cannot be spread over {self.world_size} "
                                "processes; evaluate on fewer devices")
            half = len(batch := batches.pop(largest)) // 2
            batches[largest:largest] = [batch[:half], batch[half:]]
        return batches[self.rank:: self.world_size]


# ----------------------------------------------------------------------------------------------- module
@dataclass
class ParallelSplit:
    """One split: the encoded pairs kept, every raw source and target line (BLEU's references), and filter name
    → pairs dropped (training only)."""

    corpus: ParallelCorpus
    sources: list[str]
    references: list[str]
    dropped: dict[str, int]


class TranslationDataModule(SplitDataModule):
    """Parallel text for translation, with a joint SentencePiece vocabulary trained on both training sides.

    Args:
        dataset: a catalog name (`multi30k`, `iwslt14`), or None with explicit files.
        root: a folder holding the dataset's files (default: `$SEQ2TEXT_DATA`, `../shared/data`, hub).
        src_lang: source language code (the file suffix, `de`).
        trg_lang: target language code (`en`).
        train_src: explicit training source file (overrides the catalog); likewise `train_trg`, `valid_src`,
            `valid_trg`, `test_src` and `test_trg`.
        tokenizer_type: SentencePiece model type of the joint vocabulary.
        tokenizer_vocab_size: joint vocabulary size, the 4 special ids included.
        tokenizer_model: a trained `.model` file to use instead of training one.
        max_tokens: budget of padded tokens per training batch (pairs × longest side).
        eval_max_tokens: the budget for validation and test (default `max_tokens`).
        max_batch_size: at most this many pairs per batch and process (None: the budget alone decides).
        max_len: training pairs with more pieces than this on either side are dropped (and counted).
        max_src_len: evaluation and inference cut longer sources to their first `max_src_len` pieces.
        seed: seeds the batch order.
        cache_dir: tokenizer and hub-download cache (default `~/.cache/seq2text`).
        allow_hub: try the HF hub when no local files are found.
        prepared_dir: where the ids are cached, encoded once (default `$SEQ2TEXT_PREPARED`, else `data/prepared`).
    """

    prepared_splits = SPLITS

    def __init__(
        self,
        dataset: str | None = "multi30k",
        root: str | None = None,
        src_lang: str = "de",
        trg_lang: str = "en",
        train_src: str | None = None,
        train_trg: str | None = None,
        valid_src: str | None = None,
        valid_trg: str | None = None,
        test_src: str | None = None,
        test_trg: str | None = None,
        tokenizer_type: ModelType = "unigram",
        tokenizer_vocab_size: int = 8000,
        tokenizer_model: str | None = None,
        max_tokens: int = TRANSLATION_MAX_TOKENS,
        eval_max_tokens: int | None = None,
        max_batch_size: int | None = None,
        max_len: int = 100,
        max_src_len: int = 250,
        seed: int = 1,
        cache_dir: str | None = None,
        allow_hub: bool = True,
        prepared_dir: str | None = None,
    ) -> None:
        super().__init__()
        check_positive(max_tokens=max_tokens, eval_max_tokens=eval_max_tokens, max_batch_size=max_batch_size,
                       max_len=max_len, max_src_len=max_src_len)
        if max_len > max_src_len:
            raise ConfigError(f"data.max_len={max_len} exceeds data.max_src_len={max_src_len}; training would see "
                              "longer sources than evaluation. Raise max_src_len or lower max_len")
        if src_lang == trg_lang:
            raise ConfigError(f"data.src_lang and data.trg_lang are both {src_lang!r}; give two languages")
        self.save_hyperparameters()
        explicit = {"train_src": train_src, "train_trg": train_trg, "valid_src": valid_src, "valid_trg": valid_trg,
                    "test_src": test_src, "test_trg": test_trg}
        self.files = _resolve_files(dataset, root, src_lang, trg_lang, explicit, allow_hub, cache_dir)
        self.tokenizer = Tokenizer.load_or_train(tokenizer_model, list(self.files["train"]), tokenizer_type,
                                                 tokenizer_vocab_size, cache_dir)
        self.splits: dict[str, ParallelSplit] = {}
        self._caches: dict[str, PreparedCache] = {}

    @property
    def references(self) -> dict[str, list[str]]:
        """Split → the raw target lines of the split's file (loaded splits only)."""
        return {name: split.references for name, split in self.splits.items()}

    @property
    def reading(self) -> TranslationReading:
        """How this module reads sources (stored in the bundle for the `Translator`)."""
        hp = self.hparams
        return TranslationReading(hp.max_src_len, self._budget(False), hp.src_lang, hp.trg_lang)

    # ------------------------------------------------------------------------------------------ reading
    def load_split(self, split: str) -> ParallelSplit:
        """Reads and checks one split, encoded and (training only) filtered once into the prepared cache."""
        if split not in self.splits:
            src_path, trg_path = self.files[split]
            src_lines, trg_lines = read_parallel(src_path, trg_path)
            hp = self.hparams
            key = {"src": text_digest(src_lines), "trg": text_digest(trg_lines), "train": split == "train",
                   "tokenizer": self.tokenizer.fingerprint, "max_len": hp.max_len, "max_src_len": hp.max_src_len}
            name = f"{hp.dataset or src_path.stem}-{split}"
            cache = prepare_texts(lambda: self._encode(split, src_lines, trg_lines), name, key,
                                  self.tokenizer.vocab_size, hp.prepared_dir)
            self._caches[split] = cache
            self._log_filters(split, len(src_lines), cache.meta["info"])
            self.splits[split] = ParallelSplit(ParallelCorpus.from_cache(cache), src_lines, trg_lines,
                                               cache.meta["info"]["dropped"])
        return self.splits[split]

    def _encode(self, split: str, src_lines: list[str], trg_lines: list[str]) -> dict:
        """Checks, encodes and (training only) filters the pairs: `prepare_texts`'s arrays."""
        src_path, trg_path = self.files[split]
        train, max_len = split == "train", self.hparams.max_len
        keep, dropped = _nonempty_pairs(src_lines, trg_lines, src_path, trg_path, train)
        src_ids, cut = self.reading.encode(self.tokenizer, [src_lines[i] for i in keep])
        trg_ids = self.tokenizer.encode([trg_lines[i] for i in keep])
        if train:
            fits = [j for j, (s, t) in enumerate(zip(src_ids, trg_ids, strict=True))
                    if len(s) - 1 <= max_len and len(t) <= max_len]
            dropped["longer_than_max_len"] = len(keep) - len(fits)
            if not fits:
                raise DataError(f"no training pair of {src_path} / {trg_path} is left after the filters "
                                f"({dropped}); raise data.max_len or check the files")
            keep, src_ids, trg_ids = ([seq[j] for j in fits] for seq in (keep, src_ids, trg_ids))
        return {"src": src_ids, "trg": trg_ids, "lines": np.asarray(keep, dtype=np.int64),
                "info": {"dropped": dropped, "cut": cut}}

    def _log_filters(self, split: str, pairs: int, info: dict) -> None:
        dropped, kept = info["dropped"], pairs - sum(info["dropped"].values())
        if split == "train":
            rank_zero_info(f"{split}: {kept} of {pairs} pairs kept; dropped {dropped['empty']} with an empty side "
                           f"and {dropped['longer_than_max_len']} with more than max_len={self.hparams.max_len} "
                           "pieces on a side")
        elif info["cut"]:
            rank_zero_info(f"{split}: {info['cut']} sources cut to their first max_src_len={self.hparams.max_src_len}"
                           " pieces")

    # ------------------------------------------------------------------------------------------ loaders
    def _loader(self, split: str, train: bool) -> DataLoader:
        corpus = self.load_split(split).corpus
        rank, world = self._rank()
        sampler = PairBatchSampler(corpus.src_lengths, corpus.trg_lengths, self._budget(train), shuffle=train,
                                   seed=self.hparams.seed, rank=rank, world_size=world,
                                   max_batch_size=self.hparams.max_batch_size if train else None)
        return self._make_loader(corpus, sampler, train)


def _resolve_files(dataset: str | None, root: str | None, src_lang: str, trg_lang: str,
                   explicit: dict[str, str | None], allow_hub: bool, cache_dir: str | None
                   ) -> dict[str, tuple[Path, Path]]:
    """Split → (source, target) paths: explicit files (`train_src` → path or None) first, the catalog for the rest."""
    def find(names: list[str], hub_cache: Path | None) -> dict[str, Path]:
        splits = [s for s in SPLITS if f"{s}_src" in names or f"{s}_trg" in names]
        found = resolve_parallel(dataset, src_lang, trg_lang, root, splits, allow_hub, hub_cache)
        return {f"{s}_{side}": found[s][i] for s in splits for i, side in enumerate(("src", "trg"))}

    files = split_files(dataset, explicit, tuple(explicit), "data.{}", find, cache_dir)
    return {s: (Path(files[f"{s}_src"]), Path(files[f"{s}_trg"])) for s in SPLITS}


def _nonempty_pairs(src_lines: list[str], trg_lines: list[str], src_path: Path, trg_path: Path,
                    train: bool) -> tuple[list[int], dict[str, int]]:
    """Lines whose two sides both have text; for evaluation splits an empty side is an error."""
    empty = [i for i, (s, t) in enumerate(zip(src_lines, trg_lines, strict=True)) if not s.strip() or not t.strip()]
    if empty and not train:
        line = empty[0]
        side = src_path if not src_lines[line].strip() else trg_path
        raise DataError(f"{side}, line {line + 1} is empty ({len(empty)} empty pair(s) in all); evaluation scores "
                        f"every pair against the whole reference file, so remove such pairs from both files")
    skip = set(empty)
    return [i for i in range(len(src_lines)) if i not in skip], {"empty": len(empty)}
