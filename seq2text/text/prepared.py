"""Prepared caches: a corpus tokenized once, on every core, into memory-mapped token files (no torch, no Lightning).

A cache is one folder, `<prepared_dir>/<name>-<key>/`, named by a hash of everything that decides its ids (the
inputs' paths, sizes and modification times, the tokenizer's fingerprint, the options):

    meta.json              format version, key, inputs, tokenizer fingerprint, and per array: dtype, length,
                           lines, tokens, words (+1 per line: word-level perplexity's denominator), characters
    <array>.bin            the ids of every line back to back: uint16 when the vocabulary has fewer than 65,536
                           ids, else uint32 (an LM stream also starts with one context `</s>`)
    <array>.idx.npy        int64 offsets into `.bin`, (lines + 1,): line i is `bin[idx[i]:idx[i + 1]]`

A cache is built in a temporary folder and renamed into place when whole; a folder whose files do not match its
`meta.json` is rebuilt. `data/README.md` describes the layout for other tools.
"""

from __future__ import annotations

import errno
import functools
import glob
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

import numpy as np

from seq2text.errors import DataError
from seq2text.hardware import usable_cores
from seq2text.text.textio import not_utf8, require_file
from seq2text.text.tokenizer import EOS_ID, PAD_ID, Tokenizer

__all__ = ["FORMAT_VERSION", "PreparedCache", "Ragged", "default_prepared_dir", "expand_inputs", "id_dtype",
           "prepare_lm", "prepare_texts", "file_identity", "text_digest"]

FORMAT_VERSION = 1
CHUNK_BYTES = 4 << 20  # text per worker task
_log = logging.getLogger("seq2text")


def default_prepared_dir() -> Path:
    """`$SEQ2TEXT_PREPARED`, else `data/prepared` under the working directory (fairseq's `data-bin` habit)."""
    return Path(os.environ.get("SEQ2TEXT_PREPARED", Path("data") / "prepared"))


def id_dtype(vocab_size: int) -> np.dtype:
    """uint16 for vocabularies of fewer than 65,536 ids, else uint32."""
    return np.dtype(np.uint16 if vocab_size < 1 << 16 else np.uint32)


def expand_inputs(inputs: str | Path | Sequence[str | Path]) -> list[Path]:
    """Files of each item, a path or a glob (`wiki/*.txt`, expanded in sorted order), in the items' order."""
    items = [inputs] if isinstance(inputs, str | Path) else list(inputs)
    if not items:
        raise DataError("no input files given; pass a path or a glob such as 'corpus/*.txt'")
    files: list[Path] = []
    for item in items:
        matches = sorted(glob.glob(str(item), recursive=True)) if glob.has_magic(str(item)) else [str(item)]
        found = [Path(m) for m in matches if Path(m).is_file()]
        if not found:
            raise DataError(f"{item} matches no file; check the path or the glob (quote it in a shell)")
        files.extend(found)
    return files


def text_digest(texts: Iterable[str]) -> str:
    """A hash of texts already in memory (what keys a classification or translation cache)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()[:24]


def file_identity(path: Path) -> dict:
    """What keys a cache to a file without reading it: absolute path, size, modification time."""
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


# ----------------------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class Ragged:
    """The ids of many lines back to back (maybe memory-mapped): `ids` (total,) and `offsets` (lines + 1,)."""

    ids: np.ndarray
    offsets: np.ndarray

    @classmethod
    def from_lists(cls, rows: Sequence[Sequence[int]], dtype: type = np.int32) -> Ragged:
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))  # (lines,)
        ids = np.fromiter(chain.from_iterable(rows), dtype=dtype, count=int(lengths.sum()))
        return cls(ids, np.concatenate([[0], np.cumsum(lengths)]))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @functools.cached_property
    def lengths(self) -> np.ndarray:
        """Ids of each line, (lines,) int64."""
        return np.diff(self.offsets)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.ids[self.offsets[index]: self.offsets[index + 1]]

    def padded(self, rows: Sequence[int]) -> np.ndarray:
        """Lines `rows` right-padded with PAD_ID to the longest, (len(rows), longest) int64."""
        lengths = self.lengths[rows]
        out = np.full((len(rows), int(lengths.max())), PAD_ID, dtype=np.int64)
        for r, i in enumerate(rows):
            out[r, : lengths[r]] = self[i]
        return out


class PreparedCache:
    """An opened cache folder: its metadata and memory maps of its arrays."""

    def __init__(self, folder: Path, meta: dict) -> None:
        self.folder, self.meta = folder, meta

    def stats(self, array: str) -> dict:
        """lines, tokens, words, chars of one array."""
        return self.meta["arrays"][array]

    def ids(self, array: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """A read-only memory map of `array`'s ids `[start, stop)` (only that range is mapped)."""
        info = self.meta["arrays"][array]
        stop = info["length"] if stop is None else min(stop, info["length"])
        if stop <= start:
            return np.empty(0, dtype=info["dtype"])
        dtype = np.dtype(info["dtype"])
        return np.memmap(self.folder / f"{array}.bin", dtype=dtype, mode="r", offset=start * dtype.itemsize,
                         shape=(stop - start,))

    def array(self, name: str) -> np.ndarray:
        """A plain array the cache holds (`prepare_texts`), memory-mapped."""
        return np.load(self.folder / f"{name}.npy", mmap_mode="r")

    def ragged(self, array: str) -> Ragged:
        offsets = np.load(self.folder / f"{array}.idx.npy", mmap_mode="r")
        return Ragged(self.ids(array), np.asarray(offsets))

    @classmethod
    def open(cls, folder: Path, key: str) -> PreparedCache | None:
        """The cache in `folder` if it is whole and was built for `key`; None (with the reason logged) if not."""
        problem = _check(folder, key)
        if problem is None:
            return cls(folder, json.loads((folder / "meta.json").read_text(encoding="utf-8")))
        if folder.exists():
            _log.warning("prepared cache %s is not usable (%s); building it again", folder, problem)
        return None


def _check(folder: Path, key: str) -> str | None:
    """Why `folder` is not a whole cache for `key`, or None."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "no meta.json"
    except (OSError, ValueError) as error:
        return f"meta.json unreadable: {error}"
    if meta.get("format") != FORMAT_VERSION or meta.get("key") != key:
        return "built by another seq2text version, tokenizer or options"
    arrays = meta.get("arrays", {})
    for name, info in arrays.items():
        path, size = folder / f"{name}.bin", info["length"] * np.dtype(info["dtype"]).itemsize
        if not path.is_file() or path.stat().st_size != size:
            return f"{path.name} has {path.stat().st_size if path.is_file() else 0} bytes, meta.json says {size}"
    lengths = {**{f"{name}.idx.npy": info["lines"] + 1 for name, info in arrays.items()},
               **{f"{name}.npy": length for name, length in meta.get("plain", {}).items()}}
    for file, length in lengths.items():
        try:
            if len(np.load(folder / file, mmap_mode="r")) != length:
                return f"{file} does not hold {length} values"
        except (OSError, ValueError) as error:
            return f"{file} is unreadable: {error}"
    return None


def cache_key(parts: dict) -> str:
    """A short hash of the JSON of `parts` (with the format version)."""
    text = json.dumps({"format": FORMAT_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------------------------- writing
class _ArrayWriter:
    """Appends ids to `<name>.bin`, collecting offsets and counts."""

    def __init__(self, folder: Path, name: str, dtype: np.dtype, lead: Sequence[int] = ()) -> None:
        self.folder, self.name, self.dtype = folder, name, dtype
        self.handle = (folder / f"{name}.bin").open("wb")
        self.lengths: list[np.ndarray] = []
        self.length, self.words, self.chars, self.start = 0, 0, 0, len(lead)
        if lead:
            self.write(np.asarray(lead, dtype=dtype), np.empty(0, dtype=np.int64), 0, 0)

    def write(self, ids: np.ndarray, lengths: np.ndarray, words: int, chars: int) -> None:
        ids.astype(self.dtype, copy=False).tofile(self.handle)
        self.lengths.append(lengths)
        self.length += len(ids)
        self.words, self.chars = self.words + words, self.chars + chars

    def close(self) -> dict:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        lengths = np.concatenate(self.lengths) if self.lengths else np.empty(0, dtype=np.int64)
        offsets = np.concatenate([[self.start], self.start + np.cumsum(lengths, dtype=np.int64)])
        np.save(self.folder / f"{self.name}.idx.npy", offsets.astype(np.int64))
        return {"dtype": self.dtype.name, "length": self.length, "lines": len(lengths),
                "tokens": int(lengths.sum()), "words": self.words, "chars": self.chars}


def _open_or_build(prepared_dir: str | Path | None, name: str, parts: dict, meta: dict, fill: Callable[[Path], dict],
                   info: dict | None = None) -> PreparedCache:
    """The whole cache keyed by `parts` under `prepared_dir`, whatever its name prefix; else one built in a temporary
    folder (`fill(tmp)` writes the arrays and returns their stats; `info` goes into meta.json) and renamed to
    `<name>-<key>`."""
    key, root = cache_key(parts), Path(prepared_dir or default_prepared_dir())
    for found in sorted(root.glob(f"*-{key}")) if root.is_dir() else []:
        if (cache := PreparedCache.open(found, key)) is not None:
            return cache
    folder = root / f"{name}-{key}"
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{folder.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        arrays = fill(tmp)
        plain = {p.name[:-4]: len(np.load(p, mmap_mode="r")) for p in tmp.glob("*.npy") if ".idx." not in p.name}
        (tmp / "meta.json").write_text(json.dumps({"format": FORMAT_VERSION, "key": key, "name": name, **meta,
                                                   "arrays": arrays, "plain": plain, "info": info or {}}, indent=1),
                                       encoding="utf-8")
        _install(tmp, folder, key)
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            raise DataError(f"the disk is full while writing the prepared cache {folder}; free space, or set "
                            "data.prepared_dir (or SEQ2TEXT_PREPARED) to a folder on a larger disk") from None
        raise
    opened = PreparedCache.open(folder, key)
    if opened is None:
        raise DataError(f"the prepared cache {folder} was written but does not read back whole; remove it and run "
                        "`seq2text prepare` again")
    return opened


def _install(tmp: Path, folder: Path, key: str) -> None:
    """Renames `tmp` to `folder`, moving a broken `folder` aside first; a whole one that appeared meanwhile wins."""
    if folder.exists():
        if _check(folder, key) is None:
            shutil.rmtree(tmp, ignore_errors=True)
            return
        stale = folder.parent / f".{folder.name}.{os.getpid()}.stale"
        os.replace(folder, stale)
        shutil.rmtree(stale, ignore_errors=True)
    try:
        os.replace(tmp, folder)
    except OSError:  # another process installed the same cache between the check and the rename
        if _check(folder, key) is not None:
            raise
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------------------------- encoding
_WORKER_TOKENIZER: Tokenizer | None = None


def _init_worker(proto: bytes) -> None:
    global _WORKER_TOKENIZER
    _WORKER_TOKENIZER = Tokenizer(proto)


def _lines_of_chunk(path: Path, start: int, stop: int) -> list[str]:
    """The lines of bytes `[start, stop)` of `path`, read as `textio.iter_lines` reads them."""
    with path.open("rb") as handle:
        handle.seek(start)
        raw = handle.read(stop - start)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        with path.open("rb") as handle:
            line = handle.read(start).count(b"\n") + raw.count(b"\n", 0, error.start) + 1
        column = error.start - raw.rfind(b"\n", 0, error.start) - 1
        raise not_utf8(path, line, f" at byte {column} ({error.reason})") from None
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def _encode_chunk(chunk: tuple[Path, int, int]) -> tuple[np.ndarray, np.ndarray, int, int]:
    """A worker's job: a byte range of a file → (ids with each line's eos, lengths, words, chars)."""
    lines = _lines_of_chunk(*chunk)
    flat, lengths = _WORKER_TOKENIZER.encode_flat(lines, add_eos=True)
    flat = flat.astype(id_dtype(_WORKER_TOKENIZER.vocab_size))  # 2 bytes an id back to the parent, not 8
    words = int(lengths.sum()) if _WORKER_TOKENIZER.model_type == "word" else \
        sum(len(line.split()) + 1 for line in lines)  # (a word model's ids are the words and eos)
    return flat, lengths, words, sum(map(len, lines)) + len(lines)


def _file_chunks(path: Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[Path, int, int]]:
    """Byte ranges of about `chunk_bytes` that end at line ends."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        start = 0
        while start < size:
            handle.seek(min(start + chunk_bytes, size))
            handle.readline()
            stop = min(handle.tell(), size)
            yield path, start, stop
            start = stop


def _encode_all(tasks: Iterable[tuple], tokenizer: Tokenizer, workers: int) -> Iterator[tuple]:
    """Encodes tasks in order, on `workers` processes (forked: no re-import of the caller's script)."""
    if workers <= 1:
        _init_worker(tokenizer.model_proto)
        yield from map(_encode_chunk, tasks)
        return
    context = get_context("fork") if "fork" in get_all_start_methods() else get_context("spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=(tokenizer.model_proto,)) as pool:
        yield from pool.imap(_encode_chunk, tasks, chunksize=1)


# ----------------------------------------------------------------------------------------------- entry points
def prepare_lm(source: Sequence[Path], tokenizer: Tokenizer, name: str, prepared_dir: str | Path | None = None,
               workers: int | None = None) -> PreparedCache:
    """Tokenizes a language-model corpus (files read in order, in chunks) once into a cache holding one array,
    `stream` (as `reading.encode_stream`), or opens the cache already there. `name` is the folder's readable prefix,
    not part of the key; `workers` default to every usable core."""
    for path in source:
        if require_file(path).stat().st_size == 0:
            raise DataError(f"{path} is empty; give a file with at least one line of text")
    sources = [file_identity(p) for p in source]

    def fill(tmp: Path) -> dict:
        count = workers or usable_cores()
        _log.info("preparing %s: tokenizing once on %d process(es) into %s", name, count, tmp.parent)
        writer = _ArrayWriter(tmp, "stream", id_dtype(tokenizer.vocab_size), lead=[EOS_ID])
        tasks = (chunk for path in source for chunk in _file_chunks(path))
        for flat, lengths, words, chars in _encode_all(tasks, tokenizer, count):
            writer.write(flat, lengths, words, chars)
        stream = writer.close()
        if stream["lines"] == 0:
            raise DataError(f"{name}: the source gave no lines of text")
        return {"stream": stream}

    return _open_or_build(prepared_dir, name, {"kind": "lm", "sources": sources, "tokenizer": tokenizer.fingerprint},
                          {"sources": sources, "tokenizer": tokenizer.fingerprint, "vocab_size": tokenizer.vocab_size},
                          fill)


def prepare_texts(build: Callable[[], dict], name: str, key_parts: dict, vocab_size: int,
                  prepared_dir: str | Path | None = None) -> PreparedCache:
    """Stores the ids a data module chose in one cache keyed by `key_parts`, or opens the cache already there.
    `build()` returns name → a list of id lists (`ragged(name)`), a 1-D array (`array(name)`), or, under `info`, a
    small JSON dict (`meta["info"]`)."""
    info: dict = {}

    def fill(tmp: Path) -> dict:
        out = {}
        for array, rows in build().items():
            if array == "info":
                info.update(rows)
            elif isinstance(rows, np.ndarray):
                np.save(tmp / f"{array}.npy", rows)
            else:
                writer = _ArrayWriter(tmp, array, id_dtype(vocab_size))
                ragged = Ragged.from_lists(rows, np.int64)
                writer.write(ragged.ids, ragged.lengths, 0, 0)
                out[array] = writer.close()
        return out

    return _open_or_build(prepared_dir, name, {"kind": "texts", **key_parts}, key_parts, fill, info)
