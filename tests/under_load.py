"""Runs a command while other processes keep every core busy (`make test-under-load`): the suite must pass on a
busy laptop too. Usage: python tests/under_load.py COMMAND [ARGS...]; exits with the command's status."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cpu_hogs() -> Iterator[int]:
    """One busy process per core while the block runs; yields their number."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        yield len(hogs)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def main() -> int:
    with cpu_hogs() as count:
        print(f"under load: {count} busy processes beside `{' '.join(sys.argv[1:])}`", flush=True)
        return subprocess.run(sys.argv[1:]).returncode


if __name__ == "__main__":
    sys.exit(main())
