"""Resolves a dataset name to local files: `root`, `$SEQ2TEXT_DATA`, `../shared/data`, else an HF hub copy."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from seq2text.errors import DataError
from seq2text.textio import atomic_write_text

__all__ = ["DatasetSpec", "CATALOG", "resolve", "candidate_dirs"]


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset's splits live locally and on the hub.

    Attributes:
        name: catalog name (`ptb`).
        folder: the folder name under a data root (`ptb`).
        files: split → file name inside the folder (`{"train": "ptb.train.txt", ...}`).
        hub_id: an HF hub dataset that needs no loading script, or None.
        hub_config: its configuration name.
        hub_splits: split → the hub's split name.
        hub_column: the text column.
    """

    name: str
    folder: str
    files: dict[str, str]
    hub_id: str | None = None
    hub_config: str | None = None
    hub_splits: dict[str, str] = field(default_factory=dict)
    hub_column: str = "text"


_LM_SPLITS = {"train": "train", "valid": "validation", "test": "test"}
CATALOG: dict[str, DatasetSpec] = {
    "ptb": DatasetSpec("ptb", "ptb", {s: f"ptb.{s}.txt" for s in ("train", "valid", "test")},
                       "ptb-text-only/ptb_text_only", None, _LM_SPLITS, "sentence"),
    "wikitext2": DatasetSpec("wikitext2", "wikitext-2", {s: f"wiki.{s}.tokens" for s in ("train", "valid", "test")},
                             "Salesforce/wikitext", "wikitext-2-v1", _LM_SPLITS, "text"),
    "wikitext103": DatasetSpec("wikitext103", "wikitext-103",
                               {s: f"wiki.{s}.tokens" for s in ("train", "valid", "test")},
                               "Salesforce/wikitext", "wikitext-103-v1", _LM_SPLITS, "text"),
}


def candidate_dirs(spec: DatasetSpec, root: str | Path | None) -> list[Path]:
    """The local folders searched, in order: `root` (and `root/<folder>`), else `$SEQ2TEXT_DATA/<folder>`,
    else `../shared/data/<folder>` and `./data/<folder>`."""
    if root is not None:
        return [Path(root), Path(root) / spec.folder]
    env = os.environ.get("SEQ2TEXT_DATA")
    if env:
        return [Path(env) / spec.folder]
    return [Path("../shared/data") / spec.folder, Path("data") / spec.folder]


def resolve(name: str, root: str | Path | None = None, splits: Sequence[str] = ("train", "valid", "test"),
            allow_hub: bool = True, cache_dir: str | Path | None = None) -> dict[str, Path]:
    """Finds the files of `splits` of dataset `name`.

    With `root` or `$SEQ2TEXT_DATA` set, only local files count (a wrong path is an error, never a
    silent download); otherwise the hub copy is tried after the local folders.

    Raises:
        DataError: unknown name, or files found nowhere (the message lists the paths and hub id tried).
    """
    if name not in CATALOG:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(sorted(CATALOG))} "
                        "(or give explicit file paths)")
    spec = CATALOG[name]
    tried = []
    for folder in candidate_dirs(spec, root):
        paths = {split: folder / spec.files[split] for split in splits}
        if all(p.is_file() for p in paths.values()):
            return paths
        tried.extend(str(p) for p in paths.values() if not p.is_file())
    pinned = root is not None or bool(os.environ.get("SEQ2TEXT_DATA"))
    hub_note = ""
    if allow_hub and not pinned and spec.hub_id:
        try:
            return _from_hub(spec, splits, cache_dir)
        except Exception as error:  # network, missing package, offline mode: one clear message below
            hub_note = f"; the hub dataset {spec.hub_id} ({spec.hub_config}) failed too: {type(error).__name__}"
    raise DataError(f"dataset {name!r}: missing {', '.join(tried)}{hub_note}. Put the files "
                    f"({', '.join(spec.files.values())}) in a folder and set SEQ2TEXT_DATA to its parent "
                    f"or `data.root` to the folder")


def _from_hub(spec: DatasetSpec, splits: Sequence[str], cache_dir: str | Path | None) -> dict[str, Path]:
    """Downloads the hub copy once and stores each split as a local text file with the standard name."""
    from seq2text.tokenizer import default_cache_dir

    folder = Path(cache_dir) if cache_dir else default_cache_dir() / "datasets" / spec.folder
    paths = {split: folder / spec.files[split] for split in splits}
    if all(p.is_file() for p in paths.values()):
        return paths
    import datasets

    for split, path in paths.items():
        rows = datasets.load_dataset(spec.hub_id, spec.hub_config, split=spec.hub_splits[split])
        lines = [str(text).strip() for text in rows[spec.hub_column]]
        atomic_write_text(path, "\n".join(lines) + "\n")
    return paths
