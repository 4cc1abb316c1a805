"""`seq2text prepare`: build the prepared caches of a recipe's data, or of raw corpus files, ahead of training."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import yaml

from seq2text.data.base import SplitDataModule
from seq2text.errors import ConfigError
from seq2text.text.prepared import PreparedCache, expand_inputs, prepare_lm
from seq2text.text.tokenizer import Tokenizer

__all__ = ["data_module_from_recipe", "prepare_recipe", "prepare_files", "describe"]


def data_module_from_recipe(config: str | Path, overrides: dict[str, object] | None = None) -> SplitDataModule:
    """The data module of a recipe's `data:` section, with `overrides` (init argument → value) applied."""
    path = Path(config)
    if not path.is_file():
        raise ConfigError(f"recipe {path} does not exist; see recipes/ for the shipped ones")
    data = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("data")
    if not isinstance(data, dict) or "class_path" not in data:
        raise ConfigError(f"{path} has no `data:` section with a class_path; it cannot be prepared")
    module_name, _, class_name = data["class_path"].rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(f"{path}: data.class_path {data['class_path']!r} names no class") from None
    if not (isinstance(cls, type) and issubclass(cls, SplitDataModule)):
        raise ConfigError(f"{path}: {data['class_path']} is not a seq2text data module")
    arguments = {**(data.get("init_args") or {}), **(overrides or {})}
    known = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(arguments) - known)
    if unknown:
        raise ConfigError(f"{path}: {cls.__name__} takes no argument {', '.join(unknown)}; it takes "
                          f"{', '.join(sorted(known))}")
    return cls(**arguments)


def prepare_recipe(config: str | Path, overrides: dict[str, object] | None = None) -> dict[str, PreparedCache]:
    """Prepares every split of a recipe's data; split → its cache."""
    module = data_module_from_recipe(config, overrides)
    module.prepare_data()
    return module.caches


def prepare_files(inputs: list[str], tokenizer_model: str, name: str | None = None,
                  prepared_dir: str | None = None, workers: int | None = None) -> PreparedCache:
    """Prepares one language-model corpus (files or globs, in order) with a trained tokenizer: the cache that an
    `LMDataModule` reading the same files with the same tokenizer finds."""
    files = expand_inputs(inputs)
    tokenizer = Tokenizer.load(tokenizer_model)
    return prepare_lm(files, tokenizer, name or files[0].stem, prepared_dir, workers=workers)


def describe(split: str, cache: PreparedCache, seconds: float | None = None) -> str:
    """One line about a cache: where, how many lines and ids, its size on disk."""
    size = sum(p.stat().st_size for p in cache.folder.iterdir() if p.is_file())
    counts = ", ".join(f"{name}: {info['lines']:,} lines, {info['tokens']:,} ids ({info['dtype']})"
                       for name, info in cache.meta["arrays"].items())
    took = f"; {seconds:.1f} s" if seconds is not None else ""
    return f"{split}: {cache.folder} ({counts}; {size / 1e6:.1f} MB on disk{took})"
