"""LightningModules: one per task, each a thin training wrapper around an `nn` model."""

from seq2text.tasks.callbacks import WallClockBudget
from seq2text.tasks.language_modeling import LanguageModelTask

__all__ = ["LanguageModelTask", "WallClockBudget"]
