"""Errors raised for user mistakes: each message says what is wrong and how to fix it."""

__all__ = ["Seq2TextError", "DataError", "ConfigError", "BundleError"]


class Seq2TextError(Exception):
    """Base class of the errors that the command line reports without a traceback."""


class DataError(Seq2TextError):
    """Missing, empty, misaligned or badly encoded input data."""


class ConfigError(Seq2TextError):
    """An out-of-range or inconsistent option."""


class BundleError(Seq2TextError):
    """A model bundle that is incomplete, corrupt or belongs to another task."""
