"""What every seq2text data module shares: splits loaded once, per-process loaders, batches moved with `.to`."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

__all__ = ["FILLER", "ResumableLoader", "SplitDataModule", "identity_collate", "shard_evaluation_batches",
           "shard_training_batches"]

_STAGE_SPLITS = {"fit": ("train", "valid"), "validate": ("valid",), "test": ("test",)}
FILLER = -1  # the index of a filler example (DDP evaluation padding); never counted


def identity_collate(batch: object) -> object:
    """Datasets here return whole batches (a batch-contract dataclass): nothing to collate."""
    return batch


def shard_training_batches(batches: list[list[int]], rank: int, world_size: int,
                           rng: np.random.Generator) -> list[list[int]]:
    """Global training batches (cut with `parts=world_size`) in a seeded random order; each rank takes every
    `world_size`-th item of each, so all ranks get the same number of batches, and together they train on the
    batches one process would (where the item cap binds, N processes × `max_batch_size` B make exactly the
    batches of one process × N·B). A last batch with fewer items than processes is left out."""
    usable = [batch for batch in batches if len(batch) >= world_size]
    return [usable[i][rank::world_size] for i in rng.permutation(len(usable))]


def shard_evaluation_batches(batches: list[list[int]], rank: int, world_size: int) -> list[list[int]]:
    """Evaluation batches in order, every `world_size`-th for this rank; filler batches (`[FILLER]`) even out
    the ranks' counts, so that every example is evaluated exactly once across ranks."""
    batches = batches + [[FILLER]] * (-len(batches) % world_size)
    return batches[rank::world_size]


class _SkippingSampler(DistributedSampler):
    """Wraps a seeded, epoch-deterministic sampler; its first pass of a resumed epoch skips the batches
    the checkpointed run had already trained on.

    It is a `DistributedSampler` only so that Lightning never wraps it in another one (the inner samplers
    shard by rank themselves; a second sharding would drop data): it yields exactly what `inner` yields.
    """

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
    """The training loader: Lightning stores its `state_dict` in every checkpoint and hands it back on resume,
    so a run killed mid-epoch goes on with the next batch it had not trained on (not from the epoch start).

    The state is (epoch, batches the trainer finished in it), read from the trainer, because the loader's own
    iterator runs a batch ahead (Lightning prefetches). Batches are seeded by epoch, so skipping is exact.
    """

    def __init__(self, dataset: Dataset, sampler: Sampler, module: pl.LightningDataModule) -> None:
        skipping = sampler if isinstance(sampler, _SkippingSampler) else _SkippingSampler(sampler)
        super().__init__(dataset, sampler=skipping, batch_size=None, collate_fn=identity_collate)
        self.module = module  # the name of the argument, so that Lightning can rebuild the loader

    def state_dict(self) -> dict[str, int]:
        trainer = self.module.trainer
        if trainer is None:
            return {"epoch": self.sampler.epoch, "batches": 0}
        return {"epoch": self.sampler.epoch, "batches": trainer.fit_loop.epoch_loop.batch_progress.current.processed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.resume(int(state["epoch"]), int(state["batches"]))


class SplitDataModule(pl.LightningDataModule):
    """Base of the data modules. Subclasses implement `load_split(split)` (idempotent) and
    `_loader(split, train)`, which shards by `_rank()`; every batch type has `.to(device)`."""

    prepared_splits: tuple[str, ...] = ()  # the splits `prepare_data` encodes into prepared caches

    def load_split(self, split: str) -> object:
        raise NotImplementedError

    def prepare_data(self) -> None:
        """Encodes every split once into its prepared cache (Lightning runs this on one process per node, before
        `setup` on every process maps the caches)."""
        for split in self.prepared_splits:
            self.load_split(split)

    @property
    def caches(self) -> dict:
        """Split → its `PreparedCache` (the splits prepared so far)."""
        return dict(getattr(self, "_caches", {}))

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
