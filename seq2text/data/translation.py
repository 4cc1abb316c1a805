"""Translation data: aligned source/target files, a joint SentencePiece vocabulary, and length-bucketed
batches with a token budget (shuffled per epoch, the same number of batches on every DDP rank).

Filters, applied to the training split only and logged with their counts:
    - pairs with an empty (or whitespace-only) side are dropped;
    - pairs with more than `max_len` pieces on either side are dropped.
Validation and test keep every pair exactly once, in file order, so that BLEU is computed against the
raw reference file: an empty line there is an error, and a source longer than `max_src_len` pieces is
cut to its first `max_src_len` pieces (the `Translator` does the same).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
import torch
from pytorch_lightning.utilities import rank_zero_info
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from seq2text.data.base import SplitDataModule, shard_training_batches
from seq2text.data.batches import TranslationBatch
from seq2text.data.catalog import resolve_parallel
from seq2text.errors import ConfigError, DataError
from seq2text.text.prepared import PreparedCache, prepare_texts, text_digest
from seq2text.text.reading import TRANSLATION_MAX_TOKENS, TranslationReading, cut_batches, encode_sources, read_parallel
from seq2text.text.tokenizer import BOS_ID, EOS_ID, PAD_ID, ModelType, Tokenizer

__all__ = ["TranslationDataModule", "ParallelCorpus", "PairBatchSampler", "read_parallel", "encode_sources"]

SPLITS = ("train", "valid", "test")


class ParallelCorpus(Dataset[TranslationBatch]):
    """Encoded pairs stored flat; indexed by a list of rows, it returns their `TranslationBatch`.

    Args:
        src_ids: source ids of each pair, eos included (each non-empty).
        trg_ids: target ids of each pair, without bos/eos.
        lines: line of each pair in its files, (num_pairs,).
    """

    def __init__(self, src_ids: Sequence[Sequence[int]], trg_ids: Sequence[Sequence[int]], lines: np.ndarray) -> None:
        self.src_lengths, self.src_offsets, self.src_flat = _flatten(src_ids)
        self.trg_lengths, self.trg_offsets, self.trg_flat = _flatten(trg_ids)
        self.lines = np.asarray(lines, dtype=np.int64)

    @classmethod
    def from_cache(cls, cache: PreparedCache) -> ParallelCorpus:
        """Pairs whose ids stay in a prepared cache (memory-mapped; a batch reads its rows only)."""
        corpus = cls.__new__(cls)
        for side in ("src", "trg"):
            ragged = cache.ragged(side)
            setattr(corpus, f"{side}_lengths", ragged.lengths)
            setattr(corpus, f"{side}_offsets", ragged.offsets)
            setattr(corpus, f"{side}_flat", ragged.ids)
        corpus.lines = np.asarray(cache.array("lines"), dtype=np.int64)
        return corpus

    def __len__(self) -> int:
        return len(self.src_lengths)

    def __getitem__(self, rows: list[int]) -> TranslationBatch:
        src_len, trg_len = self.src_lengths[rows], self.trg_lengths[rows] + 1  # + bos / eos
        src = np.full((len(rows), int(src_len.max())), PAD_ID, dtype=np.int64)  # (B, S)
        trg_in = np.full((len(rows), int(trg_len.max())), PAD_ID, dtype=np.int64)  # (B, T)
        trg_out = trg_in.copy()
        for r, i in enumerate(rows):
            src[r, : src_len[r]] = self.src_flat[self.src_offsets[i]: self.src_offsets[i + 1]]
            body = self.trg_flat[self.trg_offsets[i]: self.trg_offsets[i + 1]]
            trg_in[r, 0], trg_in[r, 1: trg_len[r]] = BOS_ID, body
            trg_out[r, : trg_len[r] - 1], trg_out[r, trg_len[r] - 1] = body, EOS_ID
        trg_mask = np.arange(trg_in.shape[1])[None, :] < trg_len[:, None]  # (B, T)
        return TranslationBatch(torch.from_numpy(src), torch.from_numpy(src_len), torch.from_numpy(trg_in),
                                torch.from_numpy(trg_out), torch.from_numpy(trg_mask),
                                torch.from_numpy(self.lines[rows]))


def _flatten(ids: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))  # (N,)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)  # (N + 1,)
    flat = np.fromiter(chain.from_iterable(ids), dtype=np.int32, count=int(offsets[-1]))
    return lengths, offsets, flat


# ----------------------------------------------------------------------------------------------- batching
class PairBatchSampler(DistributedSampler):
    """Batches of pairs of similar length whose padded size, pairs × max(longest source, longest target),
    stays within `max_tokens` (a longer pair forms a batch on its own).

    Training (`shuffle`): pairs are sorted by (source, target) length with ties broken at random (seeded by
    `seed` and the epoch; Lightning calls `set_epoch`), cut greedily into global batches that each rank's share
    (every `world_size`-th pair) keeps within the budget, and these shuffled. So all ranks get the same number
    of batches (the cut points depend on the lengths only: the count is the same every epoch).

    Evaluation: sorted by length and cut the same way; the largest batches are halved until the count
    divides by `world_size`, so every pair is seen exactly once and every rank gets the same count.

    It is a `DistributedSampler` (that yields batches), so Lightning never wraps it in another one, whatever
    `trainer.use_distributed_sampler` says (a second sharding would drop pairs from evaluation).

    Args:
        src_lengths, trg_lengths: tokens of each pair's sides, (num_pairs,).
        max_tokens: budget of padded tokens per batch.
        max_batch_size: at most this many pairs per batch (None: the budget alone decides).
        shuffle: training order (see above).
        seed: seeds the tie-breaking and the batch order.
        rank: this process's rank; world_size: number of processes.
    """

    def __init__(self, src_lengths: np.ndarray, trg_lengths: np.ndarray, max_tokens: int, shuffle: bool = False,
                 seed: int = 0, rank: int = 0, world_size: int = 1, max_batch_size: int | None = None) -> None:
        super().__init__(range(len(src_lengths)), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed)
        self.src_lengths = np.asarray(src_lengths, dtype=np.int64)
        self.trg_lengths = np.asarray(trg_lengths, dtype=np.int64)
        self.max_tokens, self.world_size, self.max_items = max_tokens, world_size, max_batch_size or math.inf
        self.sizes = np.maximum(self.src_lengths, self.trg_lengths + 1)  # the decoder reads <s> + target
        self._num_batches = len(self._rank_batches())
        if self._num_batches == 0:
            raise DataError(f"{len(self.src_lengths)} pairs cannot be spread over {world_size} processes; "
                            "use fewer devices")

    def _sorted(self, order: np.ndarray) -> np.ndarray:
        """`order` stably sorted by (source length, target length)."""
        keys = np.lexsort((self.trg_lengths[order], self.src_lengths[order]))
        return order[keys]

    def _rank_batches(self) -> list[list[int]]:
        if not self.shuffle:
            batches = cut_batches(self._sorted(np.arange(len(self.src_lengths))), self.sizes, self.max_tokens,
                                  self.max_items)
            return _even_out(batches, self.world_size)[self.rank:: self.world_size]
        rng = np.random.default_rng([self.seed, self.epoch])
        world = self.world_size
        batches = cut_batches(self._sorted(rng.permutation(len(self.src_lengths))), self.sizes,
                              self.max_tokens, self.max_items, parts=world)
        return shard_training_batches(batches, self.rank, world, rng)

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._rank_batches())

    def __len__(self) -> int:
        return self._num_batches


def _even_out(batches: list[list[int]], world_size: int) -> list[list[int]]:
    """Halves the largest batches until their count divides by `world_size` (every pair kept once)."""
    batches = list(batches)
    while len(batches) % world_size:
        largest = max(range(len(batches)), key=lambda i: len(batches[i]))
        if len(batches[largest]) < 2:
            raise DataError(f"{sum(map(len, batches))} evaluation pairs cannot be spread over {world_size} "
                            "processes; evaluate on fewer devices")
        batch = batches.pop(largest)
        half = len(batch) // 2
        batches[largest:largest] = [batch[:half], batch[half:]]
    return batches



# ----------------------------------------------------------------------------------------------- module
@dataclass
class ParallelSplit:
    """One split, read and encoded.

    Attributes:
        corpus: the encoded pairs kept.
        sources: the raw source line of every line of the files.
        references: the raw target line of every line of the files (BLEU's reference stream).
        dropped: filter name → pairs dropped (training only).
    """

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
        train_src: explicit training source file (overrides the catalog); likewise `train_trg`,
            `valid_src`, `valid_trg`, `test_src` and `test_trg` (e.g. the 2017 test set).
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
        for name, value in (("max_tokens", max_tokens), ("eval_max_tokens", eval_max_tokens),
                            ("max_batch_size", max_batch_size), ("max_len", max_len),
                            ("max_src_len", max_src_len)):
            if value is not None and value < 1:
                raise ConfigError(f"data.{name}={value} must be a positive integer")
        if max_len > max_src_len:
            raise ConfigError(f"data.max_len={max_len} exceeds data.max_src_len={max_src_len}; training would see "
                              "longer sources than evaluation. Raise max_src_len or lower max_len")
        if src_lang == trg_lang:
            raise ConfigError(f"data.src_lang and data.trg_lang are both {src_lang!r}; give two languages")
        self.save_hyperparameters()
        explicit = {"train": (train_src, train_trg), "valid": (valid_src, valid_trg), "test": (test_src, test_trg)}
        self.files = _resolve_files(dataset, root, src_lang, trg_lang, explicit, allow_hub, cache_dir)
        self.tokenizer = Tokenizer.load_or_train(tokenizer_model, list(self.files["train"]), tokenizer_type,
                                                 tokenizer_vocab_size, cache_dir)
        self.splits: dict[str, ParallelSplit] = {}
        self._caches: dict[str, PreparedCache] = {}

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    @property
    def references(self) -> dict[str, list[str]]:
        """Split → the raw target lines of the split's file (loaded splits only)."""
        return {name: split.references for name, split in self.splits.items()}

    @property
    def reading(self) -> TranslationReading:
        """How this module reads sources; the bundle stores it, so that the `Translator` reads them the same way."""
        hp = self.hparams
        return TranslationReading(hp.max_src_len, hp.eval_max_tokens or hp.max_tokens, hp.src_lang, hp.trg_lang)

    def bundle_config(self) -> dict:
        """The data settings stored in the bundle beside the reading spec (older readers look here)."""
        return {**self.reading.to_dict(), "dataset": self.hparams.dataset,
                "tokenizer_type": self.tokenizer.model_type}

    # ------------------------------------------------------------------------------------------ reading
    def load_split(self, split: str) -> ParallelSplit:
        """Reads and checks one split; its ids are encoded and (training only) filtered once into the prepared
        cache (idempotent)."""
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
        hp = self.hparams
        budget = hp.max_tokens if train else hp.eval_max_tokens or hp.max_tokens
        sampler = PairBatchSampler(corpus.src_lengths, corpus.trg_lengths, budget, shuffle=train, seed=hp.seed,
                                   rank=rank, world_size=world, max_batch_size=hp.max_batch_size if train else None)
        return self._make_loader(corpus, sampler, train)



def _resolve_files(dataset: str | None, root: str | None, src_lang: str, trg_lang: str,
                   explicit: dict[str, tuple[str | None, str | None]], allow_hub: bool,
                   cache_dir: str | None) -> dict[str, tuple[Path, Path]]:
    """Split → (source, target) paths: explicit files first, the catalog for the rest."""
    names = {"train": ("train_src", "train_trg"), "valid": ("valid_src", "valid_trg"), "test": ("test_src", "test_trg")}
    if dataset is None:
        missing = [names[s][i] for s in SPLITS for i in (0, 1) if explicit[s][i] is None]
        if missing:
            raise ConfigError(f"data.dataset is null, so give {', '.join(f'data.{m}' for m in missing)}")
        return {s: (Path(explicit[s][0]), Path(explicit[s][1])) for s in SPLITS}
    needed = [s for s in SPLITS if None in explicit[s]]
    found = resolve_parallel(dataset, src_lang, trg_lang, root, needed, allow_hub,
                             Path(cache_dir) / "datasets" / dataset if cache_dir else None) if needed else {}
    return {s: tuple(Path(e) if e is not None else found[s][i] for i, e in enumerate(explicit[s])) for s in SPLITS}


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
