"""Benchmarks: train a recipe to a wall-clock budget and record its test metric.

    python benchmarks/run.py ptb_budget --minutes 15
    python benchmarks/run.py wikitext2_budget --minutes 30
    python benchmarks/run.py ptb_budget_fp32 --minutes 15    # the same in fp32 (--trainer.precision 32-true)
    python benchmarks/run.py ptb_char_budget --minutes 15    # character-level, CPU recipe: bpc + a sample
    python benchmarks/run.py ptb_cells --minutes 15      # lstm, lstm_peephole, lstm_layernorm: 15 min each
    python benchmarks/lm_throughput.py

Each writes benchmarks/results/<name>.json; `python benchmarks/report.py` rebuilds RESULTS.md from them.
"""

from __future__ import annotations

import argparse
import json

from common import ROOT, fit_to_budget, record, training_speed

BUDGETS = {
    # name: (recipe, metric key in the bundle's metrics, reported metric, default minutes, data split)
    "ptb_budget": ("recipes/ptb_lstm_small.yaml", "test/ppl", "test_ppl", 15, "test (ptb.test.txt)"),
    "wikitext2_budget": ("recipes/wikitext2_lstm.yaml", "test/ppl", "test_ppl", 30, "test (wiki.test.tokens)"),
    "ptb_char_budget": ("recipes/ptb_char_cpu.yaml", "test/bpc", "test_bpc", 15, "test (ptb.test.txt, characters)"),
}
# ptb_char_budget's sampled paragraph (across line ends: a paragraph, not one sentence)
SAMPLE = {"prompt": "the ", "max_tokens": 500, "temperature": 0.8, "seed": 1, "stop_at_eos": False}
FP32 = ["--trainer.precision", "32-true"]  # <name>_fp32: the same run in fp32, as a CPU without native bf16 runs it


def run_budget(name: str, minutes: float, extra: list[str]) -> dict:
    recipe, key, metric, _, split = BUDGETS[name.removesuffix("_fp32")]
    out = ROOT / "benchmarks" / "runs" / name
    extra = [*FP32, *extra] if name.endswith("_fp32") else extra
    wall = fit_to_budget(recipe, out, minutes, extra)
    metrics = json.loads((out / "bundle" / "metrics.json").read_text())
    extra_fields = {}
    if key == "test/bpc":  # a character model: a sampled paragraph, and the figures in bits per character
        import seq2text

        lm = seq2text.load(out / "bundle")
        extra_fields = {"sample": SAMPLE["prompt"] + lm.generate(**SAMPLE), "sample_settings": SAMPLE,
                        "valid_bpc": round(metrics.get("val/bpc", float("nan")), 3)}
    return record(name, recipe=recipe, metric=metric, value=round(metrics[key], 3 if key == "test/bpc" else 2),
                  split=split, **extra_fields,
                  train_seconds=round(metrics["train_seconds"], 1), wall_seconds=round(wall, 1),
                  budget_minutes=minutes, epochs=metrics.get("epochs"), steps=metrics.get("global_step"),
                  valid_ppl=round(metrics.get("val/ppl", float("nan")), 2),
                  test_words=metrics.get("test/words"), overrides=extra, precision=metrics.get("precision"),
                  precision_reason=metrics.get("precision_reason"),
                  **training_speed(out))


CELLS = ("lstm", "lstm_peephole", "lstm_layernorm")


def ptb_cells(minutes: float, extra: list[str]) -> dict:
    """PTB test perplexity of each LSTM cell at equal wall time: recipes/ptb_lstm_small.yaml with only
    `rnn_type` changed, each trained to the same budget, one after another in this run."""
    recipe = BUDGETS["ptb_budget"][0]
    per_cell = {}
    for cell in CELLS:
        out = ROOT / "benchmarks" / "runs" / f"ptb_cells_{cell}"
        wall = fit_to_budget(recipe, out, minutes, ["--model.init_args.rnn_type", cell, *extra])
        metrics = json.loads((out / "bundle" / "metrics.json").read_text())
        per_cell[cell] = {"test_ppl": round(metrics["test/ppl"], 2), "valid_ppl": round(metrics["val/ppl"], 2),
                          "train_seconds": round(metrics["train_seconds"], 1), "wall_seconds": round(wall, 1),
                          "steps": metrics.get("global_step"), "epochs": metrics.get("epochs"),
                          **training_speed(out)}
        print(cell, per_cell[cell], flush=True)
    best = min(per_cell, key=lambda c: per_cell[c]["test_ppl"])
    return record("ptb_cells", recipe=recipe, metric="test_ppl_best_cell", value=per_cell[best]["test_ppl"],
                  best_cell=best, test_ppl_per_cell={c: v["test_ppl"] for c, v in per_cell.items()},
                  per_cell=per_cell, budget_minutes=minutes, overrides=extra,
                  split="test (ptb.test.txt)", measure="each cell trained to the same wall-clock budget, in turn")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", choices=sorted([*BUDGETS, *(f"{name}_fp32" for name in BUDGETS), "ptb_cells"]))
    parser.add_argument("--minutes", type=float, default=None, help="training budget (default per benchmark)")
    parser.add_argument("overrides", nargs="*", help="extra recipe overrides, e.g. --model.init_args.lr=0.002")
    args, unknown = parser.parse_known_args()
    if args.benchmark == "ptb_cells":
        ptb_cells(args.minutes or 15, args.overrides + unknown)
        return
    minutes = args.minutes or BUDGETS[args.benchmark.removesuffix("_fp32")][3]
    run_budget(args.benchmark, minutes, args.overrides + unknown)


if __name__ == "__main__":
    main()
