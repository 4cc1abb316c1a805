"""Benchmarks: train a recipe to a wall-clock budget and record its test metric.

    python benchmarks/run.py ptb_budget --minutes 15
    python benchmarks/run.py wikitext2_budget --minutes 30
    python benchmarks/run.py ptb_budget_fp32 --minutes 15    # the same in fp32 (--trainer.precision 32-true)
    python benchmarks/run.py ptb_char_budget --minutes 15    # character-level, CPU recipe: bpc + a sample
    python benchmarks/run.py ptb_cells --minutes 15      # lstm, lstm_peephole, lstm_layernorm: 15 min each
    python benchmarks/run.py ptb_vs_textbook --fp32      # seq2text's recipe, then pytorch/examples' LSTM, 15 min each
    python benchmarks/run.py wikitext2_vs_textbook --fp32   # the same on WikiText-2, 30 min each
    python benchmarks/lm_throughput.py

Each writes benchmarks/results/<name>.json; `python benchmarks/report.py` rebuilds RESULTS.md from them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

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


def lm_fit_summary(metrics: dict, out: Path, wall: float) -> dict:
    """A budgeted LM fit's figures from its bundle's metrics: perplexities, time, steps, epochs, tokens/s."""
    return {"test_ppl": round(metrics["test/ppl"], 2), "valid_ppl": round(metrics["val/ppl"], 2),
            "train_seconds": round(metrics["train_seconds"], 1), "wall_seconds": round(wall, 1),
            "steps": metrics.get("global_step"), "epochs": metrics.get("epochs"), **training_speed(out)}


# name: (recipe on a CPU with native bf16 or a GPU, recipe for float32, data folder, default minutes, split)
VERSUS = {
    "ptb_vs_textbook": ("recipes/ptb_lstm_small.yaml", "recipes/ptb_lstm_fp32.yaml", "ptb", 15, "test (ptb.test.txt)"),
    "wikitext2_vs_textbook": ("recipes/wikitext2_lstm.yaml", "recipes/wikitext2_lstm_fp32.yaml", "wikitext-2", 30,
                              "test (wiki.test.tokens)"),
}


def versus_textbook(name: str, minutes: float, fp32: bool, extra: list[str]) -> dict:
    """seq2text's recipe and pytorch/examples' word_language_model (benchmarks/textbook_lm.py), one after the other
    in this run, each trained to `minutes` of wall-clock time on the same files and scored on the same test file;
    value = seq2text's test perplexity / the textbook's (lower is better)."""
    recipe_native, recipe_fp32, folder, _, split = VERSUS[name]
    recipe = recipe_fp32 if fp32 else recipe_native
    label = f"{name}_fp32" if fp32 else name
    out = ROOT / "benchmarks" / "runs" / label
    extra = [*FP32, *extra] if fp32 else extra
    wall = fit_to_budget(recipe, out, minutes, extra)
    metrics = json.loads((out / "bundle" / "metrics.json").read_text())
    ours = lm_fit_summary(metrics, out, wall)
    print("seq2text:", ours, flush=True)
    data = Path(os.environ.get("SEQ2TEXT_DATA", ROOT.parent / "shared" / "data")) / folder
    textbook_json = out / "textbook.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "textbook_lm.py"), "--data", str(data), "--minutes",
                    str(minutes), "--out", str(textbook_json)], check=True)
    textbook = json.loads(textbook_json.read_text())
    return record(label, recipe=recipe, metric="test_ppl_ratio_seq2text_over_textbook",
                  value=round(ours["test_ppl"] / textbook["test_ppl"], 3), split=split,
                  seq2text_ppl=ours["test_ppl"], textbook_ppl=textbook["test_ppl"],
                  seq2text_valid_ppl=ours["valid_ppl"], textbook_valid_ppl=textbook["valid_ppl"],
                  seq2text_tokens_per_sec=ours.get("train_tokens_per_sec"),
                  textbook_tokens_per_sec=textbook["train_tokens_per_sec"],
                  seq2text_epochs=ours["epochs"], textbook_epochs=textbook["epochs"], seq2text=ours, textbook=textbook,
                  budget_minutes=minutes, overrides=extra, precision=metrics.get("precision"),
                  precision_reason=metrics.get("precision_reason"), train_seconds=ours["train_seconds"],
                  wall_seconds=round(wall + textbook["wall_seconds"], 1),
                  measure="both trained to the same wall-clock budget (training + validation), one after the other "
                          "in this run; the ratio is the claim, the absolute figures move with the machine's speed")


CELLS = ("lstm", "lstm_peephole", "lstm_layernorm")


def ptb_cells(minutes: float, extra: list[str]) -> dict:
    """PTB test perplexity of each LSTM cell at equal wall time: recipes/ptb_lstm_small.yaml with only
    `rnn_type` changed, each trained to the same budget, one after another in this run."""
    recipe = BUDGETS["ptb_budget"][0]
    per_cell = {}
    for cell in CELLS:
        out = ROOT / "benchmarks" / "runs" / f"ptb_cells_{cell}"
        wall = fit_to_budget(recipe, out, minutes, ["--model.init_args.rnn_type", cell, *extra])
        per_cell[cell] = lm_fit_summary(json.loads((out / "bundle" / "metrics.json").read_text()), out, wall)
        print(cell, per_cell[cell], flush=True)
    best = min(per_cell, key=lambda c: per_cell[c]["test_ppl"])
    return record("ptb_cells", recipe=recipe, metric="test_ppl_best_cell", value=per_cell[best]["test_ppl"],
                  best_cell=best, test_ppl_per_cell={c: v["test_ppl"] for c, v in per_cell.items()},
                  per_cell=per_cell, budget_minutes=minutes, overrides=extra,
                  split="test (ptb.test.txt)", measure="each cell trained to the same wall-clock budget, in turn")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", choices=sorted([*BUDGETS, *(f"{name}_fp32" for name in BUDGETS), "ptb_cells",
                                                     *VERSUS]))
    parser.add_argument("--minutes", type=float, default=None, help="training budget (default per benchmark)")
    parser.add_argument("--fp32", action="store_true", help="*_vs_textbook: train seq2text in float32 with its "
                        "fp32 recipe (as a CPU without native bf16 does); the record is <name>_fp32")
    parser.add_argument("overrides", nargs="*", help="extra recipe overrides, e.g. --model.init_args.optim.lr=0.002")
    args, unknown = parser.parse_known_args()
    if args.benchmark in VERSUS:
        versus_textbook(args.benchmark, args.minutes or VERSUS[args.benchmark][3], args.fp32, args.overrides + unknown)
        return
    if args.benchmark == "ptb_cells":
        ptb_cells(args.minutes or 15, args.overrides + unknown)
        return
    minutes = args.minutes or BUDGETS[args.benchmark.removesuffix("_fp32")][3]
    run_budget(args.benchmark, minutes, args.overrides + unknown)


if __name__ == "__main__":
    main()
