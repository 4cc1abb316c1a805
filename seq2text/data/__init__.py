"""Data: dataset catalog, batch contract and data modules."""

from seq2text.data.batches import ClassificationBatch, LMBatch, SeriesBatch, TranslationBatch
from seq2text.data.catalog import CATALOG, PARALLEL_CATALOG, resolve, resolve_parallel
from seq2text.data.classification import ClassificationDataModule, TextRegressionDataModule
from seq2text.data.forecasting import SeriesDataModule
from seq2text.data.language_modeling import LMDataModule
from seq2text.data.translation import TranslationDataModule

__all__ = ["CATALOG", "PARALLEL_CATALOG", "ClassificationBatch", "ClassificationDataModule", "LMBatch",
           "LMDataModule", "SeriesBatch", "SeriesDataModule", "TextRegressionDataModule", "TranslationBatch",
           "TranslationDataModule", "resolve", "resolve_parallel"]
