"""Data: dataset catalog, batch contract and data modules."""

from seq2text.data.batches import LMBatch
from seq2text.data.catalog import CATALOG, resolve
from seq2text.data.language_modeling import LMDataModule

__all__ = ["CATALOG", "LMBatch", "LMDataModule", "resolve"]
