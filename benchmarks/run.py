"""Benchmarks: train a recipe to a wall-clock budget and record its test metric.

    python benchmarks/run.py ptb_budget --minutes 15
    python benchmarks/run.py wikitext2_budget --minutes 30
    python benchmarks/lm_throughput.py

Each writes benchmarks/results/<name>.json; `python benchmarks/report.py` rebuilds RESULTS.md from them.
"""

from __future__ import annotations

import argparse
import json

from common import ROOT, fit_to_budget, record

BUDGETS = {
    # name: (recipe, metric key in the bundle's metrics, reported metric, default minutes, data split)
    "ptb_budget": ("recipes/ptb_lstm_small.yaml", "test/ppl", "test_ppl", 15, "test (ptb.test.txt)"),
    "wikitext2_budget": ("recipes/wikitext2_lstm.yaml", "test/ppl", "test_ppl", 30, "test (wiki.test.tokens)"),
}


def run_budget(name: str, minutes: float, extra: list[str]) -> dict:
    recipe, key, metric, _, split = BUDGETS[name]
    out = ROOT / "benchmarks" / "runs" / name
    wall = fit_to_budget(recipe, out, minutes, extra)
    metrics = json.loads((out / "bundle" / "metrics.json").read_text())
    return record(name, recipe=recipe, metric=metric, value=round(metrics[key], 2), split=split,
                  train_seconds=round(metrics["train_seconds"], 1), wall_seconds=round(wall, 1),
                  budget_minutes=minutes, epochs=metrics.get("epochs"), steps=metrics.get("global_step"),
                  valid_ppl=round(metrics.get("val/ppl", float("nan")), 2),
                  test_words=metrics.get("test/words"), overrides=extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", choices=sorted(BUDGETS))
    parser.add_argument("--minutes", type=float, default=None, help="training budget (default per benchmark)")
    parser.add_argument("overrides", nargs="*", help="extra recipe overrides, e.g. --model.init_args.lr=0.002")
    args, unknown = parser.parse_known_args()
    minutes = args.minutes or BUDGETS[args.benchmark][3]
    run_budget(args.benchmark, minutes, args.overrides + unknown)


if __name__ == "__main__":
    main()
