"""Language-model data: one contiguous token stream per split, a contiguous shard per DDP rank,
batchified into columns and cut into (optionally variable-length) truncated-BPTT windows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from seq2text.data.base import SplitDataModule
from seq2text.data.batches import LMBatch
from seq2text.data.catalog import resolve
from seq2text.errors import ConfigError
from seq2text.reading import LMReading, batchify, count_words, encode_stream
from seq2text.textio import read_lines
from seq2text.tokenizer import ModelType, Tokenizer

__all__ = ["LMDataModule", "encode_stream", "batchify", "count_words", "BPTTSampler", "StreamWindows"]


class BPTTSampler(Sampler[tuple[int, int]]):
    """Yields (start, seq_len) windows over `columns` positions; variable lengths as in AWD-LSTM.

    With `variable`, each window is `bptt` long with probability 0.95 (else `bptt / 2`), jittered by a
    normal with std 5, at least 5 and at most `bptt + 20`; the sequence is fixed by `seed` and the epoch.
    """

    def __init__(self, columns: int, bptt: int, variable: bool = False, seed: int = 0) -> None:
        self.columns, self.bptt, self.variable, self.seed, self.epoch = columns, bptt, variable, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _windows(self) -> list[tuple[int, int]]:
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
        return windows

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self._windows())

    def __len__(self) -> int:
        return len(self._windows())


class StreamWindows(Dataset[LMBatch]):
    """Maps a (start, seq_len) window to an `LMBatch` of a batchified stream."""

    def __init__(self, data: torch.Tensor, mask: torch.Tensor, bptt: int) -> None:
        self.data, self.mask, self.bptt = data, mask, bptt

    def __getitem__(self, window: tuple[int, int]) -> LMBatch:
        start, length = window
        source = self.data[:, start: start + length]  # (batch, seq_len)
        target = self.data[:, start + 1: start + 1 + length]
        mask = self.mask[:, start + 1: start + 1 + length]
        return LMBatch(source, target, mask, lr_scale=length / self.bptt, reset=start == 0)



class LMDataModule(SplitDataModule):
    """Token streams for language modeling.

    Args:
        dataset: a catalog name (`ptb`, `wikitext2`, `wikitext103`), or None with explicit files.
        root: a folder holding the dataset's files (default: `$SEQ2TEXT_DATA`, `../shared/data`, hub).
        train_file: explicit training text (overrides the catalog); likewise `valid_file`, `test_file`.
        tokenizer_type: SentencePiece model type; `word` reproduces the standard closed vocabularies.
        tokenizer_vocab_size: tokenizer size with the 4 special ids; None keeps every word/char type (word/char only).
        tokenizer_model: a trained `.model` file to use instead of training one.
        batch_size: streams per batch (columns) on each process.
        bptt: truncated-BPTT window length.
        eval_batch_size: columns for validation and test.
        eval_bptt: window length for evaluation (default `bptt`).
        variable_bptt: AWD-LSTM's random window lengths (learning rate scaled by seq_len / bptt).
        backward: model the text right to left (the stream reversed: each line read last token first), the
            backward LM of ULMFiT's forward + backward ensemble.
        seed: seeds the variable window lengths.
        cache_dir: tokenizer and hub-download cache (default `~/.cache/seq2text`).
        allow_hub: try the HF hub when no local files are found.
    """

    def __init__(
        self,
        dataset: str | None = "ptb",
        root: str | None = None,
        train_file: str | None = None,
        valid_file: str | None = None,
        test_file: str | None = None,
        tokenizer_type: ModelType = "word",
        tokenizer_vocab_size: int | None = None,
        tokenizer_model: str | None = None,
        batch_size: int = 20,
        bptt: int = 35,
        eval_batch_size: int = 10,
        eval_bptt: int | None = None,
        variable_bptt: bool = False,
        backward: bool = False,
        seed: int = 1,
        cache_dir: str | None = None,
        allow_hub: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (("batch_size", batch_size), ("bptt", bptt), ("eval_batch_size", eval_batch_size)):
            if value < 1:
                raise ConfigError(f"data.{name}={value} must be a positive integer")
        self.save_hyperparameters()
        self.files = self._resolve_files(dataset, root, train_file, valid_file, test_file, allow_hub, cache_dir)
        self.tokenizer = Tokenizer.load_or_train(tokenizer_model, [self.files["train"]], tokenizer_type,
                                                 tokenizer_vocab_size, cache_dir)
        self.batch_size, self.bptt, self.eval_batch_size = batch_size, bptt, eval_batch_size
        self.eval_bptt = eval_bptt or bptt
        self.variable_bptt, self.seed = variable_bptt, seed
        self.streams: dict[str, torch.Tensor] = {}
        self.num_words: dict[str, int] = {}
        self.num_chars: dict[str, int] = {}

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    @property
    def reading(self) -> LMReading:
        """How this module reads text; the bundle stores it, so that its perplexity matches the test run."""
        return LMReading(self.hparams.backward, self.eval_batch_size, self.eval_bptt)

    def bundle_config(self) -> dict:
        """The data settings stored in the bundle beside the reading spec (older readers look here)."""
        return {**self.reading.to_dict(), "dataset": self.hparams.dataset,
                "tokenizer_type": self.tokenizer.model_type}

    @staticmethod
    def _resolve_files(dataset: str | None, root: str | None, train_file: str | None, valid_file: str | None,
                       test_file: str | None, allow_hub: bool, cache_dir: str | None) -> dict[str, Path]:
        explicit = {"train": train_file, "valid": valid_file, "test": test_file}
        if dataset is None:
            missing = [k for k, v in explicit.items() if v is None]
            if missing:
                raise ConfigError(f"data.dataset is null, so give {', '.join(f'data.{m}_file' for m in missing)}")
            return {k: Path(v) for k, v in explicit.items()}
        files = resolve(dataset, root, allow_hub=allow_hub,
                        cache_dir=Path(cache_dir) / "datasets" / dataset if cache_dir else None)
        return {k: Path(v) if v is not None else files[k] for k, v in explicit.items()}

    def load_split(self, split: str) -> None:
        """Reads and encodes one split once (idempotent)."""
        if split not in self.streams:
            lines = read_lines(self.files[split])
            self.streams[split] = self.reading.stream(self.tokenizer, lines)
            self.num_words[split] = count_words(lines)
            self.num_chars[split] = sum(len(line) + 1 for line in lines)

    def _loader(self, split: str, train: bool) -> DataLoader:
        batch_size, bptt = (self.batch_size, self.bptt) if train else (self.eval_batch_size, self.eval_bptt)
        self.load_split(split)
        rank, world = self._rank()
        data, mask = batchify(self.streams[split], batch_size, rank, world, pad=not train)
        sampler = BPTTSampler(data.size(1), bptt, variable=train and self.variable_bptt, seed=self.seed)
        return self._make_loader(StreamWindows(data, mask, bptt), sampler, train)
