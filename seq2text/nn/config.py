"""One config dataclass per network (as nanoGPT's `GPTConfig`): written into bundles, read back from them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any, TypeVar

__all__ = ["Config", "config_from"]

C = TypeVar("C")


def config_from(cls: type[C], values: Mapping[str, Any], strict: bool = True) -> C:
    """The config dataclass `cls` from a mapping (a bundle's `net` entry, or a task's hyperparameters); lists become
    tuples. `strict` refuses keys that are not fields (ValueError: a bundle of another network); without it the
    fields are picked out of a larger mapping."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if strict and unknown:
        raise ValueError(f"{cls.__name__} has no fields {unknown}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names})


class Config:
    """Base of the config dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-ready values (tuples as lists), the form bundles store."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
