"""Shared by the benchmark scripts: machine facts and the JSON record every figure comes from."""

from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
# the machine's 1-minute load average when this benchmark process started (others' work slows a timed run)
LOAD_AT_START = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def machine() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    model = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} x {model}"


def scheduler() -> str:
    """The CPU scheduling policy of this run (benchmarks run under `chrt -r 1` on shared machines)."""
    policy = os.sched_getscheduler(0)
    names = {os.SCHED_OTHER: "SCHED_OTHER", os.SCHED_RR: "SCHED_RR", os.SCHED_FIFO: "SCHED_FIFO"}
    return names.get(policy, str(policy))


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "seq2text", "recipes"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except OSError:
        return "unknown"


COMMIT_AT_START = commit()  # the code this run started with (later commits during a long run do not count)


def fit_to_budget(recipe: str, out: Path, minutes: float, extra: list[str]) -> float:
    """Runs `seq2text fit` on `recipe` with `--budget`, logs and bundle under `out`; returns the wall seconds."""
    return fit_recipe(recipe, out, ["--budget", f"{minutes}m", *extra])


def fit_recipe(recipe: str, out: Path, extra: list[str]) -> float:
    """Runs `seq2text fit` on `recipe` (plus `extra` arguments), logs and bundle under `out`; returns the wall
    seconds."""
    command = [sys.executable, "-m", "seq2text.cli", "fit", "--config", recipe,
               "--bundle", str(out / "bundle"), "--trainer.enable_progress_bar", "false",
               "--trainer.logger.init_args.save_dir", str(out), "--trainer.default_root_dir", str(out), *extra]
    start = time.monotonic()
    subprocess.run(command, cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.monotonic() - start


def training_speed(log_dir: Path) -> dict[str, float]:
    """Median training tokens/s (source + target, and target only) from the run's metrics.csv."""
    files = sorted(log_dir.rglob("metrics.csv"), key=lambda p: p.stat().st_mtime)
    if not files:
        return {}
    rows = list(csv.DictReader(files[-1].open()))
    speed = {}
    for key, name in (("train/tokens_per_sec", "train_tokens_per_sec"),
                      ("train/trg_tokens_per_sec", "train_trg_tokens_per_sec")):
        values = sorted(float(r[key]) for r in rows if r.get(key))
        if values:
            speed[name] = round(values[len(values) // 2], 1)
    return speed


KERNEL_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS",
              "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")


def record(benchmark: str, results: Path = RESULTS, **fields: object) -> dict:
    """Writes <results>/<benchmark>.json (default benchmarks/results) with the keys DESIGN.md asks for, plus
    `fields`. Every record names the CPU's kernel level (`cpu_capability`), the torch threads, the scheduler and
    the training `precision` (a fit's own, from its bundle, or else what `auto` picks here)."""
    from seq2text.hardware import cpu_capability, resolve_precision

    if fields.get("precision") is None:  # the run used the recipes' default, `auto`, on this machine
        fields["precision"] = resolve_precision("auto").precision
    entry = {"benchmark": benchmark, **fields, "commit": COMMIT_AT_START,
             "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "machine": machine(),
             "torch": torch.__version__, "python": platform.python_version(), "cpu_capability": cpu_capability(),
             "threads": torch.get_num_threads(), "scheduler": scheduler(), "load_average_1m": LOAD_AT_START,
             "command": "python " + " ".join([os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])}
    pinned = {name: os.environ[name] for name in KERNEL_ENV if name in os.environ}
    if pinned:  # the run chose its kernels or threads itself: part of the command
        entry["environment"] = pinned
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{benchmark}.json").write_text(json.dumps(entry, indent=2) + "\n")
    print(json.dumps(entry, indent=2))
    return entry


def task_from_recipe(task: type, init_args: dict, vocab_size: int) -> object:
    """The recipe's task built without LightningCLI: each group (a mapping, e.g. `optim`) over the task's default
    for it, as LightningCLI merges them."""
    import inspect
    from dataclasses import replace

    defaults = inspect.signature(task).parameters
    groups = {k: replace(defaults[k].default, **v) for k, v in init_args.items() if isinstance(v, dict)}
    return task(vocab_size=vocab_size, **{**init_args, **groups})
