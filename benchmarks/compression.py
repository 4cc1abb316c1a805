"""Compressed bundles against their float32 source, in the same run (`seq2text compress`).

    python benchmarks/compression.py multi30k_int8 [--model benchmarks/runs/multi30k_quality_seed1234/bundle]
    python benchmarks/compression.py imdb_int8 [--model benchmarks/runs/imdb_rating_classifier/bundle]
    python benchmarks/compression.py ptb_int8 [--model benchmarks/runs/ptb_budget_fp32/bundle]

Each compresses the bundle to int8 and to fp16 (into benchmarks/runs/compressed/), then measures the float32,
int8 and fp16 predictors on the standard test split in one process, alternating fp32 and int8 timings
(`--repeats` rounds, the median kept): multi30k_int8 — beam-5 sentences/s ratio int8/fp32 (`value`) and
`bleu_drop` = fp32 BLEU − int8 BLEU (sacreBLEU on detokenized output against the raw references);
imdb_int8 — texts/s ratio (`value`) and accuracy drop in points; ptb_int8 — perplexity rise in percent
(`value`) and the ratio of words/s. Bundle sizes in bytes for all three.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from common import ROOT, record

OUT = ROOT / "benchmarks" / "runs" / "compressed"


def _compressed(model: str, name: str) -> dict[str, Path]:
    """The float32 bundle and its int8 and fp16 copies (written again each run)."""
    from seq2text.bundles.compression import compress_bundle

    return {"fp32": Path(model), **{kind: compress_bundle(model, OUT / f"{name}_{kind}", kind)
                                    for kind in ("int8", "fp16")}}


def _timed(run: Callable[[], object], repeats: int) -> tuple[object, float]:
    """The result of `run` and its median wall seconds over `repeats` calls."""
    seconds, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - start)
    return result, statistics.median(seconds)


def _measure(bundles: dict[str, Path], task: Callable[[object], Callable[[], object]], repeats: int
             ) -> tuple[dict[str, object], dict[str, float]]:
    """Loads each bundle and runs its `task` closure; timings alternate between the kinds round by round."""
    import seq2text

    runs = {kind: task(seq2text.load(path)) for kind, path in bundles.items()}
    results, seconds = {}, {kind: [] for kind in runs}
    for _ in range(repeats):
        for kind, run in runs.items():
            results[kind], elapsed = _timed(run, 1)
            seconds[kind].append(elapsed)
    return results, {kind: statistics.median(values) for kind, values in seconds.items()}


def _sizes(bundles: dict[str, Path]) -> dict[str, int]:
    from seq2text.bundles.io import bundle_size

    return {kind: bundle_size(path) for kind, path in bundles.items()}


def multi30k_int8(model: str, repeats: int) -> dict:
    from seq2text.data.catalog import resolve_parallel
    from seq2text.predict.metrics import bleu

    src, ref = resolve_parallel("multi30k", "de", "en", splits=("test",), allow_hub=False)["test"]
    sources = src.read_text(encoding="utf-8").splitlines()
    references = ref.read_text(encoding="utf-8").splitlines()
    bundles = _compressed(model, "multi30k")
    hypotheses, seconds = _measure(bundles, lambda t: lambda: t.translate(sources, beam_size=5), repeats)
    scores = {kind: bleu(h, references) for kind, h in hypotheses.items()}
    speed = {kind: round(len(sources) / s, 1) for kind, s in seconds.items()}
    return record("multi30k_int8", metric="int8_over_fp32_sentences_per_sec_beam5",
                  value=round(speed["int8"] / speed["fp32"], 3), sentences_per_sec=speed,
                  bleu={k: round(v.score, 2) for k, v in scores.items()},
                  bleu_drop=round(scores["fp32"].score - scores["int8"].score, 2), signature=scores["fp32"].signature,
                  bundle_bytes=_sizes(bundles), model=model, repeats=repeats, beam_size=5,
                  split="test (test_2016_flickr, 1000 sentences, raw cased references)",
                  precision="predictors: float32, int8 (dynamic), fp16 storage run in float32")


def imdb_int8(model: str, repeats: int, every: int) -> dict:
    from seq2text.data.catalog import resolve
    from seq2text.text.reading import read_labeled

    texts, gold = read_labeled(resolve("imdb", splits=("test",), allow_hub=False)["test"], "text", "label")
    texts, gold = texts[::every], gold[::every]  # test.csv is sorted by label: a stride keeps both
    bundles = _compressed(model, "imdb")
    scores, seconds = _measure(bundles, lambda c: lambda: c.evaluate(texts, gold), repeats)
    accuracy = {kind: round(100 * s["acc"], 2) for kind, s in scores.items()}
    speed = {kind: round(len(texts) / s, 1) for kind, s in seconds.items()}
    return record("imdb_int8", metric="int8_over_fp32_texts_per_sec", value=round(speed["int8"] / speed["fp32"], 3),
                  texts_per_sec=speed, accuracy=accuracy, accuracy_drop=round(accuracy["fp32"] - accuracy["int8"], 2),
                  bundle_bytes=_sizes(bundles), model=model, repeats=repeats,
                  split=f"test (imdb/test.csv, every {every}th review: {len(texts):,})",
                  precision="predictors: float32, int8 (dynamic), fp16 storage run in float32")


def ptb_int8(model: str, repeats: int) -> dict:
    from seq2text.data.catalog import resolve
    from seq2text.text.reading import count_words
    from seq2text.text.textio import read_lines

    lines = read_lines(resolve("ptb", splits=("test",), allow_hub=False)["test"])
    bundles = _compressed(model, "ptb")
    ppl, seconds = _measure(bundles, lambda lm: lambda: lm.perplexity(lines), repeats)
    words = count_words(lines)
    speed = {kind: round(words / s, 1) for kind, s in seconds.items()}
    return record("ptb_int8", metric="int8_perplexity_rise_percent",
                  value=round(100 * (ppl["int8"] / ppl["fp32"] - 1), 2),
                  perplexity={k: round(v, 2) for k, v in ppl.items()},
                  words_per_sec=speed, int8_over_fp32_words_per_sec=round(speed["int8"] / speed["fp32"], 3),
                  bundle_bytes=_sizes(bundles), model=model, repeats=repeats, split="test (ptb.test.txt)",
                  precision="predictors: float32, int8 (dynamic), fp16 storage run in float32")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", choices=["multi30k_int8", "imdb_int8", "ptb_int8"])
    parser.add_argument("--model", default=None, help="the float32 bundle (default: see above)")
    parser.add_argument("--repeats", type=int, default=3, help="timing rounds (median)")
    parser.add_argument("--every", type=int, default=5, help="imdb_int8: every K-th test review (1: all 25,000)")
    args = parser.parse_args()
    defaults = {"multi30k_int8": "benchmarks/runs/multi30k_quality_seed1234/bundle",
                "imdb_int8": "benchmarks/runs/imdb_rating_classifier/bundle",
                "ptb_int8": "benchmarks/runs/ptb_budget_fp32/bundle"}
    model = args.model or defaults[args.benchmark]
    if args.benchmark == "multi30k_int8":
        multi30k_int8(model, args.repeats)
    elif args.benchmark == "imdb_int8":
        imdb_int8(model, args.repeats, args.every)
    else:
        ptb_int8(model, args.repeats)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
