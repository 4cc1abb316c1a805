"""DDP on a CPU (gloo), one test per task (issue 5): 2 processes × batch B train like 1 process × batch 2B
(same final weights and metrics, up to floating point), evaluation counts every example exactly once, and
uneven data (a shard or a last batch shorter than the others) cannot hang a rank (the timeout fails fast).

Dropout is off so that the two runs draw no different random numbers; the data sizes are chosen to leave
uneven remainders (odd counts, a padded last LM column, a last batch smaller than the others).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import QUIET, WORDS, fit, fit_process, one_thread, write_multi30k, write_sst

TIMEOUT = 240  # seconds: a hung rank fails the test instead of stalling CI
OPTIONS = [*QUIET, "--trainer.precision", "32", "--trainer.max_epochs", "2", "--trainer.accelerator", "cpu"]


def _lm(root: Path, processes: int) -> list[str]:
    rng = random.Random(0)
    for split, lines in (("train", 100), ("valid", 20), ("test", 21)):
        text = [" ".join(rng.choice(WORDS) for _ in range(7)) for _ in range(lines)]
        if split == "test":
            text[-1] = " ".join(text[-1].split()[:6])  # 167 targets: the last column is padded
        (root / f"ptb.{split}.txt").write_text("\n".join(text) + "\n")
    per_process = 8 // processes
    return ["ptb_lstm_small.yaml", "--model.init_args.emb_size", "16", "--model.init_args.hidden_size", "16",
            "--model.init_args.adaptive_cutoffs", "[]", "--data.init_args.bptt", "8",
            "--data.init_args.batch_size", str(per_process), "--data.init_args.eval_batch_size", str(per_process // 2),
            *[f"--model.init_args.regularization.{name}=0" for name in ("dropout", "dropout_hidden", "dropout_input",
                                                                        "dropout_embedding", "weight_dropout")]]


def _cls(root: Path, processes: int) -> list[str]:
    write_sst(root, (203, 21, 31))
    return ["sst2_bilstm.yaml", "--model.init_args.network.emb_size", "16",
            "--model.init_args.network.hidden_size", "16",
            "--data.init_args.max_tokens", "100000", "--data.init_args.max_batch_size", str(10 // processes),
            "--data.init_args.eval_max_tokens", "60",
            *[f"--model.init_args.network.{name}=0" for name in (
                "dropout", "dropout_hidden", "dropout_input", "dropout_embedding", "weight_dropout", "dropout_head")]]


def _mt(root: Path, processes: int) -> list[str]:
    write_multi30k(root, (202, 21, 21))
    return ["multi30k_bigru_attention.yaml", "--model.init_args.network.emb_size", "16",
            "--model.init_args.network.hidden_size", "16", "--model.init_args.network.dropout", "0",
            "--model.init_args.val_bleu", "false", "--model.init_args.search.beam_size", "1",
            "--data.init_args.tokenizer_vocab_size", "100",
            "--data.init_args.max_tokens", "100000", "--data.init_args.max_batch_size", str(10 // processes),
            "--data.init_args.eval_max_tokens", "150"]


def _fc(root: Path, processes: int) -> list[str]:
    import numpy as np
    import pandas as pd

    t = np.arange(152)  # 152 months: 99 training windows (a last global batch of 3, split 2/1), 19 test windows
    value = 10 + 0.05 * t + 2 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 0.2, 152)
    pd.DataFrame({"month": pd.date_range("2000-01-01", periods=152, freq="MS"), "load": value}).to_csv(
        root / "load.csv", index=False)
    return ["forecast_co2.yaml", "--data.init_args.path", str(root / "load.csv"), "--data.init_args.time_column",
            "month", "--data.init_args.value_columns", "[load]", "--data.init_args.lookback", "12",
            "--data.init_args.horizon", "6", "--data.init_args.valid_size", "12", "--data.init_args.test_size", "24",
            "--data.init_args.batch_size", str(16 // processes), "--data.init_args.eval_batch_size", "7",
            "--model.init_args.network.hidden_size", "16", "--model.init_args.network.dropout", "0",
            "--model.init_args.network.autoregressive", "12"]


# task: (data and options, metrics that must be equal, metrics within `rel`, weights within `rel` × 10).
# The last training batches are uneven (3 texts, 2 pairs: split 2/1 and 1/1 between the ranks).
TASKS = {"language_modeling": (_lm, ("test/tokens", "test/words"), ("test/loss", "test/ppl", "val/loss"), 1e-4),
         "classification": (_cls, ("test/examples", "test/acc"), ("test/loss", "val/loss"), 1e-4),
         "translation": (_mt, ("test/tokens",), ("test/loss", "val/loss"), 1e-4),
         "forecasting": (_fc, ("test/windows",), ("test/mae", "test/mase", "test/loss", "val/mae"), 1e-4)}


def _fit(task: str, processes: int, out: Path) -> dict:
    """One process: in this one, with one thread; two: a DDP launch in a child process (one thread per rank)."""
    root = out / "data"
    root.mkdir(parents=True)
    recipe, *args = TASKS[task][0](root, processes)
    location = [] if task == "forecasting" else ["--data.init_args.root", str(root)]
    args = [*location, *args, *OPTIONS, "--trainer.devices", str(processes)]
    if processes == 1:
        with one_thread():
            fit(recipe, out, *args)
    else:
        result = fit_process(recipe, out, *args, "--trainer.strategy", "ddp", timeout=TIMEOUT)
        assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "bundle" / "metrics.json").read_text())


@pytest.mark.parametrize("task", sorted(TASKS))
def test_two_processes_train_like_one_with_twice_the_batch(task: str, tmp_path: Path) -> None:
    one = _fit(task, 1, tmp_path / "one")
    two = _fit(task, 2, tmp_path / "two")
    _, exact, close, rel = TASKS[task]
    for key in exact:  # every test example counted once, whatever the sharding
        assert two[key] == one[key], key
    for key in close:
        assert two[key] == pytest.approx(one[key], rel=rel), key
    assert two["global_step"] == one["global_step"]
    if task == "classification":
        assert one["test/examples"] == 31
        assert sum(v for k, v in two.items() if k.startswith("test/confusion/")) == 31
    first = load_file(tmp_path / "one" / "bundle" / "model.safetensors")
    second = load_file(tmp_path / "two" / "bundle" / "model.safetensors")
    for name, tensor in first.items():
        torch.testing.assert_close(second[name], tensor, rtol=10 * rel, atol=10 * rel, msg=name)
