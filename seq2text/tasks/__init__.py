"""LightningModules: one per task, each a thin training wrapper around an `nn` model."""

from seq2text.tasks.callbacks import ExactResume, ThroughputStats, WallClockBudget
from seq2text.tasks.classification import ClassificationTask
from seq2text.tasks.forecasting import ForecastingTask
from seq2text.tasks.language_modeling import LanguageModelTask
from seq2text.tasks.regression import TextRegressionTask
from seq2text.tasks.translation import TranslationTask

__all__ = ["ClassificationTask", "ExactResume", "ForecastingTask", "LanguageModelTask", "ThroughputStats",
           "TextRegressionTask", "TranslationTask", "WallClockBudget"]
