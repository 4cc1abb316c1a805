"""GPU check: each task's recipe for a fixed number of steps, bf16 on CUDA; tokens/s and peak memory to JSON.

    bash benchmarks/gpu_check.sh                 # on a GPU machine (installs what is missing, then runs this)
    python benchmarks/gpu_check.py --smoke       # the same code path on a CPU, tiny and quick (tested in CI)

Data: the real files under $SEQ2TEXT_DATA (or ../shared/data) when present; otherwise synthetic files with the
standard names, written to a temporary folder (the JSON says which). Throughput does not depend on the words.
Writes benchmarks/results/gpu_check.json (with --smoke: gpu_check_smoke.json under the output folder).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import random
import tempfile
import time
from pathlib import Path

from common import RESULTS, ROOT, record

# name: (recipe, data folder under SEQ2TEXT_DATA, the file that must exist there)
RECIPES = {
    "language_modeling": ("recipes/ptb_awd_lstm.yaml", "ptb", "ptb.train.txt"),
    "classification": ("recipes/imdb_bilstm.yaml", "imdb", "train.csv"),
    "translation": ("recipes/multi30k_bigru_attention.yaml", "multi30k", "train.de"),
}
SMOKE = {  # tiny sizes so that --smoke runs on a CPU in seconds
    "language_modeling": ["--model.init_args.emb_size", "16", "--model.init_args.hidden_size", "16",
                          "--data.init_args.batch_size", "4", "--data.init_args.bptt", "8"],
    "classification": ["--model.init_args.network.emb_size", "16", "--model.init_args.network.hidden_size", "16",
                       "--data.init_args.tokenizer_vocab_size", "40", "--data.init_args.max_tokens", "400"],
    "translation": ["--model.init_args.network.emb_size", "16", "--model.init_args.network.hidden_size", "16",
                    "--data.init_args.tokenizer_vocab_size", "60", "--data.init_args.max_tokens", "300"],
}
WORDS = ("the", "a", "film", "movie", "great", "bad", "good", "actor", "plot", "story", "dog", "cat", "runs", "sees",
         "on", "in", "red", "blue")


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 20)))


def synthetic_data(root: Path, lines: int) -> None:
    """Standard-named files with random sentences (used only when the real data is not on this machine)."""
    rng = random.Random(0)
    (root / "ptb").mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (root / "ptb" / f"ptb.{split}.txt").write_text("\n".join(_sentence(rng) for _ in range(lines)) + "\n")
    (root / "imdb").mkdir()
    for split in ("train", "test"):
        rows = [f"{i},{rng.randint(1, 10)},{i % 2},{' '.join(_sentence(rng) for _ in range(10))}" for i in range(lines)]
        (root / "imdb" / f"{split}.csv").write_text("id,rating,label,text\n" + "\n".join(rows) + "\n")
    (root / "multi30k").mkdir()
    for prefix in ("train", "val", "test_2016_flickr"):
        pairs = [_sentence(rng) for _ in range(lines)]
        (root / "multi30k" / f"{prefix}.de").write_text("\n".join(pairs) + "\n")
        (root / "multi30k" / f"{prefix}.en").write_text("\n".join(p.upper() for p in pairs) + "\n")


def data_root(work: Path, smoke: bool) -> tuple[Path, str]:
    """The real data root if every task's files are there (never in --smoke), else a synthetic one."""
    real = Path(os.environ.get("SEQ2TEXT_DATA", ROOT.parent / "shared" / "data"))
    if not smoke and all((real / folder / name).is_file() for _, folder, name in RECIPES.values()):
        return real, f"real ({real})"
    synthetic_data(work / "data", 300 if smoke else 20000)
    return work / "data", "synthetic (real data not found)" if not smoke else "synthetic (smoke)"


def run_task(task: str, root: Path, work: Path, steps: int, accelerator: str, precision: str,
             smoke: bool) -> dict:
    recipe, folder, _ = RECIPES[task]
    stats = work / f"{task}.json"
    callbacks = {"trainer": {"callbacks": [{"class_path": "seq2text.tasks.callbacks.ThroughputStats",
                                            "init_args": {"output": str(stats), "warmup": 2 if smoke else 10}}]}}
    extra = work / f"{task}.callbacks.json"
    extra.write_text(json.dumps(callbacks))
    command = ["fit", "--config", str(ROOT / recipe), "--config", str(extra),
               "--data.init_args.root", str(root / folder), "--trainer.max_steps", str(steps),
               "--trainer.max_epochs", "-1", "--trainer.limit_val_batches", "0", "--trainer.num_sanity_val_steps", "0",
               "--trainer.accelerator", accelerator, "--trainer.devices", "1", "--trainer.precision", precision,
               "--trainer.enable_progress_bar", "false", "--trainer.enable_checkpointing", "false",
               "--trainer.logger.init_args.save_dir", str(work / "runs"), "--test_after_fit", "false",
               "--bundle", str(work / f"{task}_bundle"), *(SMOKE[task] if smoke else [])]
    from seq2text.cli import main as seq2text_main  # in this process: one import of torch and Lightning for all

    start, errors = time.monotonic(), io.StringIO()
    with contextlib.redirect_stderr(errors):
        code = seq2text_main(command)
    wall = time.monotonic() - start
    gc.collect()  # the task's network and optimizer go before the next task measures its peak memory
    if code != 0 or not stats.is_file():
        return {"recipe": recipe, "ok": False, "wall_seconds": round(wall, 1), "error": errors.getvalue()[-2000:]}
    found = json.loads(stats.read_text())
    return {"recipe": recipe, "ok": True, "wall_seconds": round(wall, 1), **found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps per task")
    parser.add_argument("--precision", default="auto", help="auto: bf16-mixed on GPUs with bf16, else 16-mixed")
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny models, a few steps (checks the script)")
    parser.add_argument("--output", default=None, help="folder of the JSON (default benchmarks/results)")
    args = parser.parse_args()
    accelerator = "cpu" if args.smoke else "gpu"
    steps = 6 if args.smoke else args.steps
    if not args.smoke:
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("gpu_check: no CUDA device here (torch.cuda.is_available() is False); "
                             "use --smoke to check the script on a CPU")
    with tempfile.TemporaryDirectory(prefix="seq2text_gpu_check_") as tmp:
        work = Path(tmp)
        root, data = data_root(work, args.smoke)
        tasks = {task: run_task(task, root, work, steps, accelerator, args.precision, args.smoke) for task in RECIPES}
    name = "gpu_check_smoke" if args.smoke else "gpu_check"
    record(name, Path(args.output) if args.output else RESULTS, metric="tokens_per_sec",
           value={t: r.get("tokens_per_sec") for t, r in tasks.items()}, split=f"training batches ({data})",
           data=data, steps=steps, precision_requested=args.precision,
           precision=sorted({str(r.get("precision")) for r in tasks.values() if r["ok"]}), tasks=tasks)
    failed = [t for t, r in tasks.items() if not r["ok"]]
    print(json.dumps({t: {k: r.get(k) for k in ("ok", "tokens_per_sec", "peak_memory_bytes", "wall_seconds")}
                      for t, r in tasks.items()}, indent=2))
    if failed:
        raise SystemExit(f"gpu_check: {', '.join(failed)} failed; see the 'error' entries in the JSON")


if __name__ == "__main__":
    main()
