"""One config dataclass per network (as nanoGPT's `GPTConfig`): written into bundles, read back from them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any, TypeVar

__all__ = ["config_from", "config_to_dict"]

C = TypeVar("C")


def config_from(cls: type[C], values: Mapping[str, Any], strict: bool = True) -> C:
    """Builds the config dataclass `cls` from a mapping (a bundle's `net` entry, or a task's hyperparameters).

    Args:
        cls: the config dataclass.
        values: field values; lists become tuples (JSON has no tuples).
        strict: refuse keys that are not fields (a bundle of another network); False picks the fields
            out of a larger mapping such as a task's hyperparameters.

    Raises:
        ValueError: with `strict`, a key that is not a field of `cls`.
    """
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if strict and unknown:
        raise ValueError(f"{cls.__name__} has no fields {unknown}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names})


def config_to_dict(config: object) -> dict[str, Any]:
    """The config as JSON-ready values (tuples as lists), the form bundles store."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}
