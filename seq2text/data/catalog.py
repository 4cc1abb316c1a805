"""Resolves a dataset name to local files: `root`, `$SEQ2TEXT_DATA`, `./data`, else an HF hub copy."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from seq2text.errors import DataError
from seq2text.text.textio import atomic_open

__all__ = ["DatasetSpec", "CATALOG", "resolve", "candidate_dirs", "ParallelSpec", "PARALLEL_CATALOG",
           "resolve_parallel", "hub_rows"]


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset's splits live: `folder` under a data root, split → `files` in it, an HF hub dataset (or None)
    with its configuration, split names (split → the hub's) and text column; classification's local columns."""

    name: str
    folder: str
    files: dict[str, str]
    hub_id: str | None = None
    hub_config: str | None = None
    hub_splits: dict[str, str] = field(default_factory=dict)
    hub_column: str = "text"
    text_column: str | None = None
    label_column: str | None = None


_LM_SPLITS = {"train": "train", "valid": "validation", "test": "test"}
CATALOG: dict[str, DatasetSpec] = {
    "ptb": DatasetSpec("ptb", "ptb", {s: f"ptb.{s}.txt" for s in ("train", "valid", "test")},
                       "ptb-text-only/ptb_text_only", None, _LM_SPLITS, "sentence"),
    "wikitext2": DatasetSpec("wikitext2", "wikitext-2", {s: f"wiki.{s}.tokens" for s in ("train", "valid", "test")},
                             "Salesforce/wikitext", "wikitext-2-v1", _LM_SPLITS, "text"),
    "wikitext103": DatasetSpec("wikitext103", "wikitext-103",
                               {s: f"wiki.{s}.tokens" for s in ("train", "valid", "test")},
                               "Salesforce/wikitext", "wikitext-103-v1", _LM_SPLITS, "text"),
    # classification: TSV files are read with csv.QUOTE_NONE, CSV files with Python's csv quoting.
    # SST-2's GLUE test split is unlabeled, so `test` is the labeled copy; IMDb has no validation file
    # (ClassificationDataModule holds out a share of train).
    "sst2": DatasetSpec("sst2", "sst2", {"train": "train.tsv", "valid": "dev.tsv", "test": "test_labeled.tsv"},
                        text_column="sentence", label_column="label"),
    "imdb": DatasetSpec("imdb", "imdb", {"train": "train.csv", "test": "test.csv"}, "stanfordnlp/imdb", None,
                        {"train": "train", "test": "test"}, "text", text_column="text", label_column="label"),
}


def candidate_dirs(spec: DatasetSpec, root: str | Path | None) -> list[Path]:
    """The local folders searched: `root` and `root/<folder>`, else `$SEQ2TEXT_DATA/<folder>`, else `data/<folder>`."""
    if root is not None:
        return [Path(root), Path(root) / spec.folder]
    env = os.environ.get("SEQ2TEXT_DATA")
    if env:
        return [Path(env) / spec.folder]
    return [Path("data") / spec.folder]


def resolve(name: str, root: str | Path | None = None, splits: Sequence[str] = ("train", "valid", "test"),
            allow_hub: bool = True, cache_dir: str | Path | None = None) -> dict[str, Path]:
    """Finds the files of `splits` of dataset `name`: with `root` or `$SEQ2TEXT_DATA` set only local files count,
    otherwise the hub copy is tried after the local folders."""
    if name in PARALLEL_CATALOG:
        raise DataError(f"{name!r} is a translation dataset: read it with resolve_parallel (TranslationDataModule)")
    if name not in CATALOG:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(sorted(CATALOG))} "
                        "(or give explicit file paths)")
    spec = CATALOG[name]
    absent = [split for split in splits if split not in spec.files]
    if absent:
        raise DataError(f"dataset {name!r} has no {', '.join(absent)} split (it has {', '.join(spec.files)})")
    return _locate(name, spec, root, allow_hub, lambda folder: {split: folder / spec.files[split] for split in splits},
                   lambda: _from_hub(spec, splits, cache_dir), f"{spec.hub_id} ({spec.hub_config})",
                   f"Put the files ({', '.join(spec.files.values())}) in a folder and set SEQ2TEXT_DATA to its "
                   "parent or `data.root` to the folder")


def _locate(name: str, spec: DatasetSpec | ParallelSpec, root: str | Path | None, allow_hub: bool,
            local: Callable[[Path], dict], from_hub: Callable[[], dict], hub_label: str, hint: str) -> dict:
    """The first candidate folder holding every file `local(folder)` names (a path or tuple per split), else the hub
    copy (unless pinned by `root` or `$SEQ2TEXT_DATA`), else a DataError listing what was tried, and `hint`."""
    tried: list[str] = []
    for folder in candidate_dirs(spec, root):  # type: ignore[arg-type]  # only `.folder` is read
        paths = local(folder)
        flat = [p for value in paths.values() for p in (value if isinstance(value, tuple) else (value,))]
        missing = [str(p) for p in flat if not p.is_file()]
        if not missing:
            return paths
        tried.extend(missing)
    pinned = root is not None or bool(os.environ.get("SEQ2TEXT_DATA"))
    hub_note = ""
    if allow_hub and not pinned and spec.hub_id:
        try:
            return from_hub()
        except Exception as error:  # network, missing package, offline mode: one clear message below
            hub_note = f"; the hub dataset {hub_label} failed too: {type(error).__name__}"
    raise DataError(f"dataset {name!r}: missing {', '.join(tried)}{hub_note}. {hint}")


def _download(spec: DatasetSpec | ParallelSpec, cache_dir: str | Path | None, names: dict[str, tuple[str, ...]],
              write: Callable[[Iterator[dict], tuple[IO, ...]], None]) -> dict[str, tuple[Path, ...]]:
    """Streams the hub copy once into the local files `names` (split → file names) with `write(rows, handles)`."""
    from seq2text.text.tokenizer import default_cache_dir

    folder = Path(cache_dir) if cache_dir else default_cache_dir() / "datasets" / spec.folder
    paths = {split: tuple(folder / name for name in files) for split, files in names.items()}
    if not all(p.is_file() for files in paths.values() for p in files):
        for split, files in paths.items():
            rows = hub_rows(spec.hub_id, spec.hub_config, spec.hub_splits[split], getattr(spec, "hub_revision", None),
                            getattr(spec, "hub_data_dir", None))
            with ExitStack() as stack:
                write(rows, tuple(stack.enter_context(atomic_open(p)) for p in files))
    return paths


def _from_hub(spec: DatasetSpec, splits: Sequence[str], cache_dir: str | Path | None) -> dict[str, Path]:
    """One local text file per split with the standard name (a CSV with the local columns for labeled data)."""
    def write(rows: Iterator[dict], handles: tuple[IO, ...]) -> None:
        if spec.label_column is None:
            handles[0].writelines(str(row[spec.hub_column]).strip() + "\n" for row in rows)
            return
        writer = csv.writer(handles[0], lineterminator="\n")
        writer.writerow([spec.label_column, spec.text_column])
        writer.writerows((row[spec.label_column], row[spec.hub_column]) for row in rows)

    paths = _download(spec, cache_dir, {split: (spec.files[split],) for split in splits}, write)
    return {split: files[0] for split, files in paths.items()}


def hub_rows(hub_id: str, config: str | None, split: str, revision: str | None = None,
             data_dir: str | None = None) -> Iterator[dict]:
    """The rows of a hub dataset's split, streamed (`datasets.load_dataset(..., streaming=True)`)."""
    import datasets

    return iter(datasets.load_dataset(hub_id, config, split=split, revision=revision, data_dir=data_dir,
                                      streaming=True))


# ----------------------------------------------------------------------------------------------- parallel data
@dataclass(frozen=True)
class ParallelSpec:
    """Where a parallel corpus lives: one file per split and language, `<prefix>.<lang>` (split → `prefixes`); hub
    fields as in `DatasetSpec`, plus a revision and folder; `hub_columns`: language → column (`a.b`: key b of a)."""

    name: str
    folder: str
    prefixes: dict[str, str]
    languages: tuple[str, ...]
    hub_id: str | None = None
    hub_config: str | None = None
    hub_revision: str | None = None
    hub_data_dir: str | None = None
    hub_splits: dict[str, str] = field(default_factory=dict)
    hub_columns: dict[str, str] = field(default_factory=dict)

    def file_name(self, split: str, lang: str) -> str:
        return f"{self.prefixes[split]}.{lang}"


_MT_SPLITS = {"train": "train", "valid": "validation", "test": "test"}
PARALLEL_CATALOG: dict[str, ParallelSpec] = {
    # Multi30k Task 1 (the official repository's raw, cased files); `test` is the 2016 Flickr test set.
    "multi30k": ParallelSpec("multi30k", "multi30k", {"train": "train", "valid": "val", "test": "test_2016_flickr"},
                             ("de", "en"), "bentrevett/multi30k", None, None, None, _MT_SPLITS,
                             {"de": "de", "en": "en"}),
    # IWSLT'14 de-en as fairseq's prepare-iwslt14.sh leaves it (lowercased, tokenized; 160,239 / 7,283 /
    # 6,750 pairs); the hub copy is the parquet export of a script-based repository.
    "iwslt14": ParallelSpec("iwslt14", "iwslt14", {"train": "train", "valid": "valid", "test": "test"},
                            ("de", "en"), "bbaaaa/iwslt14-de-en", None, "refs/convert/parquet", "de-en", _MT_SPLITS,
                            {"de": "translation.de", "en": "translation.en"}),
    # WMT'14 English-German (4.5M pairs; newstest2013 valid, newstest2014 test): local `{split}.{de,en}` or
    # the parquet hub dataset wmt/wmt14 (de-en). GPU-sized.
    "wmt14": ParallelSpec("wmt14", "wmt14", {"train": "train", "valid": "valid", "test": "test"},
                          ("de", "en"), "wmt/wmt14", "de-en", None, None, _MT_SPLITS,
                          {"de": "translation.de", "en": "translation.en"}),
}


def resolve_parallel(name: str, src_lang: str, trg_lang: str, root: str | Path | None = None,
                     splits: Sequence[str] = ("train", "valid", "test"), allow_hub: bool = True,
                     cache_dir: str | Path | None = None) -> dict[str, tuple[Path, Path]]:
    """Finds the (source, target) files of `splits` of parallel dataset `name`; local files as in `resolve`."""
    if name not in PARALLEL_CATALOG:
        raise DataError(f"unknown translation dataset {name!r}; known: {', '.join(sorted(PARALLEL_CATALOG))} "
                        "(or give explicit file paths: data.train_src, data.train_trg, ...)")
    spec = PARALLEL_CATALOG[name]
    for lang in (src_lang, trg_lang):
        if lang not in spec.languages:
            raise DataError(f"dataset {name!r} has no {lang!r} side; its languages are {', '.join(spec.languages)}")
    langs = (src_lang, trg_lang)
    names = ", ".join(spec.file_name(s, lang) for s in splits for lang in langs)
    return _locate(name, spec, root, allow_hub,
                   lambda folder: {s: tuple(folder / spec.file_name(s, lang) for lang in langs) for s in splits},
                   lambda: _parallel_from_hub(spec, splits, langs, cache_dir), spec.hub_id,
                   f"Put the files ({names}) in a folder named {spec.folder} and set SEQ2TEXT_DATA to its parent, "
                   "or `data.root` to the folder")


def _parallel_from_hub(spec: ParallelSpec, splits: Sequence[str], langs: tuple[str, str],
                       cache_dir: str | Path | None) -> dict[str, tuple[Path, Path]]:
    """One local text file per split and side with the standard name."""
    def write(rows: Iterator[dict], handles: tuple[IO, ...]) -> None:
        for row in rows:  # streamed: one pair at a time
            for lang, handle in zip(langs, handles, strict=True):
                column, _, key = spec.hub_columns[lang].partition(".")
                value = row[column][key] if key else row[column]
                handle.write(" ".join(str(value).split()) + "\n")  # one line each, no inner newlines

    return _download(spec, cache_dir, {s: tuple(spec.file_name(s, lang) for lang in langs) for s in splits}, write)
