"""Translation benchmarks (Multi30k de→en).

    python benchmarks/translation.py multi30k_budget --minutes 15 [recipe overrides...]
    python benchmarks/translation.py multi30k_decode_speed --model benchmarks/runs/multi30k_budget/bundle
    python benchmarks/translation.py multi30k_budget --fp32 --minutes 35        # -> multi30k_budget_fp32
    python benchmarks/translation.py multi30k_decode_speed --name multi30k_decode_speed_fp32 \
        --model benchmarks/runs/multi30k_budget_fp32/bundle
    python benchmarks/translation.py multi30k_average_ensemble --epochs 8 --last 2 3 5
    python benchmarks/translation.py multi30k_distill --teacher benchmarks/runs/multi30k_budget_fp32/bundle \
        --minutes 30

multi30k_budget trains recipes/multi30k_bigru_attention.yaml to a wall-clock budget, then translates the raw
test_2016_flickr.de with the bundle (beam 5) and scores it with sacreBLEU against the raw test_2016_flickr.en.
multi30k_decode_speed times the same 1000 sentences: greedy and beam 5 in batches, and beam 5 one sentence
at a time, in the same run. multi30k_average_ensemble trains the recipe twice (two seeds, a fixed number of
epochs, the last 5 checkpoints kept) and scores at beam 5 each model, the first run's last 2, 3 and 5
checkpoints averaged, and the two models as one ensemble. Each writes benchmarks/results/<name>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import ROOT, fit_recipe, fit_to_budget, record, training_speed

RECIPE = "recipes/multi30k_bigru_attention.yaml"
SPLIT = "test (test_2016_flickr, 1000 sentences, raw cased references)"


def _test_files() -> tuple[Path, Path]:
    from seq2text.data.catalog import resolve_parallel

    return resolve_parallel("multi30k", "de", "en", splits=("test",), allow_hub=False)["test"]


def multi30k_budget(minutes: float, overrides: list[str], fp32: bool = False) -> dict:
    from seq2text.predict.metrics import translation_scores
    from seq2text.predict.translator import Translator

    name = "multi30k_budget" + ("_fp32" if fp32 else "")
    out = ROOT / "benchmarks" / "runs" / name
    overrides = ["--trainer.precision", "32-true", *overrides] if fp32 else overrides
    wall = fit_to_budget(RECIPE, out, minutes, overrides)
    metrics = json.loads((out / "bundle" / "metrics.json").read_text())
    src_path, ref_path = _test_files()
    sources = src_path.read_text(encoding="utf-8").splitlines()
    references = ref_path.read_text(encoding="utf-8").splitlines()
    decode_start = time.monotonic()
    hypotheses = Translator.load(out / "bundle").translate(sources, beam_size=5)
    decode_seconds = time.monotonic() - decode_start
    (out / "test_2016_flickr.hyp.en").write_text("\n".join(hypotheses) + "\n", encoding="utf-8")
    scores = translation_scores(hypotheses, references)
    return record(name, recipe=RECIPE, precision=metrics.get("precision"), metric="test_bleu",
                  value=round(scores["bleu"].score, 2),
                  split=SPLIT, signature=scores["bleu"].signature, bleu_summary=scores["bleu"].text,
                  chrf=round(scores["chrf"].score, 2), ter=round(scores["ter"].score, 2), beam_size=5,
                  test_bleu_during_training=round(metrics.get("test/bleu", float("nan")), 2),
                  val_bleu_greedy=round(metrics.get("val/bleu", float("nan")), 2),
                  train_seconds=round(metrics["train_seconds"], 1), wall_seconds=round(wall, 1),
                  decode_seconds=round(decode_seconds, 1), budget_minutes=minutes, epochs=metrics.get("epochs"),
                  steps=metrics.get("global_step"), **training_speed(out), references=str(ref_path),
                  hypotheses=str((out / "test_2016_flickr.hyp.en").relative_to(ROOT)), overrides=overrides,
                  reproduce=f"seq2text evaluate --model {out.relative_to(ROOT)}/bundle --src {src_path} "
                            f"--ref {ref_path} --beam 5")


KEEP_LAST = "recipes/overlays/keep_last_5.yaml"
QUALITY_SEEDS = (1234, 2)


def _train_quality_runs(epochs: int) -> dict[int, dict]:
    """Trains the recipe for `epochs` epochs (not to a budget: the result must not depend on the machine's load)
    once per seed in QUALITY_SEEDS, keeping the last 5 epochs' checkpoints; a run whose bundle exists is reused."""
    runs = {}
    for seed in QUALITY_SEEDS:
        out = ROOT / "benchmarks" / "runs" / f"multi30k_quality_seed{seed}"
        done = out / "train.json"
        if not done.is_file():
            extra = ["--config", KEEP_LAST, "--seed_everything", str(seed), "--trainer.max_epochs", str(epochs)]
            wall = fit_recipe(RECIPE, out, extra)
            done.write_text(json.dumps({"seed": seed, "epochs": epochs, "wall_seconds": round(wall, 1),
                                        "overrides": extra, **training_speed(out)}, indent=2) + "\n")
        runs[seed] = {"out": out, **json.loads(done.read_text())}
    return runs


def _score_bundle(translator: object, sources: list[str], references: list[str]) -> dict:
    """Test BLEU/chrF at beam 5 and sentences/s of one translator (or ensemble)."""
    from seq2text.predict.metrics import translation_scores

    start = time.perf_counter()
    hypotheses = translator.translate(sources, beam_size=5)
    seconds = time.perf_counter() - start
    scores = translation_scores(hypotheses, references)
    return {"bleu": round(scores["bleu"].score, 2), "chrf": round(scores["chrf"].score, 2),
            "signature": scores["bleu"].signature, "sentences_per_sec": round(len(sources) / seconds, 1)}


def multi30k_average_ensemble(epochs: int, lasts: list[int]) -> dict:
    """Two runs of the recipe (seeds QUALITY_SEEDS, `epochs` epochs each); test BLEU at beam 5 of each single
    model, of the first run's last N checkpoints averaged for each N in `lasts` (`seq2text average`), and of the
    two models as one ensemble (`TranslatorEnsemble`), all in this run."""
    from seq2text.bundles.averaging import average_checkpoints
    from seq2text.predict.translator import Translator, TranslatorEnsemble

    runs = _train_quality_runs(epochs)
    first, second = (runs[seed]["out"] for seed in QUALITY_SEEDS)
    src_path, ref_path = _test_files()
    sources = src_path.read_text(encoding="utf-8").splitlines()
    references = ref_path.read_text(encoding="utf-8").splitlines()
    averaged = {last: average_checkpoints(first / "bundle", [first], first.parent / f"{first.name}_avg{last}",
                                          last=last) for last in lasts}
    models = {f"single_seed{QUALITY_SEEDS[0]}": Translator.load(first / "bundle"),
              f"single_seed{QUALITY_SEEDS[1]}": Translator.load(second / "bundle"),
              **{f"average_last{n}_seed{QUALITY_SEEDS[0]}": Translator.load(path) for n, path in averaged.items()},
              "ensemble_of_the_two_singles": TranslatorEnsemble.load([first / "bundle", second / "bundle"])}
    models[f"single_seed{QUALITY_SEEDS[0]}"].translate(sources[:16], beam_size=5)  # warm-up
    results = {name: _score_bundle(model, sources, references) for name, model in models.items()}
    single = results[f"single_seed{QUALITY_SEEDS[0]}"]["bleu"]
    checkpoints = {last: [c["file"] for c in Translator.load(path).metrics["averaged_checkpoints"]]
                   for last, path in averaged.items()}
    return record("multi30k_average_ensemble", recipe=RECIPE, metric="test_bleu_ensemble",
                  value=results["ensemble_of_the_two_singles"]["bleu"], scores=results,
                  average_gain={last: round(results[f"average_last{last}_seed{QUALITY_SEEDS[0]}"]["bleu"] - single, 2)
                                for last in lasts},
                  ensemble_gain=round(results["ensemble_of_the_two_singles"]["bleu"] - single, 2),
                  averaged_checkpoints=checkpoints, epochs=epochs, seeds=list(QUALITY_SEEDS),
                  training={seed: {k: v for k, v in run.items() if k != "out"} for seed, run in runs.items()},
                  split=SPLIT, beam_size=5, references=str(ref_path),
                  signature=results["ensemble_of_the_two_singles"]["signature"],
                  precision="32-true (predictors decode in float32)",
                  reproduce=f"seq2text average --model {first.relative_to(ROOT)}/bundle --checkpoints "
                            f"{first.relative_to(ROOT)} --last N --output AVG; seq2text evaluate --model "
                            f"{first.relative_to(ROOT)}/bundle {second.relative_to(ROOT)}/bundle --src {src_path} "
                            f"--ref {ref_path} --beam 5")


def translator_precision(model: str) -> str | None:
    """The precision the bundle at `model` was trained with (None for bundles older than the record)."""
    return json.loads((Path(model) / "metrics.json").read_text()).get("precision")


def _timed(translator: object, sources: list[str], beam: int, batch_size: int) -> tuple[list[str], float]:
    start = time.perf_counter()
    hypotheses = translator.translate(sources, beam_size=beam, batch_size=batch_size)
    return hypotheses, time.perf_counter() - start


def multi30k_decode_speed(model: str, batch_size: int, unbatched: int | None, name: str) -> dict:
    from seq2text.predict.metrics import bleu
    from seq2text.predict.translator import Translator

    translator = Translator.load(model)
    src_path, ref_path = _test_files()
    sources = src_path.read_text(encoding="utf-8").splitlines()
    references = ref_path.read_text(encoding="utf-8").splitlines()
    translator.translate(sources[:16], beam_size=5)  # warm-up
    greedy, greedy_s = _timed(translator, sources, 1, batch_size)
    beam, beam_s = _timed(translator, sources, 5, batch_size)
    single_sources = sources[: unbatched or len(sources)]
    single, single_s = _timed(translator, single_sources, 5, 1)
    same = sum(a == b for a, b in zip(single, beam, strict=False)) / len(single)
    beam_speed, single_speed = len(sources) / beam_s, len(single_sources) / single_s
    return record(name, model=model, precision="32-true (predictors decode in float32)",
                  model_trained_in=translator_precision(model), metric="sentences_per_sec_beam5",
                  value=round(beam_speed, 1),
                  split=SPLIT, batch_size=batch_size,
                  greedy_sentences_per_sec=round(len(sources) / greedy_s, 1),
                  beam5_unbatched_sentences_per_sec=round(single_speed, 1), unbatched_sentences=len(single_sources),
                  batched_over_unbatched=round(beam_speed / single_speed, 2),
                  unbatched_outputs_identical=round(same, 4),
                  bleu_greedy=round(bleu(greedy, references).score, 2),
                  bleu_beam5=round(bleu(beam, references).score, 2))


STUDENT = "recipes/multi30k_student.yaml"


def _parameters(translator: object) -> int:
    return sum(p.numel() for p in translator.net.parameters())


def _distilled_targets(teacher: object, out: Path, limit: int | None) -> tuple[Path, float]:
    """The teacher's beam-5 translations of the training sources (written once; reused if present)."""
    from seq2text.data.catalog import resolve_parallel
    from seq2text.text.textio import atomic_write_text, read_lines

    src_path, _ = resolve_parallel("multi30k", "de", "en", splits=("train",), allow_hub=False)["train"]
    target = out / "train.distilled.en"
    done = out / "train.distilled.json"
    if target.is_file() and done.is_file():
        return target, json.loads(done.read_text())["seconds"]
    sources = read_lines(src_path)[:limit]
    start = time.perf_counter()
    hypotheses = teacher.translate(sources, beam_size=5, batch_size=64)
    seconds = time.perf_counter() - start
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, "\n".join(hypotheses) + "\n")
    done.write_text(json.dumps({"seconds": round(seconds, 1), "sentences": len(sources), "source": str(src_path)}))
    return target, seconds


def multi30k_distill(teacher_path: str, minutes: float, overrides: list[str], limit: int | None) -> dict:
    """Sequence-level knowledge distillation: the teacher translates the training sources at beam 5, the student
    recipe trains on those translations to a wall-clock budget; both are scored (BLEU, sentences/s at beam 5,
    batch 64) on the test set in this run."""
    from seq2text.data.catalog import resolve_parallel
    from seq2text.predict.translator import Translator

    out = ROOT / "benchmarks" / "runs" / ("multi30k_distill" + (f"_first{limit}" if limit else ""))
    teacher = Translator.load(teacher_path)
    targets, translate_seconds = _distilled_targets(teacher, out, limit)
    src_path = resolve_parallel("multi30k", "de", "en", splits=("train",), allow_hub=False)["train"][0]
    extra = ["--data.init_args.train_trg", str(targets), *overrides]
    if limit:
        extra = ["--data.init_args.train_src", str(_head(src_path, limit, out)), *extra]
    wall = fit_to_budget(STUDENT, out / "student", minutes, extra)
    student = Translator.load(out / "student" / "bundle")
    test_src, test_ref = _test_files()
    sources, references = (p.read_text(encoding="utf-8").splitlines() for p in (test_src, test_ref))
    student.translate(sources[:16], beam_size=5)  # warm-up
    scored = {"teacher": _score_bundle(teacher, sources, references),
              "student": _score_bundle(student, sources, references)}
    metrics = json.loads((out / "student" / "bundle" / "metrics.json").read_text())
    params = {"teacher": _parameters(teacher), "student": _parameters(student)}
    gap = round(scored["teacher"]["bleu"] - scored["student"]["bleu"], 2)
    name = "multi30k_distill" + (f"_first{limit}" if limit else "")
    return record(name, metric="student_test_bleu", value=scored["student"]["bleu"],
                  teacher_bleu=scored["teacher"]["bleu"], bleu_gap=gap,
                  param_ratio=round(params["student"] / params["teacher"], 3),
                  speed_ratio=round(scored["student"]["sentences_per_sec"] / scored["teacher"]["sentences_per_sec"], 2),
                  parameters=params, scored=scored, teacher=teacher_path, student_recipe=STUDENT,
                  distilled_sentences=len(targets.read_text(encoding="utf-8").splitlines()),
                  teacher_translate_seconds=round(translate_seconds, 1),
                  train_seconds=round(metrics["train_seconds"], 1), wall_seconds=round(wall, 1),
                  budget_minutes=minutes, epochs=metrics.get("epochs"), steps=metrics.get("global_step"),
                  overrides=extra, split=SPLIT, beam_size=5, signature=scored["student"]["signature"],
                  precision=metrics.get("precision"), **training_speed(out / "student"),
                  targets="student ≤ 1/3 of the teacher's parameters, within 1 BLEU, ≥ 2x sentences/s at beam 5")


def _head(path: Path, lines: int, out: Path) -> Path:
    """The first `lines` lines of `path` (a quick run of the benchmark on part of the data)."""
    head = out / f"head{lines}.{path.suffix.lstrip('.')}"
    head.write_text("\n".join(path.read_text(encoding="utf-8").splitlines()[:lines]) + "\n", encoding="utf-8")
    return head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="benchmark", required=True)
    budget = sub.add_parser("multi30k_budget", help="train to a budget, then test BLEU at beam 5")
    budget.add_argument("--minutes", type=float, default=15.0, help="training budget")
    budget.add_argument("--fp32", action="store_true", help="train in fp32 (as a CPU without native bf16 does); "
                        "recorded as multi30k_budget_fp32")
    speed = sub.add_parser("multi30k_decode_speed", help="sentences/s: greedy, beam 5, batched vs one at a time")
    speed.add_argument("--model", default=str(ROOT / "benchmarks" / "runs" / "multi30k_budget" / "bundle"))
    speed.add_argument("--name", default="multi30k_decode_speed",
                       help="record name (multi30k_decode_speed_fp32 for the fp32-trained bundle)")
    speed.add_argument("--batch-size", type=int, default=64, help="sentences per batch for the batched runs")
    speed.add_argument("--unbatched-sentences", type=int, default=None,
                       help="time one-at-a-time beam search on the first N sentences only (default: all 1000)")
    quality = sub.add_parser("multi30k_average_ensemble", help="two seeds trained for --epochs: test BLEU of each, "
                             "of the last checkpoints averaged, and of the two as one ensemble")
    quality.add_argument("--epochs", type=int, default=8)
    quality.add_argument("--last", type=int, nargs="+", default=[2, 3, 5], help="checkpoints averaged (each N)")
    distill = sub.add_parser("multi30k_distill", help="sequence-level distillation of --teacher into the student "
                             "recipe: BLEU, parameters and beam-5 speed of both")
    distill.add_argument("--teacher", default=str(ROOT / "benchmarks" / "runs" / "multi30k_budget_fp32" / "bundle"))
    distill.add_argument("--minutes", type=float, default=30.0, help="the student's training budget")
    distill.add_argument("--limit", type=int, default=None, help="distil only the first N training pairs (a check)")
    args, overrides = parser.parse_known_args()
    sys.path.insert(0, str(ROOT))
    if args.benchmark == "multi30k_average_ensemble":
        if overrides:
            parser.error(f"unknown arguments {overrides}")
        multi30k_average_ensemble(args.epochs, args.last)
    elif args.benchmark == "multi30k_distill":
        multi30k_distill(args.teacher, args.minutes, overrides, args.limit)
    elif args.benchmark == "multi30k_budget":
        multi30k_budget(args.minutes, overrides, args.fp32)
    else:
        if overrides:
            parser.error(f"unknown arguments {overrides}")
        multi30k_decode_speed(args.model, args.batch_size, args.unbatched_sentences, args.name)


if __name__ == "__main__":
    main()
