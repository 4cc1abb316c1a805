"""Large corpora (issue 13): tokenizing once into a prepared cache, and training from it, as the corpus grows.

Synthetic corpora of about 10M, 30M and 100M tokens (words + one end-of-line per line) are built from WikiText-2
train (its lines shuffled again for every copy) under benchmarks/runs/lm_data_scale/. For each size, in one run:

- `prepare` throughput in MB of text per second on every core (here 2 processes), against, on the 10M corpus,
  the same prepare on 1 process and SentencePiece's own `encode` on one core (the text already in memory);
- the cache's size on disk;
- a `seq2text fit` (recipes/wikitext2_lstm.yaml, WikiText-2's word tokenizer, valid/test the WikiText-2 files,
  20 steps, no validation) once the cache is prepared: seconds to its first training step, from the command's
  start and from the end of its imports (what is left: recipe, data, model, trainer);
- a 2-process DDP fit of the same (gloo, 1 thread each): the peak RSS (VmHWM) of each process.

    python benchmarks/lm_data_scale.py [--sizes 10 30 100] [--steps 20]

value = the larger over the two processes of peak RSS at the largest size / peak RSS at the smallest (target:
within 1.10); first step after imports at 100M: target ≤ 5 s.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from common import ROOT, record

from seq2text.data.catalog import resolve
from seq2text.hardware import usable_cores
from seq2text.text.prepared import prepare_lm
from seq2text.text.textio import read_lines
from seq2text.text.tokenizer import Tokenizer

WORK = ROOT / "benchmarks" / "runs" / "lm_data_scale"
RECIPE = ROOT / "recipes" / "wikitext2_lstm.yaml"


def build_corpus(lines: list[str], tokens: int, path: Path, seed: int = 0) -> dict:
    """Writes shuffled copies of `lines` until `tokens` words + end-of-lines; returns its counts."""
    if path.is_file() and path.with_suffix(".done").is_file():
        return {"bytes": path.stat().st_size, "tokens": int(path.with_suffix(".done").read_text())}
    rng, written = np.random.default_rng(seed), 0
    counts = np.fromiter((len(line.split()) + 1 for line in lines), dtype=np.int64, count=len(lines))
    with path.open("w", encoding="utf-8") as handle:
        while written < tokens:
            order = rng.permutation(len(lines))
            take = int(np.searchsorted(np.cumsum(counts[order]), tokens - written, side="left")) + 1
            chosen = order[:take]
            handle.write("\n".join(lines[i] for i in chosen) + "\n")
            written += int(counts[chosen].sum())
    path.with_suffix(".done").write_text(str(written))
    return {"bytes": path.stat().st_size, "tokens": written}


def time_prepare(corpus: Path, tokenizer: Tokenizer, folder: Path, workers: int) -> dict:
    shutil.rmtree(folder, ignore_errors=True)
    start = time.perf_counter()
    cache = prepare_lm([corpus], tokenizer, corpus.stem, folder, workers=workers)
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in cache.folder.iterdir())
    megabytes = corpus.stat().st_size / 1e6
    return {"seconds": round(seconds, 2), "mb_per_sec": round(megabytes / seconds, 2), "cache_bytes": size,
            "cache_mb": round(size / 1e6, 1), "ids": cache.stats("stream")["length"],
            "dtype": cache.stats("stream")["dtype"], "workers": workers}


def time_sentencepiece(corpus: Path, tokenizer: Tokenizer) -> dict:
    """SentencePiece's own batch `encode` on one core, the lines already in memory (reading not timed)."""
    lines = read_lines(corpus)
    processor = tokenizer._sp  # the SentencePieceProcessor behind the tokenizer
    start = time.perf_counter()
    processor.encode(lines, num_threads=1)
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), "mb_per_sec": round(corpus.stat().st_size / 1e6 / seconds, 2)}


class PeakRSS:
    """Polls the peak resident set (VmHWM) of a process and its descendants until stopped."""

    def __init__(self, root: int) -> None:
        self.root, self.peaks, self._stop = root, {}, threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _tree(self) -> list[int]:
        parents = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
        tree, frontier = [self.root], [self.root]
        while frontier:
            frontier = [pid for pid, parent in parents.items() if parent in frontier]
            tree.extend(frontier)
        return tree

    def _poll(self) -> None:
        while not self._stop.is_set():
            for pid in self._tree():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                match = re.search(r"VmHWM:\s+(\d+) kB", status)
                if match and b"seq2text" in cmdline:
                    self.peaks[pid] = max(self.peaks.get(pid, 0), int(match.group(1)) * 1024)
            self._stop.wait(0.1)

    def stop(self) -> list[int]:
        self._stop.set()
        self.thread.join()
        return sorted(self.peaks.values(), reverse=True)


def run_fit(corpus: Path, tokenizer_model: Path, prepared: Path, out: Path, steps: int, devices: int) -> dict:
    """`seq2text fit` on the prepared corpus; seconds to the first step and each process's peak RSS."""
    files = resolve("wikitext2")
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "seq2text.cli", "fit", "--config", str(RECIPE),
               "--data.init_args.dataset", "null", "--data.init_args.train_file", str(corpus),
               "--data.init_args.valid_file", str(files["valid"]), "--data.init_args.test_file", str(files["test"]),
               "--data.init_args.tokenizer_model", str(tokenizer_model), "--data.init_args.prepared_dir",
               str(prepared), "--trainer.max_steps", str(steps), "--trainer.limit_val_batches", "0",
               "--test_after_fit", "false", "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary",
               "false", "--trainer.logger.init_args.save_dir", str(out), "--trainer.default_root_dir", str(out),
               "--bundle", str(out / "bundle")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if devices > 1:
        command += ["--trainer.devices", str(devices), "--trainer.accelerator", "cpu", "--trainer.strategy", "ddp"]
        env["OMP_NUM_THREADS"] = "1"
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    monitor = PeakRSS(process.pid)
    output, _ = process.communicate()
    wall, peaks = time.perf_counter() - start, monitor.stop()
    if process.returncode != 0:
        raise RuntimeError(f"fit failed ({process.returncode}):\n{output[-3000:]}")
    found = re.search(r"first training step ([\d.]+) s after the command started \(([\d.]+) s after its imports\)",
                      output)
    if found is None:
        raise RuntimeError(f"no first-step line in the fit's output:\n{output[-3000:]}")
    return {"first_step_s": float(found.group(1)), "first_step_after_imports_s": float(found.group(2)),
            "wall_s": round(wall, 1), "peak_rss_mb": [round(p / 2**20, 1) for p in peaks[:devices]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[10, 30, 100], help="millions of tokens")
    parser.add_argument("--steps", type=int, default=20, help="training steps of each fit")
    args = parser.parse_args()
    started = time.perf_counter()
    WORK.mkdir(parents=True, exist_ok=True)
    train = resolve("wikitext2")["train"]
    tokenizer = Tokenizer.load_or_train(None, [train], "word", None)
    tokenizer_model = WORK / "wikitext2_word.model"
    tokenizer.save(tokenizer_model)
    lines = read_lines(train)
    rows = {}
    for size in args.sizes:
        corpus = WORK / f"corpus_{size:g}M.txt"
        row = build_corpus(lines, int(size * 1e6), corpus)
        prepared = WORK / f"prepared_{size:g}M"
        row["prepare"] = time_prepare(corpus, tokenizer, prepared, usable_cores())
        if size == min(args.sizes):
            row["prepare_one_process"] = time_prepare(corpus, tokenizer, WORK / "prepared_one", 1)
            row["sentencepiece_encode_one_core"] = time_sentencepiece(corpus, tokenizer)
            shutil.rmtree(WORK / "prepared_one", ignore_errors=True)
        row["fit_one_process"] = run_fit(corpus, tokenizer_model, prepared, WORK / "fit1", args.steps, 1)
        row["fit_ddp_2"] = run_fit(corpus, tokenizer_model, prepared, WORK / "fit2", args.steps, 2)
        rows[f"{size:g}M"] = row
        print(size, row, flush=True)
    small, large = rows[f"{min(args.sizes):g}M"], rows[f"{max(args.sizes):g}M"]
    ratios = [b / a for a, b in zip(small["fit_ddp_2"]["peak_rss_mb"], large["fit_ddp_2"]["peak_rss_mb"], strict=True)]
    sp = small["sentencepiece_encode_one_core"]["mb_per_sec"]
    record("lm_data_scale", metric="ddp_peak_rss_ratio_largest_to_smallest", value=round(max(ratios), 3),
           per_size=rows, rss_ratios=[round(r, 3) for r in ratios],
           first_step_after_imports_s_at_largest=large["fit_one_process"]["first_step_after_imports_s"],
           prepare_mb_per_sec_at_largest=large["prepare"]["mb_per_sec"],
           prepare_speed_ratio_to_sentencepiece_one_core=round(large["prepare"]["mb_per_sec"] / sp, 3),
           workers=usable_cores(), tokenizer="word, WikiText-2 train's closed vocabulary "
           f"({tokenizer.vocab_size} ids)", recipe="recipes/wikitext2_lstm.yaml", steps=args.steps,
           split="synthetic corpora from WikiText-2 train (shuffled copies); valid/test: WikiText-2's files",
           wall_s=round(time.perf_counter() - started, 1))


if __name__ == "__main__":
    main()
