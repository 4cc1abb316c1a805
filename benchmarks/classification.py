"""Classification benchmarks: train a recipe within a wall-clock budget and record its test accuracy.

    python benchmarks/classification.py sst2_budget --minutes 20
    python benchmarks/classification.py movie_lm --minutes 30    # ULMFiT's LM stage: benchmarks/runs/movie_lm/bundle
    python benchmarks/classification.py movie_lm --minutes 40 --from-bundle benchmarks/runs/movie_lm/bundle \
        --name movie_lm_70 --model.init_args.optim.lr 0.002        # 40 more minutes from that bundle
    python benchmarks/classification.py movie_lm --minutes 35 --name movie_lm_bwd --data.init_args.backward true
    python benchmarks/classification.py movie_lm --minutes 35 --from-bundle benchmarks/runs/movie_lm_bwd/bundle \
        --name movie_lm_bwd_70 --model.init_args.optim.lr 0.002 --data.init_args.backward true
    python benchmarks/classification.py sst2_finetune --lm-bundle benchmarks/runs/movie_lm_70/bundle --minutes 20
    python benchmarks/classification.py sst2_finetune --ensemble 2 --minutes 20 \
        --lm-bundle benchmarks/runs/movie_lm_70/bundle benchmarks/runs/movie_lm_bwd_70/bundle   # forward + backward
    python benchmarks/classification.py imdb_budget --minutes 60 [--lm-bundle benchmarks/runs/movie_lm/bundle]
    python benchmarks/classification.py sst2_budget --vectors --minutes 20   # + in-domain word vectors, in budget
    python benchmarks/classification.py imdb_rating --minutes 10   # text regression: review -> its 1-10 rating
    python benchmarks/classification.py sst2_distill --minutes 20  # forward + backward ensemble -> one model

Each benchmark writes benchmarks/results/<name>.json (`value` = accuracy in percent: dev for SST-2, whose targets
are on dev, with the labeled GLUE test set (test_labeled.tsv) as `test_acc`; test for IMDb). Training stops
at the budget or at the recipe's max_epochs, whichever comes first; extra arguments go to `seq2text fit`.
With `--ensemble K`, K models (seeds 1234, 1235, ...) share the budget and their ensemble is recorded as
<name>_ensemble.json, with each member's accuracy. With `--vectors` (a from-scratch recipe), word vectors are
first trained on the unlabeled IMDb + SST-2 training text (`seq2text.text.vectors`: PPMI + SVD; no pretrained
weights, no test or dev text) inside the budget; the classifier (recipes/sst2_bilstm_vectors.yaml) takes the
rest of it and starts its embedding from them; the run is recorded as <name>_vectors, with the vectors' time.
`imdb_rating` trains recipes/imdb_rating.yaml (a text regressor: ordinal probabilities over the training ratings,
their median the prediction) and, with the same budget, the sentiment classifier of recipes/imdb_bilstm.yaml; on the
25,000 test reviews it records the regressor's MAE and RMSE (`value` = MAE) against predicting the training mean and
against the classifier's expected rating, P(pos) × the mean positive training rating + P(neg) × the mean negative
one; the same on the 1,250 training reviews both recipes hold out for validation (`dev_*`, where recipes are
compared).
`sst2_distill` trains recipes/sst2_bilstm.yaml twice (forward, seed 1234; backward, seed 1235), writes their
ensemble's class probabilities of every SST-2 training sentence (`data.train_soft_targets`, as `seq2text classify
--proba` prints them), and trains a student, the same forward recipe with seed 1234, on them
(`model.fine_tuning.soft_target_weight` 0.7, the rest on the gold labels): dev (`value`) and test accuracy of the
student against the ensemble's and each teacher's, all in one run.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from common import RESULTS, ROOT, fit_to_budget, record

BENCHMARKS = {
    # name: (recipe from scratch, recipe with --lm-bundle, default minutes, test split)
    "sst2_budget": ("recipes/sst2_bilstm.yaml", None, 20, "test (sst2/test_labeled.tsv, 1,821 sentences)"),
    "sst2_finetune": (None, "recipes/sst2_ulmfit.yaml", 20, "test (sst2/test_labeled.tsv, 1,821 sentences)"),
    "imdb_budget": ("recipes/imdb_bilstm.yaml", "recipes/imdb_ulmfit.yaml", 30, "test (imdb/test.csv, 25,000)"),
}
DATASETS = {"sst2_budget": "sst2", "sst2_finetune": "sst2", "imdb_budget": "imdb"}
VECTOR_RECIPES = {"sst2_budget": "recipes/sst2_bilstm_vectors.yaml"}  # --vectors: the recipe with word_vectors


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


def _ensemble_scores(bundles: list[Path], dataset: str) -> dict[str, dict]:
    """Accuracy/macro-F1/confusion of the members' mean probabilities on the dataset's dev and test files."""
    from seq2text.data.catalog import CATALOG, resolve
    from seq2text.predict.classifier import ClassifierEnsemble
    from seq2text.text.reading import read_labeled

    ensemble = ClassifierEnsemble.load(bundles)
    spec, scores = CATALOG[dataset], {}
    for split, path in resolve(dataset, splits=[s for s in ("valid", "test") if s in CATALOG[dataset].files]).items():
        texts, gold = read_labeled(path, spec.text_column, spec.label_column)
        scores[split] = ensemble.evaluate(texts, gold)
    return scores


def run_ensemble(name: str, minutes: float, lm_bundles: list[str], extra: list[str], members: int,
                 out: Path | None = None, save: bool = True, recipe: str | None = None) -> dict:
    """Trains `members` models with seeds 1234, 1235, ..., each within minutes / members (so all of them
    together stay within the budget), and records the accuracy of their ensemble (mean probabilities) as
    `<name>_ensemble`. Member i starts from LM bundle i modulo their number (ULMFiT: a forward and a backward
    LM), if any."""
    out, wall, runs = out or ROOT / "benchmarks" / "runs" / name, 0.0, []
    for number in range(members):
        seed = ["--seed_everything", str(1234 + number)]
        lm_bundle = lm_bundles[number % len(lm_bundles)] if lm_bundles else None
        start = time.monotonic()
        entry = run_classification(name, minutes / members, lm_bundle, [*extra, *seed], out / f"member{number}",
                                   save=False, recipe=recipe)
        wall += time.monotonic() - start
        runs.append(entry)
    start = time.monotonic()
    scores = _ensemble_scores([out / f"member{n}" / "bundle" for n in range(members)], DATASETS[name])
    wall += time.monotonic() - start
    first, on_dev = runs[0], name.startswith("sst2")
    value = scores["valid" if on_dev else "test"]["acc"]
    fields = dict(recipe=first["recipe"], metric=first["metric"], value=round(100 * value, 2),
                  split=first["split"], ensemble=members, test_acc=round(100 * scores["test"]["acc"], 2),
                  test_f1=round(100 * scores["test"]["f1"], 2),
                  dev_acc=round(100 * scores["valid"]["acc"], 2) if "valid" in scores else None,
                  member_dev_acc=[r["dev_acc"] for r in runs], member_test_acc=[r["test_acc"] for r in runs],
                  train_seconds=round(sum(r["train_seconds"] for r in runs), 1), wall_seconds=round(wall, 1),
                  budget_minutes=minutes, epochs=[r["epochs"] for r in runs], steps=sum(r["steps"] for r in runs),
                  test_examples=scores["test"]["examples"], lm_bundle=lm_bundles or None, overrides=extra,
                  confusion=scores["test"]["confusion"],
                  lm_train_seconds=[r["lm_train_seconds"] for r in runs[:len(lm_bundles)]] or None,
                  lm_test_word_ppl=[r["lm_test_word_ppl"] for r in runs[:len(lm_bundles)]] or None,
                  **{k: v for k, v in first.items() if k.startswith(("train_tokens", "train_examples"))})
    return record(f"{name}_ensemble", **fields) if save else fields


def _review_texts() -> list[str]:
    """The unlabeled text of the IMDb and SST-2 training files (never a dev or test text), IMDb first."""
    from seq2text.data.catalog import CATALOG, resolve
    from seq2text.text.reading import read_labeled

    texts = []
    for dataset in ("imdb", "sst2"):
        spec = CATALOG[dataset]
        texts += read_labeled(resolve(dataset, splits=("train",))["train"], spec.text_column, spec.label_column)[0]
    return texts


def build_vectors(out: Path, dim: int = 300) -> tuple[list[str], float]:
    """Trains word vectors on the IMDb and SST-2 training texts (split as SST is: `ptb_words`), writes them to
    `out`/vectors.txt; returns the `seq2text fit` override that uses them, and the seconds taken."""
    from seq2text.text.vectors import ptb_words, train_word_vectors, write_word_vectors

    start = time.monotonic()
    words, vectors = train_word_vectors([ptb_words(text) for text in _review_texts()], dim=dim)
    write_word_vectors(out / "vectors.txt", words, vectors)
    return ["--model.init_args.word_vectors", str(out / "vectors.txt")], round(time.monotonic() - start, 1)


def run_with_vectors(name: str, minutes: float, extra: list[str], members: int) -> dict:
    """`--vectors`: word vectors first, inside the budget; then the classifier (or ensemble) in what is left."""
    if name not in VECTOR_RECIPES:
        raise SystemExit(f"--vectors has no recipe for {name}; it is for {', '.join(VECTOR_RECIPES)}")
    out, recipe = ROOT / "benchmarks" / "runs" / f"{name}_vectors", VECTOR_RECIPES[name]
    overrides, seconds = build_vectors(out)
    rest = minutes - seconds / 60
    fields = {"vectors_seconds": seconds, "budget_minutes": minutes, "vectors": str(out.relative_to(ROOT))}
    if members > 1:
        entry = run_ensemble(name, rest, [], [*overrides, *extra], members, out=out, save=False, recipe=recipe)
    else:
        entry = run_classification(name, rest, None, [*overrides, *extra], out, save=False, recipe=recipe)
    entry.update(fields, total_seconds=round(entry["train_seconds"] + seconds, 1))
    return record(f"{name}_vectors" + ("_ensemble" if members > 1 else ""), **entry)


def run_classification(name: str, minutes: float, lm_bundle: str | None, extra: list[str], out: Path | None = None,
                       save: bool = True, recipe: str | None = None) -> dict:
    scratch, finetune, _, split = BENCHMARKS[name]
    recipe = recipe or (finetune if lm_bundle else scratch)
    if recipe is None:
        raise SystemExit(f"{name} needs --lm-bundle DIR (a language-model bundle, e.g. from "
                         "`python benchmarks/run.py ptb_budget`)")
    if lm_bundle:
        backward = json.loads((Path(lm_bundle) / "config.json").read_text()).get("data", {}).get("backward", False)
        extra = ["--model.init_args.pretrained_lm", lm_bundle, "--data.init_args.tokenizer_model",
                 str(Path(lm_bundle) / "tokenizer.model"), *(["--data.init_args.backward", "true"] if backward else []),
                 *extra]
    out = out or ROOT / "benchmarks" / "runs" / name
    wall = fit_to_budget(recipe, out, minutes, extra)
    metrics = json.loads((out / "bundle" / "metrics.json").read_text())
    pretrained = {}
    if lm_bundle:  # ULMFiT: the LM stage's own time and perplexity, reported beside (not inside) the budget
        lm_metrics = json.loads((Path(lm_bundle) / "metrics.json").read_text())
        pretrained = {"lm_train_seconds": _lm_train_seconds(lm_bundle, lm_metrics),
                      "lm_test_word_ppl": round(lm_metrics.get("test/ppl", float("nan")), 2)}
    # SST-2's targets are on dev accuracy (test accuracy reported beside it); IMDb's on test accuracy
    on_dev = name.startswith("sst2")
    metric, value = ("dev_acc", metrics.get("val/acc", float("nan"))) if on_dev else ("test_acc", metrics["test/acc"])
    split = f"dev (sst2/dev.tsv, 872); {split}" if on_dev else split
    fields = dict(recipe=recipe, metric=metric, value=round(100 * value, 2), split=split,
                  test_acc=round(100 * metrics["test/acc"], 2), test_f1=round(100 * metrics["test/f1"], 2),
                  dev_acc=round(100 * metrics.get("val/acc", float("nan")), 2),
                  train_seconds=round(metrics.get("train_seconds", float("nan")), 1), wall_seconds=round(wall, 1),
                  budget_minutes=minutes, epochs=metrics.get("epochs"), steps=metrics.get("global_step"),
                  precision=metrics.get("precision"), test_examples=metrics.get("test/examples"), lm_bundle=lm_bundle,
                  overrides=extra,
                  confusion={k.split("/", 2)[2]: v for k, v in metrics.items() if k.startswith("test/confusion/")},
                  **pretrained, **_throughput(out))
    return record(name, **fields) if save else fields


def _lm_train_seconds(bundle: str | Path, metrics: dict | None = None) -> float:
    """All the training time behind an LM bundle: its own, plus that of the bundle it continued from, as the
    benchmark records in benchmarks/results say (a bundle trained elsewhere counts its own time only, from its
    metrics.json, or `metrics` when already read)."""
    key = str(Path(bundle).resolve())
    for path in sorted(RESULTS.glob("*.json")):
        entry = json.loads(path.read_text())
        if entry.get("bundle") and str((ROOT / entry["bundle"]).resolve()) == key:
            return entry.get("total_train_seconds", entry["train_seconds"])
    metrics = metrics or json.loads((Path(bundle) / "metrics.json").read_text())
    return round(metrics.get("train_seconds", float("nan")), 1)


def movie_lm(minutes: float, extra: list[str], from_bundle: str | None = None, name: str = "movie_lm") -> None:
    """Trains the movie-review LM that `sst2_finetune` and `imdb_budget --lm-bundle` start from (ULMFiT's
    LM stage, timed and recorded separately as `movie_lm`): the IMDb training reviews plus the SST-2 training
    sentences (never a test or dev text), lowercased, with a 16k unigram tokenizer shared by both classifiers.
    With `from_bundle`, training goes on from that LM bundle (same tokenizer and texts) and is recorded as
    `name`, with the time of both stages in `total_train_seconds`."""
    sys.path.insert(0, str(ROOT))
    from seq2text.text.reading import normalize_text
    from seq2text.text.textio import atomic_write_text

    texts = [normalize_text(text, lowercase=True) for text in _review_texts()]
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
           steps=metrics.get("global_step"), bundle=str(bundle.relative_to(ROOT)), overrides=overrides,
           precision=metrics.get("precision"))
    print(f"movie LM bundle: {bundle} (python benchmarks/classification.py sst2_finetune --lm-bundle {bundle})")


def _held_out_rows(count: int, fraction: float = 0.05, seed: int = 1) -> list[int]:
    """The training rows a data module with `valid_fraction` and `seed` (both recipes': 0.05, 1) holds out for
    validation, as `ClassificationDataModule._hold_out` draws them."""
    return sorted(np.random.default_rng(seed).permutation(count)[:max(1, round(count * fraction))].tolist())


def _rating_errors(predictions: dict[str, np.ndarray], gold: np.ndarray) -> dict[str, dict[str, float]]:
    """MAE and RMSE of each named prediction, (N,), against `gold`, (N,)."""
    return {name: {"mae": round(float(np.abs(pred - gold).mean()), 4),
                   "rmse": round(float(np.sqrt(np.square(pred - gold).mean())), 4)}
            for name, pred in predictions.items()}


def imdb_rating(minutes: float, extra: list[str]) -> dict:
    """The text-regression benchmark of issue 14 (see the module docstring)."""
    import seq2text
    from seq2text.data.catalog import resolve
    from seq2text.text.reading import read_labeled

    files = resolve("imdb", splits=("train", "test"), allow_hub=False)
    train_texts, train_ratings = read_labeled(files["train"], "text", "rating")
    _, train_labels = read_labeled(files["train"], "text", "label")
    test_texts, test_ratings = read_labeled(files["test"], "text", "rating")
    train_y, test_y = np.asarray(train_ratings, dtype=float), np.asarray(test_ratings, dtype=float)
    positive = np.asarray(train_labels) == "1"  # the baselines' means: over the whole training file, as before
    held = _held_out_rows(len(train_texts))
    dev_texts, dev_y = [train_texts[i] for i in held], train_y[held]
    runs = ROOT / "benchmarks" / "runs"
    wall = {"regressor": fit_to_budget("recipes/imdb_rating.yaml", runs / "imdb_rating", minutes, extra),
            "classifier": fit_to_budget("recipes/imdb_bilstm.yaml", runs / "imdb_rating_classifier", minutes, extra)}
    metrics = json.loads((runs / "imdb_rating" / "bundle" / "metrics.json").read_text())
    regressor = seq2text.load(runs / "imdb_rating" / "bundle")
    classifier = seq2text.load(runs / "imdb_rating_classifier" / "bundle")
    errors = {}
    for split, texts, gold in (("test", test_texts, test_y), ("dev", dev_texts, dev_y)):
        p_pos = classifier.probabilities(texts)[:, classifier.labels.index("1")].numpy()
        expected = p_pos * train_y[positive].mean() + (1 - p_pos) * train_y[~positive].mean()
        predictions = {"train_mean": np.full_like(gold, train_y.mean()), "classifier_expected": expected}
        if split == "dev":
            predictions["regressor"] = np.asarray(regressor.predict(texts))
        errors[split] = _rating_errors(predictions, gold)
    dev = errors["dev"]
    errors = errors["test"]
    classifier_metrics = json.loads((runs / "imdb_rating_classifier" / "bundle" / "metrics.json").read_text())
    return record("imdb_rating", recipe="recipes/imdb_rating.yaml", metric="test_mae",
                  value=round(metrics["test/mae"], 4),
                  split="test (imdb/test.csv, 25,000 reviews, column rating)", test_rmse=round(metrics["test/rmse"], 4),
                  mae_train_mean=errors["train_mean"]["mae"], rmse_train_mean=errors["train_mean"]["rmse"],
                  mae_classifier_expected=errors["classifier_expected"]["mae"],
                  rmse_classifier_expected=errors["classifier_expected"]["rmse"],
                  classifier_test_acc=round(100 * classifier_metrics["test/acc"], 2),
                  dev_mae=dev["regressor"]["mae"], dev_mae_classifier_expected=dev["classifier_expected"]["mae"],
                  dev_mae_train_mean=dev["train_mean"]["mae"],
                  dev_split="the 1,250 training reviews both recipes hold out for validation",
                  objective=json.loads((runs / "imdb_rating" / "bundle" / "config.json").read_text())["regression"],
                  train_mean=round(float(train_y.mean()), 4), budget_minutes=minutes,
                  train_seconds=round(metrics.get("train_seconds", float("nan")), 1),
                  classifier_train_seconds=round(classifier_metrics.get("train_seconds", float("nan")), 1),
                  wall_seconds={k: round(v, 1) for k, v in wall.items()}, epochs=metrics.get("epochs"),
                  precision=metrics.get("precision"), overrides=extra)


def sst2_distill(minutes: float, extra: list[str], weight: float = 0.7) -> dict:
    """Knowledge distillation of the forward + backward SST-2 ensemble into one forward model (see the docstring)."""
    from seq2text.data.catalog import CATALOG, resolve
    from seq2text.predict.classifier import ClassifierEnsemble
    from seq2text.text.reading import read_labeled

    out = ROOT / "benchmarks" / "runs" / "sst2_distill"
    teachers = [run_classification("sst2_budget", minutes, None, [*extra, *direction, "--seed_everything", seed],
                                   out / f"teacher{n}", save=False)
                for n, (direction, seed) in enumerate((([], "1234"), (["--data.init_args.backward", "true"], "1235")))]
    bundles = [out / f"teacher{n}" / "bundle" for n in range(len(teachers))]
    spec = CATALOG["sst2"]
    texts, _ = read_labeled(resolve("sst2", splits=["train"])["train"], spec.text_column, spec.label_column)
    start = time.monotonic()
    soft = out / "train.soft.jsonl"
    soft.write_text("".join(json.dumps(row) + "\n" for row in ClassifierEnsemble.load(bundles).predict_proba(texts)))
    soft_seconds = time.monotonic() - start
    ensemble = _ensemble_scores(bundles, "sst2")
    student = run_classification("sst2_budget", minutes, None, [
        *extra, "--data.init_args.train_soft_targets", str(soft),
        "--model.init_args.fine_tuning.soft_target_weight", str(weight), "--seed_everything", "1234"],
        out / "student", save=False)
    dev, test = round(100 * ensemble["valid"]["acc"], 2), round(100 * ensemble["test"]["acc"], 2)
    return record("sst2_distill", recipe=student["recipe"], metric="dev_acc", value=student["dev_acc"],
                  split=student["split"], test_acc=student["test_acc"], ensemble_dev_acc=dev, ensemble_test_acc=test,
                  dev_gap_to_ensemble=round(dev - student["dev_acc"], 2),
                  test_gap_to_ensemble=round(test - student["test_acc"], 2),
                  teacher_dev_acc=[t["dev_acc"] for t in teachers], teacher_test_acc=[t["test_acc"] for t in teachers],
                  teachers="forward (seed 1234) + backward (seed 1235), the mean of their probabilities",
                  student="forward, seed 1234 (teacher 0's recipe and seed): only the targets differ",
                  soft_target_weight=weight, soft_targets=len(texts), soft_targets_seconds=round(soft_seconds, 1),
                  train_seconds=round(sum(r["train_seconds"] for r in [*teachers, student]), 1),
                  student_train_seconds=student["train_seconds"], budget_minutes=minutes, overrides=extra,
                  precision=student["precision"], epochs=student["epochs"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", choices=[*sorted(BENCHMARKS), "movie_lm", "imdb_rating", "sst2_distill"])
    parser.add_argument("--minutes", type=float, default=None, help="training budget (default per benchmark)")
    parser.add_argument("--lm-bundle", nargs="+", default=[],
                        help="language-model bundle to fine-tune from (ULMFiT); with --ensemble, several bundles "
                             "(e.g. a forward and a backward LM) are taken in turn")
    parser.add_argument("--from-bundle", default=None, help="movie_lm: go on training this LM bundle")
    parser.add_argument("--ensemble", type=int, default=1,
                        help="train this many models (seeds 1234, 1235, ...) within the budget; score their ensemble")
    parser.add_argument("--name", default="movie_lm", help="movie_lm: the record's name (and its runs/ folder)")
    parser.add_argument("--vectors", action="store_true",
                        help="from scratch: train word vectors on the IMDb + SST-2 training text within the budget")
    args, extra = parser.parse_known_args()
    if args.benchmark == "movie_lm":
        movie_lm(args.minutes or 30, extra, args.from_bundle, args.name)
        return
    if args.benchmark == "imdb_rating":
        imdb_rating(args.minutes or 10, extra)
        return
    if args.benchmark == "sst2_distill":
        sst2_distill(args.minutes or 20, extra)
        return
    minutes = args.minutes or BENCHMARKS[args.benchmark][2]
    if args.vectors:
        if args.lm_bundle:
            raise SystemExit("--vectors is for the from-scratch recipes; leave out --lm-bundle")
        run_with_vectors(args.benchmark, minutes, extra, args.ensemble)
    elif args.ensemble > 1:
        run_ensemble(args.benchmark, minutes, args.lm_bundle, extra, args.ensemble)
    elif len(args.lm_bundle) > 1:
        raise SystemExit("several --lm-bundle need --ensemble (one member per bundle at least)")
    else:
        run_classification(args.benchmark, minutes, args.lm_bundle[0] if args.lm_bundle else None, extra)


if __name__ == "__main__":
    main()
