"""Reading text files strictly: UTF-8 only, errors that name the file and the line."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from seq2text.errors import DataError

__all__ = ["read_lines", "iter_lines", "read_text", "atomic_open", "atomic_write_text", "atomic_write_bytes",
           "not_utf8", "require_file"]


def require_file(path: str | Path) -> Path:
    """`path`, if it is a file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist or is not a file; check the path (or SEQ2TEXT_DATA)")
    return path


def not_utf8(path: str | Path, line: int, detail: str) -> DataError:
    """The error for a file that is not UTF-8, naming the line (`detail`: where in it, and why)."""
    return DataError(f"{path}, line {line}: invalid UTF-8{detail}; convert the file to UTF-8, e.g. "
                     "`iconv -f latin1 -t utf-8 in > out`")


def iter_lines(path: str | Path) -> Iterator[str]:
    """Yields the lines of a UTF-8 file without their line endings (a DataError names a bad line)."""
    with require_file(path).open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as error:
                raise not_utf8(path, number, f" at byte {error.start} ({error.reason})") from None


def read_text(path: str | Path) -> str:
    """Reads a whole UTF-8 file as one string (a byte-order mark dropped); a DataError names a bad line."""
    raw = require_file(path).read_bytes()
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise not_utf8(path, raw.count(b"\n", 0, error.start) + 1, f" ({error.reason})") from None


def read_lines(path: str | Path, allow_empty_file: bool = False) -> list[str]:
    """Reads a whole UTF-8 text file as a list of lines (see `iter_lines`); empty only with `allow_empty_file`."""
    lines = list(iter_lines(path))
    if not lines and not allow_empty_file:
        raise DataError(f"{path} is empty; give a file with at least one line of text")
    return lines


@contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """A temporary file beside `path` (`w` UTF-8 text, or `wb`), synced and renamed over `path` when the block ends,
    so readers never see half a file; on an error it is removed and `path` is untouched. The one atomic writer."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str | bytes) -> None:
    """Writes `text` (or bytes) to `path` atomically (see `atomic_open`)."""
    with atomic_open(path, "wb" if isinstance(text, bytes) else "w") as handle:
        handle.write(text)


atomic_write_bytes = atomic_write_text
