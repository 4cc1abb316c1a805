"""The two kernels a translation decoder step spends most on, each written the way seq2text decodes now and the way
it did before, alternating in one process, one torch thread (a server's model process on a 2-core machine):

1. Bahdanau's scoring tanh over (sentences, beams, src_len, attention_size) values: `torch.tanh` against
   `2 sigmoid(2x) - 1` in place (`seq2text.nn.attention._tanh_`);
2. the output projection of `rows` beam rows onto the vocabulary: `F.linear(x, W, b)` against
   `torch.addmm(b, x, W^T contiguous)` (`Seq2Seq._decoding_weight`), for a server's rows and in-process batches.

    python benchmarks/decode_kernels.py [--repeats 7] [--vocab 8000] [--width 256]

Shapes are those of the Multi30k recipe (8,000 pieces, 256 wide, beam 5); the median of `--repeats` timings of
each. value = the tanh speed-up; `linear` holds the output projection's per row count. Both forms agree (checked).
"""

from __future__ import annotations

import argparse
import statistics
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--width", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    start = time.perf_counter()
    with torch.inference_mode():
        keys, query = torch.randn(16, 1, 25, args.width), torch.randn(16, 5, 1, args.width)  # 16 sentences × 5 beams
        if not torch.allclose(_tanh_(keys + query), torch.tanh(keys + query), atol=1e-6):
            raise SystemExit("the two tanh forms disagree")
        tanh = _ab(lambda: torch.tanh(keys + query), lambda: _tanh_(keys + query), args.repeats, 200)
        weight, bias = torch.randn(args.vocab, args.width) * 0.1, torch.randn(args.vocab)
        transposed = weight.t().contiguous()
        linear = {}
        for rows in (40, 80, 160, 320):  # 8-16 sentences × 5 beams (a model process), 32-64 (in-process)
            x = torch.randn(rows, args.width)
            if not torch.allclose(torch.addmm(bias, x, transposed), torch.nn.functional.linear(x, weight, bias),
                                  atol=1e-4):
                raise SystemExit("the two output projections disagree")
            linear[str(rows)] = _ab(lambda x=x: torch.nn.functional.linear(x, weight, bias),
                                    lambda x=x: torch.addmm(bias, x, transposed), args.repeats, 50)
    record("decode_kernels", metric="tanh_old_over_new", value=tanh["old_over_new"], tanh=tanh,
           tanh_shape=[16, 5, 25, args.width], linear=linear, vocab=args.vocab, width=args.width,
           precision="32-true (float32 kernels)", split=None, wall_seconds=round(time.perf_counter() - start, 1))


if __name__ == "__main__":
    main()
