"""Runs a command while other processes keep every core busy (`make test-under-load`): the suite must pass on a
busy laptop too. Usage: python tests/under_load.py COMMAND [ARGS...]; exits with the command's status."""

from __future__ import annotations

import os
import subprocess
import sys


def main() -> int:
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    print(f"under load: {len(hogs)} busy processes beside `{' '.join(sys.argv[1:])}`", flush=True)
    try:
        return subprocess.run(sys.argv[1:]).returncode
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


if __name__ == "__main__":
    sys.exit(main())
