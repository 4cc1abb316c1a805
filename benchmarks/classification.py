"""Classification benchmarks: train a recipe within a wall-clock budget and record its test accuracy.

    python benchmarks/classification.py sst2_budget --minutes 20
    python benchmarks/classification.py sst2_finetune --lm-bundle benchmarks/runs/ptb_budget/bundle --minutes 20
    python benchmarks/classification.py imdb_budget --minutes 30 [--lm-bundle artifacts/imdb_lm]
    python benchmarks/classification.py imdb_lm --minutes 30     # helper: an IMDb LM bundle for imdb ULMFiT

Each benchmark writes benchmarks/results/<name>.json (`value` = accuracy in percent: dev for SST-2, whose targets
are on dev, with the labeled GLUE test set (test_labeled.tsv) as `test_acc`; test for IMDb). Training stops
at the budget or at the recipe's max_epochs, whichever comes first; extra arguments go to `seq2text fit`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

from common import ROOT, fit_to_budget, record

BENCHMARKS = {
    # name: (recipe from scratch, recipe with --lm-bundle, default minutes, test split)
    "sst2_budget": ("recipes/sst2_bilstm.yaml", None, 20, "test (sst2/test_labeled.tsv, 1,821 sentences)"),
    "sst2_finetune": (None, "recipes/sst2_ulmfit.yaml", 20, "test (sst2/test_labeled.tsv, 1,821 sentences)"),
    "imdb_budget": ("recipes/imdb_bilstm.yaml", "recipes/imdb_ulmfit.yaml", 30, "test (imdb/test.csv, 25,000)"),
}


def _throughput(out: Path) -> dict[str, float]:
    """Median training tokens/s and examples/s of the newest run's metrics.csv."""
    logs = sorted(out.glob("**/metrics.csv"), key=lambda p: p.stat().st_mtime)
    if not logs:
        return {}
    with logs[-1].open() as handle:
        rows = list(csv.DictReader(handle))
    result = {}
    for key in ("tokens_per_sec", "examples_per_sec"):
        values = [float(r[f"train/{key}"]) for r in rows if r.get(f"train/{key}")]
        if values:
            result[f"train_{key}"] = round(statistics.median(values), 1)
    return result


def run_classification(name: str, minutes: float, lm_bundle: str | None, extra: list[str]) -> dict:
    scratch, finetune, _, split = BENCHMARKS[name]
    recipe = finetune if lm_bundle else scratch
    if recipe is None:
        raise SystemExit(f"{name} needs --lm-bundle DIR (a language-model bundle, e.g. from "
                         "`python benchmarks/run.py ptb_budget`)")
    if lm_bundle:
        extra = ["--model.init_args.pretrained_lm", lm_bundle, "--data.init_args.tokenizer_model",
                 str(Path(lm_bundle) / "tokenizer.model"), *extra]
    out = ROOT / "benchmarks" / "runs" / name
    wall = fit_to_budget(recipe, out, minutes, extra)
    metrics = json.loads((out / "bundle" / "metrics.json").read_text())
    # SST-2's targets are on dev accuracy (test accuracy reported beside it); IMDb's on test accuracy
    on_dev = name.startswith("sst2")
    metric, value = ("dev_acc", metrics.get("val/acc", float("nan"))) if on_dev else ("test_acc", metrics["test/acc"])
    split = f"dev (sst2/dev.tsv, 872); {split}" if on_dev else split
    return record(name, recipe=recipe, metric=metric, value=round(100 * value, 2), split=split,
                  test_acc=round(100 * metrics["test/acc"], 2), test_f1=round(100 * metrics["test/f1"], 2),
                  dev_acc=round(100 * metrics.get("val/acc", float("nan")), 2),
                  train_seconds=round(metrics.get("train_seconds", float("nan")), 1), wall_seconds=round(wall, 1),
                  budget_minutes=minutes, epochs=metrics.get("epochs"), steps=metrics.get("global_step"),
                  test_examples=metrics.get("test/examples"), lm_bundle=lm_bundle, overrides=extra,
                  confusion={k.split("/", 2)[2]: v for k, v in metrics.items() if k.startswith("test/confusion/")},
                  **_throughput(out))


def imdb_lm(minutes: float, output: str, extra: list[str]) -> None:
    """Trains an LM on the IMDb training reviews (unigram pieces) for `recipes/imdb_ulmfit.yaml`."""
    sys.path.insert(0, str(ROOT))
    from seq2text.data.catalog import CATALOG, resolve
    from seq2text.data.classification import read_labeled
    from seq2text.textio import atomic_write_text

    spec = CATALOG["imdb"]
    texts, _ = read_labeled(resolve("imdb", splits=("train",))["train"], spec.text_column, spec.label_column)
    text_dir = ROOT / "benchmarks" / "runs" / "imdb_lm" / "text"
    random.Random(0).shuffle(texts)  # train.csv is sorted by label
    parts = {"valid": texts[:500], "test": texts[500:1000], "train": texts[1000:]}
    for split, lines in parts.items():
        atomic_write_text(text_dir / f"imdb.{split}.txt", "\n".join(lines) + "\n")
    files = [f"--data.init_args.{s}_file={text_dir / f'imdb.{s}.txt'}" for s in parts]
    out = ROOT / "benchmarks" / "runs" / "imdb_lm"
    command = [sys.executable, "-m", "seq2text.cli", "fit", "--config", "recipes/ptb_lstm_small.yaml",
               "--data.init_args.dataset", "null", *files, "--data.init_args.tokenizer_type", "unigram",
               "--data.init_args.tokenizer_vocab_size", "16000", "--model.init_args.adaptive_cutoffs", "[2000, 8000]",
               "--budget", f"{minutes}m", "--bundle", output, "--trainer.enable_progress_bar", "false",
               "--trainer.logger.init_args.save_dir", str(out), *extra]
    subprocess.run(command, cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    print(f"IMDb LM bundle: {output} (use: python benchmarks/classification.py imdb_budget --lm-bundle {output})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", choices=[*sorted(BENCHMARKS), "imdb_lm"])
    parser.add_argument("--minutes", type=float, default=None, help="training budget (default per benchmark)")
    parser.add_argument("--lm-bundle", default=None, help="language-model bundle to fine-tune from (ULMFiT)")
    parser.add_argument("--output", default="artifacts/imdb_lm", help="imdb_lm: where to write the LM bundle")
    args, extra = parser.parse_known_args()
    if args.benchmark == "imdb_lm":
        imdb_lm(args.minutes or 30, args.output, extra)
        return
    minutes = args.minutes or BENCHMARKS[args.benchmark][2]
    run_classification(args.benchmark, minutes, args.lm_bundle, extra)


if __name__ == "__main__":
    main()
