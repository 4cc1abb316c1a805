"""Seconds that `import seq2text` adds to `import torch` (issue 12: at most 0.5 s), in fresh processes, alternating
the two in the same run; and whether importing seq2text loads Lightning (it must not).

    python benchmarks/import_time.py [--repeats 7]

value = median(import seq2text) - median(import torch), in seconds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from common import ROOT, record

PROBE = "import sys; import {module}; print(sorted(m for m in sys.modules if 'lightning' in m))"


def seconds(module: str) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    seconds("torch")  # warm the file cache for both
    seconds("seq2text")
    torch_s, ours_s, loaded = [], [], ""
    for _ in range(args.repeats):
        torch_s.append(seconds("torch")[0])
        took, loaded = seconds("seq2text")
        ours_s.append(took)
    extra = statistics.median(ours_s) - statistics.median(torch_s)
    record("import_time", metric="import_seq2text_minus_import_torch_s", value=round(extra, 3),
           split="none (interpreter start-up)", import_torch_s=[round(x, 3) for x in torch_s],
           import_seq2text_s=[round(x, 3) for x in ours_s], lightning_modules_loaded=loaded, repeats=args.repeats,
           train_seconds=None)


if __name__ == "__main__":
    main()
