"""What the data modules share: splits loaded once, per-process samplers of whole batches, resumable loaders."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from seq2text.errors import ConfigError, DataError
from seq2text.text.reading import cut_batches

__all__ = ["FILLER", "BatchSampler", "BucketSampler", "ResumableLoader", "SplitDataModule", "check_positive",
           "identity_collate", "split_files"]

_STAGE_SPLITS = {"fit": ("train", "valid"), "validate": ("valid",), "test": ("test",)}
FILLER = -1  # the index of a filler example (DDP evaluation padding); never counted


def identity_collate(batch: object) -> object:
    """Datasets here return whole batches (a batch-contract dataclass): nothing to collate."""
    return batch


def check_positive(**values: int | None) -> None:
    """Refuses a data option (name → value; None means unset) below 1."""
    for name, value in values.items():
        if value is not None and value < 1:
            raise ConfigError(f"data.{name}={value} must be a positive integer")


def split_files(dataset: str | None, explicit: dict[str, object], needed: Sequence[str], option: str,
                find: Callable[[list[str], Path | None], dict], cache_dir: str | None) -> dict[str, object]:
    """Split → its explicit file(s), else what `find(splits, hub cache)` finds for the splits of `needed`. With no
    dataset every split of `needed` must be explicit (`option` spells the option: `data.{}_file`)."""
    missing = [split for split in needed if explicit[split] is None]
    if dataset is None and missing:
        raise ConfigError(f"data.dataset is null, so give {', '.join(option.format(m) for m in missing)}")
    hub_cache = Path(cache_dir) / "datasets" / dataset if cache_dir and dataset else None
    found = find(missing, hub_cache) if missing and dataset is not None else {}
    return {split: found[split] if value is None else value for split, value in explicit.items()
            if value is not None or split in found}


class BatchSampler(DistributedSampler):
    """This rank's batches of indices of `count` items (a sampler item is a whole batch).

    Training (`shuffle`): the global batches of `_training_batches(rng)` (seeded by `seed` and the epoch) in a random
    order, each rank taking every `world_size`-th item of each, so the ranks together train on the batches one
    process would; a batch with fewer items than ranks is left out. Evaluation: `_evaluation_batches()` in order,
    every `world_size`-th for this rank, filler batches (`[FILLER]`) evening out the counts. A `DistributedSampler`
    that shards itself, so Lightning never wraps it in another one (a second sharding would drop data).
    """

    def __init__(self, count: int, shuffle: bool, seed: int, rank: int, world_size: int, items: str,
                 hint: str = "") -> None:
        super().__init__(range(count), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed)
        self.count, self.world_size = count, world_size
        self._num_batches = len(self._rank_batches())
        if shuffle and self._num_batches == 0:
            raise DataError(f"{count} training {items} cannot be spread over {world_size} processes; use fewer "
                            f"devices{hint}")

    def _training_batches(self, rng: np.random.Generator) -> list[list[int]]:
        raise NotImplementedError

    def _evaluation_batches(self) -> list[list[int]]:
        raise NotImplementedError

    def _shard_evaluation(self, batches: list[list[int]]) -> list[list[int]]:
        return (batches + [[FILLER]] * (-len(batches) % self.world_size))[self.rank:: self.world_size]

    def _rank_batches(self) -> list[list[int]]:
        if not self.shuffle:
            return self._shard_evaluation(self._evaluation_batches())
        rng = np.random.default_rng([self.seed, self.epoch])
        usable = [batch for batch in self._training_batches(rng) if len(batch) >= self.world_size]
        return [usable[i][self.rank:: self.world_size] for i in rng.permutation(len(usable))]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._rank_batches())

    def __len__(self) -> int:
        return self._num_batches


class BucketSampler(BatchSampler):
    """Batches of items of similar size within `max_tokens` padded (items × largest size) and `max_batch_size`
    items: sorted by `keys` (most significant first; ties at random in training), cut by `cut_batches`.

    Args:
        sizes: the padded size of each item, (num_items,); keys: sort keys, each (num_items,).
    """

    def __init__(self, sizes: np.ndarray, keys: Sequence[np.ndarray], max_tokens: int, max_batch_size: int | None,
                 shuffle: bool, seed: int, rank: int, world_size: int, items: str) -> None:
        self.sizes, self.keys = sizes, keys
        self.max_tokens, self.max_items = max_tokens, max_batch_size or math.inf
        super().__init__(len(sizes), shuffle, seed, rank, world_size, items)

    def _sorted(self, order: np.ndarray) -> np.ndarray:
        """`order` stably sorted by the keys."""
        return order[np.lexsort([key[order] for key in reversed(self.keys)])]

    def _training_batches(self, rng: np.random.Generator) -> list[list[int]]:
        return cut_batches(self._sorted(rng.permutation(self.count)), self.sizes, self.max_tokens, self.max_items,
                           parts=self.world_size)

    def _evaluation_batches(self) -> list[list[int]]:
        return cut_batches(self._sorted(np.arange(self.count)), self.sizes, self.max_tokens, self.max_items)


class _SkippingSampler(DistributedSampler):
    """Wraps a seeded sampler; its first pass of a resumed epoch skips the batches already trained on. (A
    `DistributedSampler` only so that Lightning does not wrap it again: it yields exactly what `inner` yields.)"""

    def __init__(self, inner: Sampler) -> None:
        super().__init__(range(len(inner)), num_replicas=1, rank=0, shuffle=False)
        self.inner, self.epoch, self._resume_at = inner, 0, None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)

    def resume(self, epoch: int, batches: int) -> None:
        self._resume_at = (epoch, batches)

    def __iter__(self) -> Iterator:
        items = iter(self.inner)
        if self._resume_at is not None and self._resume_at[0] == self.epoch:
            items = islice(items, self._resume_at[1], None)
        self._resume_at = None
        return items

    def __len__(self) -> int:
        return len(self.inner)


class ResumableLoader(DataLoader):
    """The training loader; its `state_dict` (in every checkpoint) lets a run killed mid-epoch resume with the next
    batch. The state is (epoch, batches the trainer finished), read from the trainer because the loader's iterator
    runs a batch ahead; batches are seeded by epoch, so skipping is exact."""

    def __init__(self, dataset: Dataset, sampler: Sampler, module: pl.LightningDataModule) -> None:
        skipping = sampler if isinstance(sampler, _SkippingSampler) else _SkippingSampler(sampler)
        super().__init__(dataset, sampler=skipping, batch_size=None, collate_fn=identity_collate)
        self.module = module  # the name of the argument, so that Lightning can rebuild the loader

    def state_dict(self) -> dict[str, int]:
        trainer = self.module.trainer
        done = 0 if trainer is None else trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return {"epoch": self.sampler.epoch, "batches": done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.resume(int(state["epoch"]), int(state["batches"]))


class SplitDataModule(pl.LightningDataModule):
    """Base of the data modules: subclasses implement `load_split(split)` (idempotent) and `_loader(split, train)`
    (sharded by `_rank()`); text modules have a `tokenizer` and a `reading` spec."""

    prepared_splits: tuple[str, ...] = ()  # the splits `prepare_data` encodes into prepared caches

    def load_split(self, split: str) -> object:
        raise NotImplementedError

    def prepare_data(self) -> None:
        """Encodes every split once into its prepared cache (once per node, before `setup`)."""
        for split in self.prepared_splits:
            self.load_split(split)

    @property
    def caches(self) -> dict:
        """Split → its `PreparedCache` (the splits prepared so far)."""
        return dict(getattr(self, "_caches", {}))

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def bundle_config(self) -> dict:
        """The data settings stored in the bundle beside the reading spec (older readers look here)."""
        return {**self.reading.to_dict(), "dataset": self.hparams.dataset, "tokenizer_type": self.tokenizer.model_type}

    def _budget(self, train: bool) -> int:
        """Padded tokens per batch: `max_tokens` in training, else `eval_max_tokens` (default `max_tokens`)."""
        return self.hparams.max_tokens if train else self.hparams.eval_max_tokens or self.hparams.max_tokens

    def _loader(self, split: str, train: bool) -> DataLoader:
        raise NotImplementedError

    def _make_loader(self, dataset: Dataset, sampler: Sampler, train: bool) -> DataLoader:
        """Datasets map a sampler item to a whole batch; training loaders resume mid-epoch exactly."""
        if train:
            return ResumableLoader(dataset, sampler, self)
        return DataLoader(dataset, sampler=sampler, batch_size=None, collate_fn=identity_collate)

    def setup(self, stage: str | None = None) -> None:
        for split in _STAGE_SPLITS.get(stage or "fit", _STAGE_SPLITS["fit"]):
            self.load_split(split)

    def _rank(self) -> tuple[int, int]:
        """(global rank, world size) of this process; (0, 1) outside a trainer."""
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("valid", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    def transfer_batch_to_device(self, batch: object, device: torch.device, dataloader_idx: int) -> object:
        return batch.to(device)
