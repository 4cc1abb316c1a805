"""What every seq2text data module shares: splits loaded once, per-process loaders, batches moved with `.to`."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

__all__ = ["SplitDataModule", "identity_collate"]

_STAGE_SPLITS = {"fit": ("train", "valid"), "validate": ("valid",), "test": ("test",)}


def identity_collate(batch: object) -> object:
    """Datasets here return whole batches (a batch-contract dataclass): nothing to collate."""
    return batch


class SplitDataModule(pl.LightningDataModule):
    """Base of the data modules. Subclasses implement `load_split(split)` (idempotent) and
    `_loader(split, train)`, which shards by `_rank()`; every batch type has `.to(device)`."""

    def load_split(self, split: str) -> object:
        raise NotImplementedError

    def _loader(self, split: str, train: bool) -> DataLoader:
        raise NotImplementedError

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
