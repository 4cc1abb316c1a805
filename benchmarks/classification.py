"""Classification benchmarks: train a recipe within a wall-clock budget and record its test accuracy.

    python benchmarks/classification.py sst2_budget --minutes 20
    python benchmarks/classification.py movie_lm --minutes 30    # ULMFiT's LM stage: benchmarks/runs/movie_lm/bundle
    python benchmarks/classification.py movie_lm --minutes 40 --from-bundle benchmarks/runs/movie_lm/bundle \
        --name movie_lm_70                                   # 40 more minutes from that bundle
    python benchmarks/classification.py sst2_finetune --lm-bundle benchmarks/runs/movie_lm/bundle --minutes 20
    python benchmarks/classification.py imdb_budget --minutes 60 [--lm-bundle benchmarks/runs/movie_lm/bundle]

Each benchmark writes benchmarks/results/<name>.json (`value` = accuracy in percent: dev for SST-2, whose targets
are on dev, with the labeled GLUE test set (test_labeled.tsv) as `test_acc`; test for IMDb). Training stops
at the budget or at the recipe's max_epochs, whichever comes first; extra arguments go to `seq2text fit`.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import sys
from pathlib import Path

from common import RESULTS, ROOT, fit_to_budget, record

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
    pretrained = {}
    if lm_bundle:  # ULMFiT: the LM stage's own time and perplexity, reported beside (not inside) the budget
        lm_metrics = json.loads((Path(lm_bundle) / "metrics.json").read_text())
        pretrained = {"lm_train_seconds": _lm_train_seconds(lm_bundle),
                      "lm_test_word_ppl": round(lm_metrics.get("test/ppl", float("nan")), 2)}
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
                  **pretrained, **_throughput(out))


def _lm_train_seconds(bundle: str | Path) -> float:
    """All the training time behind an LM bundle: its own, plus that of the bundle it continued from, as the
    benchmark records in benchmarks/results say (a bundle trained elsewhere counts its own time only)."""
    key = str(Path(bundle).resolve())
    for path in sorted(RESULTS.glob("*.json")):
        entry = json.loads(path.read_text())
        if entry.get("bundle") and str((ROOT / entry["bundle"]).resolve()) == key:
            return entry.get("total_train_seconds", entry["train_seconds"])
    metrics = json.loads((Path(bundle) / "metrics.json").read_text())
    return round(metrics.get("train_seconds", float("nan")), 1)


def movie_lm(minutes: float, extra: list[str], from_bundle: str | None = None, name: str = "movie_lm") -> None:
    """Trains the movie-review LM that `sst2_finetune` and `imdb_budget --lm-bundle` start from (ULMFiT's
    LM stage, timed and recorded separately as `movie_lm`): the IMDb training reviews plus the SST-2 training
    sentences (never a test or dev text), lowercased, with a 16k unigram tokenizer shared by both classifiers.
    With `from_bundle`, training goes on from that LM bundle (same tokenizer and texts) and is recorded as
    `name`, with the time of both stages in `total_train_seconds`."""
    sys.path.insert(0, str(ROOT))
    from seq2text.data.catalog import CATALOG, resolve
    from seq2text.data.classification import normalize_text, read_labeled
    from seq2text.textio import atomic_write_text

    texts = []
    for dataset in ("imdb", "sst2"):
        spec = CATALOG[dataset]
        found, _ = read_labeled(resolve(dataset, splits=("train",))["train"], spec.text_column, spec.label_column)
        texts += [normalize_text(text, lowercase=True) for text in found]
    random.Random(0).shuffle(texts)  # the files are sorted by label
    text_dir = ROOT / "benchmarks" / "runs" / "movie_lm" / "text"
    parts = {"valid": texts[:1000], "test": texts[1000:2000], "train": texts[2000:]}
    for split, lines in parts.items():
        atomic_write_text(text_dir / f"movie.{split}.txt", "\n".join(lines) + "\n")
    files = [f"--data.init_args.{s}_file={text_dir / f'movie.{s}.txt'}" for s in parts]
    out = ROOT / "benchmarks" / "runs" / name
    if from_bundle:
        start = ["--model.init_args.pretrained_lm", from_bundle, "--data.init_args.tokenizer_model",
                 str(Path(from_bundle) / "tokenizer.model")]
    else:
        start = ["--data.init_args.tokenizer_type", "unigram", "--data.init_args.tokenizer_vocab_size", "16000",
                 "--model.init_args.adaptive_cutoffs", "[2000, 8000]"]
    overrides = ["--data.init_args.dataset", "null", *files, *start, *extra]
    wall = fit_to_budget("recipes/ptb_lstm_small.yaml", out, minutes, overrides)
    bundle = out / "bundle"
    metrics = json.loads((bundle / "metrics.json").read_text())
    seconds = round(metrics.get("train_seconds", float("nan")), 1)
    stages = {"from_bundle": from_bundle, "total_train_seconds": round(seconds + _lm_train_seconds(from_bundle), 1)
              } if from_bundle else {}
    record(name, recipe="recipes/ptb_lstm_small.yaml", metric="test_word_ppl",
           value=round(metrics["test/ppl"], 2), split="1,000 held-out training texts (IMDb train + SST-2 train)",
           train_texts=len(parts["train"]), train_seconds=seconds, **stages,
           wall_seconds=round(wall, 1), budget_minutes=minutes, epochs=metrics.get("epochs"),
           steps=metrics.get("global_step"), bundle=str(bundle.relative_to(ROOT)), overrides=overrides)
    print(f"movie LM bundle: {bundle} (python benchmarks/classification.py sst2_finetune --lm-bundle {bundle})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", choices=[*sorted(BENCHMARKS), "movie_lm"])
    parser.add_argument("--minutes", type=float, default=None, help="training budget (default per benchmark)")
    parser.add_argument("--lm-bundle", default=None, help="language-model bundle to fine-tune from (ULMFiT)")
    parser.add_argument("--from-bundle", default=None, help="movie_lm: go on training this LM bundle")
    parser.add_argument("--name", default="movie_lm", help="movie_lm: the record's name (and its runs/ folder)")
    args, extra = parser.parse_known_args()
    if args.benchmark == "movie_lm":
        movie_lm(args.minutes or 30, extra, args.from_bundle, args.name)
        return
    minutes = args.minutes or BENCHMARKS[args.benchmark][2]
    run_classification(args.benchmark, minutes, args.lm_bundle, extra)


if __name__ == "__main__":
    main()
