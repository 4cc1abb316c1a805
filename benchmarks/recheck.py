"""Recheck: bundles written by earlier commits still load, and give the figures their benchmark records hold.

    python benchmarks/recheck.py ptb_budget_fp32=PATH/bundle wikitext2_budget_fp32=PATH/bundle \
        multi30k_budget_fp32=PATH/bundle [--output DIR]

For each `<benchmark>=<bundle>` pair it reads benchmarks/results/<benchmark>.json (the figure as recorded, and
the commit that wrote it), loads the bundle with this checkout through the public API (`seq2text.load`), and
recomputes the figure on the same test split: word-level perplexity of the language model's test file, or the
sacreBLEU of the beam-5 translation of the raw Multi30k test sources against the raw references. A figure
reproduces when it equals the record at the record's precision. Writes <output>/recheck.json.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from common import RESULTS, record


def _lm_figure(bundle: Path, benchmark: str) -> float:
    import seq2text
    from seq2text.data.catalog import resolve

    name = "ptb" if benchmark.startswith("ptb") else "wikitext2"
    test = resolve(name, splits=("test",), allow_hub=False)["test"]
    lines = test.read_text(encoding="utf-8").splitlines()
    return seq2text.load(bundle).perplexity(lines)


def _bleu_figure(bundle: Path, beam_size: int) -> tuple[float, str]:
    import seq2text
    from seq2text.data.catalog import resolve_parallel
    from seq2text.predict.metrics import bleu

    src, ref = resolve_parallel("multi30k", "de", "en", splits=("test",), allow_hub=False)["test"]
    hypotheses = seq2text.load(bundle).translate(src.read_text(encoding="utf-8").splitlines(), beam_size=beam_size)
    score = bleu(hypotheses, ref.read_text(encoding="utf-8").splitlines())
    return score.score, score.signature


def recheck(benchmark: str, bundle: Path) -> dict:
    recorded = json.loads((RESULTS / f"{benchmark}.json").read_text())
    config = json.loads((bundle / "config.json").read_text())
    start = time.monotonic()
    entry = {"recorded": recorded["value"], "recorded_commit": recorded["commit"], "metric": recorded["metric"],
             "split": recorded["split"], "bundle": str(bundle), "bundle_has_reading_spec": "reading" in config}
    if recorded["metric"] == "test_ppl":
        value = _lm_figure(bundle, benchmark)
        entry["recomputed"] = round(value, 2)
    else:
        value, signature = _bleu_figure(bundle, recorded.get("beam_size", 5))
        entry.update(recomputed=round(value, 2), signature=signature,
                     signature_matches=signature == recorded.get("signature"))
    entry["reproduces"] = math.isclose(entry["recomputed"], recorded["value"], abs_tol=0.005)
    entry["seconds"] = round(time.monotonic() - start, 1)
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pairs", nargs="+", metavar="BENCHMARK=BUNDLE")
    parser.add_argument("--output", default=None, help="folder of recheck.json (default benchmarks/results)")
    args = parser.parse_args()
    start = time.monotonic()
    checks = {}
    for pair in args.pairs:
        benchmark, _, path = pair.partition("=")
        if not path:
            raise SystemExit(f"recheck: {pair!r} is not BENCHMARK=BUNDLE")
        checks[benchmark] = recheck(benchmark, Path(path))
    reproduced = sum(c["reproduces"] for c in checks.values())
    record("recheck", Path(args.output) if args.output else RESULTS, metric="figures_reproduced", precision="32-true",
           value=f"{reproduced}/{len(checks)}", split="each benchmark's own test split", checks=checks,
           wall_seconds=round(time.monotonic() - start, 1))


if __name__ == "__main__":
    main()
