"""Language-model data: one contiguous token stream per split, a contiguous shard per DDP rank,
batchified into columns and cut into (optionally variable-length) truncated-BPTT windows."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from seq2text.data.base import SplitDataModule, check_positive, split_files
from seq2text.data.batches import LMBatch
from seq2text.data.catalog import resolve
from seq2text.text.prepared import PreparedCache, expand_inputs, prepare_lm
from seq2text.text.reading import LMReading, batchify, count_words, encode_stream, stream_layout
from seq2text.text.tokenizer import PAD_ID, ModelType, Tokenizer

__all__ = ["LMDataModule", "encode_stream", "batchify", "count_words", "BPTTSampler", "StreamShard", "StreamWindows"]


class BPTTSampler(Sampler[tuple[int, int]]):
    """Yields (start, seq_len) windows over `columns` positions. `variable` (AWD-LSTM): `bptt` long with probability
    0.95 (else `bptt / 2`), jittered by N(0, 5), within [5, bptt + 20]; seeded by `seed` and the epoch."""

    def __init__(self, columns: int, bptt: int, variable: bool = False, seed: int = 0) -> None:
        self.columns, self.bptt, self.variable, self.seed, self.epoch = columns, bptt, variable, seed, 0
        self._memo: tuple[int, list[tuple[int, int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _windows(self) -> list[tuple[int, int]]:
        """The epoch's windows, computed once per epoch."""
        if self._memo is not None and self._memo[0] == self.epoch:
            return self._memo[1]
        rng = np.random.default_rng([self.seed, self.epoch])
        windows, start, last = [], 0, self.columns - 1  # the final column has no next-token target
        while start < last:
            length = self.bptt
            if self.variable:
                base = self.bptt if rng.random() < 0.95 else self.bptt / 2
                length = int(min(self.bptt + 20, max(5, round(rng.normal(base, 5)))))
            length = min(length, last - start)
            windows.append((start, length))
            start += length
        self._memo = (self.epoch, windows)
        return windows

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self._windows())

    def __len__(self) -> int:
        return len(self._windows())


class StreamShard:
    """This rank's shard of a memory-mapped token stream (`cache`'s `array`), in `batch_size` columns read a window
    at a time: the ids and masks of `batchify` (whose arguments these are), with only the shard mapped."""

    def __init__(self, cache: PreparedCache, array: str, batch_size: int, rank: int = 0, world_size: int = 1,
                 pad: bool = False, backward: bool = False) -> None:
        total = cache.stats(array)["length"]
        per_rank, self.columns = stream_layout(total, batch_size, world_size, pad)
        start = rank * per_rank
        self.real = max(0, min(min(per_rank, batch_size * self.columns) + 1, total - start))  # ids of this shard
        self.batch_size, self.backward = batch_size, backward
        low, high = (total - start - self.real, total - start) if backward else (start, start + self.real)
        self.ids = cache.ids(array, low, high)  # only this shard is mapped

    @property
    def width(self) -> int:
        """Positions per column (`batchify`'s `columns + 1`)."""
        return self.columns + 1

    def window(self, start: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids, real) of positions `[start, start + length]` of every column, (batch_size, length + 1) each."""
        pos = np.arange(self.batch_size)[:, None] * self.columns + np.arange(start, start + length + 1)[None, :]
        real = pos < self.real
        index = np.minimum(pos, self.real - 1)
        if self.backward:
            index = self.real - 1 - index
        ids = np.where(real, self.ids[index], PAD_ID).astype(np.int64)
        return torch.from_numpy(ids), torch.from_numpy(real)


class StreamWindows(Dataset[LMBatch]):
    """A (start, seq_len) window → an `LMBatch` of a rank's stream shard."""

    def __init__(self, shard: StreamShard, bptt: int) -> None:
        self.shard, self.bptt = shard, bptt

    def __getitem__(self, window: tuple[int, int]) -> LMBatch:
        start, length = window
        ids, real = self.shard.window(start, length)  # (batch, seq_len + 1)
        return LMBatch(ids[:, :-1], ids[:, 1:], real[:, 1:], lr_scale=length / self.bptt, reset=start == 0)


class LMDataModule(SplitDataModule):
    """Token streams for language modeling (each split tokenized once into its prepared cache).

    Args:
        dataset: a catalog name (`ptb`, `wikitext2`, `wikitext103`), or None with explicit files.
        root: a folder holding the dataset's files (default: `$SEQ2TEXT_DATA`, `../shared/data`, hub).
        train_file: explicit training text (overrides the catalog): a path, a glob (`corpus/*.txt`) or a list
            of them, read in order as one stream; likewise `valid_file`, `test_file`.
        tokenizer_type: SentencePiece model type; `word` reproduces the standard closed vocabularies.
        tokenizer_vocab_size: tokenizer size with the 4 special ids; None keeps every word/char type (word/char only).
        tokenizer_model: a trained `.model` file to use instead of training one.
        batch_size: streams per batch (columns) on each process.
        bptt: truncated-BPTT window length.
        eval_batch_size: columns for the test (and validation, unless `val_batch_size` is given).
        val_batch_size: columns for validation during a fit (default `eval_batch_size`; wider is faster on a CPU).
        eval_bptt: window length for evaluation (default `bptt`).
        variable_bptt: AWD-LSTM's random window lengths (learning rate scaled by seq_len / bptt).
        backward: model the text right to left (ULMFiT's backward LM).
        seed: seeds the variable window lengths.
        cache_dir: tokenizer and hub-download cache (default `~/.cache/seq2text`).
        allow_hub: try the HF hub when no local files are found (streamed to disk).
        prepared_dir: where the prepared caches live (default `$SEQ2TEXT_PREPARED`, else `data/prepared`).
        prepare_workers: processes that tokenize (default: every core this process may use).
    """

    prepared_splits = ("train", "valid", "test")

    def __init__(
        self,
        dataset: str | None = "ptb",
        root: str | None = None,
        train_file: str | list[str] | None = None,
        valid_file: str | list[str] | None = None,
        test_file: str | list[str] | None = None,
        tokenizer_type: ModelType = "word",
        tokenizer_vocab_size: int | None = None,
        tokenizer_model: str | None = None,
        batch_size: int = 20,
        bptt: int = 35,
        eval_batch_size: int = 10,
        val_batch_size: int | None = None,
        eval_bptt: int | None = None,
        variable_bptt: bool = False,
        backward: bool = False,
        seed: int = 1,
        cache_dir: str | None = None,
        allow_hub: bool = True,
        prepared_dir: str | None = None,
        prepare_workers: int | None = None,
    ) -> None:
        super().__init__()
        check_positive(batch_size=batch_size, bptt=bptt, eval_batch_size=eval_batch_size, val_batch_size=val_batch_size)
        self.save_hyperparameters()
        explicit = {"train": train_file, "valid": valid_file, "test": test_file}
        files = split_files(dataset, explicit, tuple(explicit), "data.{}_file",
                            lambda splits, hub: resolve(dataset, root, splits, allow_hub, hub), cache_dir)
        self.files = {k: [v] if explicit[k] is None else expand_inputs(v) for k, v in files.items()}
        self.tokenizer = Tokenizer.load_or_train(tokenizer_model, self.files["train"], tokenizer_type,
                                                 tokenizer_vocab_size, cache_dir)
        self.batch_size, self.bptt, self.eval_batch_size = batch_size, bptt, eval_batch_size
        self.val_batch_size = eval_batch_size if val_batch_size is None else val_batch_size
        self.eval_bptt = eval_bptt or bptt
        self.variable_bptt, self.seed = variable_bptt, seed
        # split → its memory-mapped stream, its cache, its words and characters (perplexity's denominators)
        self.streams: dict[str, np.ndarray] = {}
        self._caches: dict[str, PreparedCache] = {}
        self.num_words, self.num_chars = {}, {}

    @property
    def reading(self) -> LMReading:
        """How this module reads text (stored in the bundle)."""
        return LMReading(self.hparams.backward, self.eval_batch_size, self.eval_bptt)

    def prepared(self, split: str) -> PreparedCache:
        """The prepared cache of one split's stream, built on first use."""
        if split not in self._caches:
            name = f"{self.hparams.dataset or self.files['train'][0].stem}-{split}"
            self._caches[split] = prepare_lm(self.files[split], self.tokenizer, name, self.hparams.prepared_dir,
                                             workers=self.hparams.prepare_workers)
        return self._caches[split]

    def load_split(self, split: str) -> None:
        """Maps one split's stream and reads its counts (idempotent)."""
        if split not in self.streams:
            cache = self.prepared(split)
            stats = cache.stats("stream")
            self.streams[split] = cache.ids("stream")
            self.num_words[split], self.num_chars[split] = stats["words"], stats["chars"]

    def _loader(self, split: str, train: bool) -> DataLoader:
        widths = {"train": self.batch_size, "valid": self.val_batch_size}
        batch_size = widths.get(split, self.eval_batch_size)
        bptt = self.bptt if train else self.eval_bptt
        self.load_split(split)
        rank, world = self._rank()
        shard = StreamShard(self.prepared(split), "stream", batch_size, rank, world, pad=not train,
                            backward=self.hparams.backward)
        sampler = BPTTSampler(shard.width, bptt, variable=train and self.variable_bptt, seed=self.seed)
        return self._make_loader(StreamWindows(shard, bptt), sampler, train)
