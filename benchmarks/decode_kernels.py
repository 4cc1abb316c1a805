"""The two kernels a translation decoder step spends most on, each written the way seq2text decodes now and the way
it did before, alternating in one process, one torch thread (a server's model process on a 2-core machine):

1. Bahdanau's scoring tanh over (sentences, beams, src_len, attention_size) values: `torch.tanh` against
   `2 sigmoid(2x) - 1` in place (`seq2text.nn.attention._tanh_`);
2. the output projection of `rows` beam rows onto the vocabulary: `F.linear(x, W, b)` against
   `torch.addmm(b, x, W^T contiguous)` (`Seq2Seq._decoding_weight`), for a server's rows and in-process batches.

    python benchmarks/decode_kernels.py [--repeats 7] [--vocab 8000] [--width 256]

Shapes are those of the Multi30k recipe (8,000 pieces, 256 wide, beam 5); the median of `--repeats` timings of
each. value = the tanh speed-up; `linear` holds the output projection's per row count. Both forms agree (checked).
On a machine with AVX-512 the measurements are repeated in a child process restricted to AVX2 kernels
(ATEN_CPU_CAPABILITY=avx2, MKL_ENABLE_INSTRUCTIONS=AVX2), what most laptops run: `by_kernels` holds both.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
from common import record

from seq2text.nn.attention import _tanh_


def _time(fn: Callable[[], object], calls: int) -> float:
    for _ in range(3):
        fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1000  # ms per call


def _ab(old: Callable[[], object], new: Callable[[], object], repeats: int, calls: int) -> dict:
    """Alternates the two; their median ms per call and old / new."""
    olds, news = [], []
    for _ in range(repeats):
        olds.append(_time(old, calls))
        news.append(_time(new, calls))
    old_ms, new_ms = statistics.median(olds), statistics.median(news)
    return {"old_ms": round(old_ms, 4), "new_ms": round(new_ms, 4), "old_over_new": round(old_ms / new_ms, 3)}


def _measure(repeats: int, vocab: int, width: int) -> dict:
    """Both comparisons at this process's kernel level."""
    torch.manual_seed(0)
    with torch.inference_mode():
        keys, query = torch.randn(16, 1, 25, width), torch.randn(16, 5, 1, width)  # 16 sentences × 5 beams
        if not torch.allclose(_tanh_(keys + query), torch.tanh(keys + query), atol=1e-6):
            raise SystemExit("the two tanh forms disagree")
        tanh = _ab(lambda: torch.tanh(keys + query), lambda: _tanh_(keys + query), repeats, 200)
        weight, bias = torch.randn(vocab, width) * 0.1, torch.randn(vocab)
        transposed = weight.t().contiguous()
        linear = {}
        for rows in (40, 80, 160, 320):  # 8-16 sentences × 5 beams (a model process), 32-64 (in-process)
            x = torch.randn(rows, width)
            if not torch.allclose(torch.addmm(bias, x, transposed), torch.nn.functional.linear(x, weight, bias),
                                  atol=1e-4):
                raise SystemExit("the two output projections disagree")
            linear[str(rows)] = _ab(lambda x=x: torch.nn.functional.linear(x, weight, bias),
                                    lambda x=x: torch.addmm(bias, x, transposed), repeats, 50)
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "tanh": tanh, "linear": linear}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--child", action="store_true", help="print the measurements as JSON, record nothing")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    here = _measure(args.repeats, args.vocab, args.width)
    if args.child:
        print(json.dumps(here))
        return
    by_kernels = {here["cpu_capability"]: here}
    if here["cpu_capability"] == "AVX512":
        env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
        child = subprocess.run([sys.executable, __file__, "--child", "--repeats", str(args.repeats), "--vocab",
                                str(args.vocab), "--width", str(args.width)], env=env, check=True,
                               capture_output=True, text=True)
        avx2 = json.loads(child.stdout.strip().splitlines()[-1])
        by_kernels[avx2["cpu_capability"]] = avx2
    speedups = {level: {"tanh": m["tanh"]["old_over_new"],
                        "linear_by_rows": {rows: ab["old_over_new"] for rows, ab in m["linear"].items()}}
                for level, m in by_kernels.items()}
    record("decode_kernels", metric="tanh_old_over_new", value=here["tanh"]["old_over_new"], speedups=speedups,
           tanh=here["tanh"], linear=here["linear"], by_kernels=by_kernels, tanh_shape=[16, 5, 25, args.width],
           vocab=args.vocab, width=args.width, precision="32-true (float32 kernels)",
           split="random tensors of the Multi30k recipe's shapes", wall_seconds=round(time.perf_counter() - start, 1))


if __name__ == "__main__":
    main()
