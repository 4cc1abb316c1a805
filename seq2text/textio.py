"""Reading text files strictly: UTF-8 only, errors that name the file and the line."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from seq2text.errors import DataError

__all__ = ["read_lines", "iter_lines", "read_text", "atomic_write_text"]


def iter_lines(path: str | Path) -> Iterator[str]:
    """Yields the lines of a UTF-8 file without their line endings.

    Raises:
        DataError: the file is missing or a line is not valid UTF-8 (the message names the line).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist or is not a file; check the path (or SEQ2TEXT_DATA)")
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataError(
                    f"{path}, line {number}: invalid UTF-8 at byte {error.start} ({error.reason}); "
                    "convert the file to UTF-8, e.g. `iconv -f latin1 -t utf-8 in > out`"
                ) from None
            yield line.rstrip("\r\n")


def read_text(path: str | Path) -> str:
    """Reads a whole UTF-8 file as one string (a byte-order mark dropped).

    Raises:
        DataError: the file is missing or not valid UTF-8 (the message names the line).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist or is not a file; check the path (or SEQ2TEXT_DATA)")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise DataError(f"{path}, line {line}: invalid UTF-8 ({error.reason}); convert the file to UTF-8, "
                        "e.g. `iconv -f latin1 -t utf-8 in > out`") from None
    return text.removeprefix("\ufeff")


def read_lines(path: str | Path, allow_empty_file: bool = False) -> list[str]:
    """Reads a whole UTF-8 text file as a list of lines (see `iter_lines`).

    Raises:
        DataError: missing file, invalid UTF-8, or an empty file unless `allow_empty_file`.
    """
    lines = list(iter_lines(path))
    if not lines and not allow_empty_file:
        raise DataError(f"{path} is empty; give a file with at least one line of text")
    return lines


def atomic_write_text(path: str | Path, text: str) -> None:
    """Writes `text` to `path` through a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
