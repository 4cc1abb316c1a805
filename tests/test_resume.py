"""Exact resume (issue 5): a seeded run SIGKILLed mid-epoch and resumed from its last checkpoint ends with
the weights and test metrics of an uninterrupted run, bit for bit on a CPU, for every task."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import (
    REPO,
    TINY_CLS,
    TINY_LM,
    TINY_MT,
    fit,
    fit_process,
    one_thread,
    write_multi30k,
    write_ptb,
    write_sst,
)

CHECKPOINT_EVERY = 3


def _lm_data(root: Path) -> list[str]:
    write_ptb(root, (120, 20, 20))
    return ["ptb_lstm_small.yaml", *TINY_LM]


def _cls_data(root: Path) -> list[str]:
    write_sst(root, (200, 30, 30))
    return ["sst2_bilstm.yaml", *TINY_CLS, "--data.init_args.max_tokens", "150"]


def _mt_data(root: Path) -> list[str]:
    write_multi30k(root, (200, 20, 20))
    return ["multi30k_bigru_attention.yaml", *TINY_MT, "--model.init_args.search.beam_size", "1"]


TASKS = {"language_modeling": _lm_data, "classification": _cls_data, "translation": _mt_data}


def _args(config: Path, recipe_args: list[str], root: Path) -> list[str]:
    return ["--config", str(config), "--data.init_args.root", str(root), *recipe_args[1:], "--trainer.precision", "32"]


def _config(path: Path, checkpoints: Path, kill_at: int | None) -> Path:
    callbacks = [{"class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
                  "init_args": {"dirpath": str(checkpoints), "every_n_train_steps": CHECKPOINT_EVERY,
                                "save_last": True}}]
    if kill_at is not None:
        callbacks.append({"class_path": "tests.killer.KillAtStep", "init_args": {"step": kill_at}})
    path.write_text(json.dumps({"trainer": {"max_epochs": 2, "callbacks": callbacks}}))
    return path


@pytest.mark.parametrize("task", sorted(TASKS))
def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(task: str, tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    recipe_args = TASKS[task](root)
    with one_thread():  # in this process, computing as the killed child process does
        fit(recipe_args[0], tmp_path / "whole",
            *_args(_config(tmp_path / "whole.json", tmp_path / "whole_ckpt", None), recipe_args, root))
    metrics = json.loads((tmp_path / "whole" / "bundle" / "metrics.json").read_text())
    steps = metrics["global_step"]
    per_epoch = steps // 2
    kill_at = per_epoch // 2  # mid-epoch 0, between two checkpoints
    while kill_at % CHECKPOINT_EVERY == 0:
        kill_at += 1
    assert CHECKPOINT_EVERY < kill_at < per_epoch

    ckpt = tmp_path / "ckpt"
    killed = fit_process(recipe_args[0], tmp_path / "killed",
                         *_args(_config(tmp_path / "killed.json", ckpt, kill_at), recipe_args, root))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (tmp_path / "killed" / "bundle").exists()
    last = ckpt / "last.ckpt"
    assert last.is_file() and all(p.suffix == ".ckpt" for p in ckpt.iterdir()), sorted(ckpt.iterdir())
    saved = torch.load(last, map_location="cpu", weights_only=True)  # checkpoints hold no pickled objects
    assert saved["global_step"] == kill_at - kill_at % CHECKPOINT_EVERY

    with one_thread():
        fit(recipe_args[0], tmp_path / "resumed",
            *_args(_config(tmp_path / "resumed.json", ckpt, None), recipe_args, root), "--ckpt_path", str(last))
    again = json.loads((tmp_path / "resumed" / "bundle" / "metrics.json").read_text())
    assert again["global_step"] == steps
    test_metrics = {k: v for k, v in metrics.items() if k.startswith("test/")}
    assert test_metrics and {k: again[k] for k in test_metrics} == test_metrics
    first = load_file(tmp_path / "whole" / "bundle" / "model.safetensors")
    second = load_file(tmp_path / "resumed" / "bundle" / "model.safetensors")
    assert first.keys() == second.keys()
    for name, tensor in first.items():
        assert torch.equal(tensor, second[name]), name


KILL_MID_WRITE = """
import os, signal, sys
import torch
import seq2text.tasks.checkpoint_io as checkpoint_io

io = checkpoint_io.AtomicCheckpointIO()
io.save_checkpoint({"step": 1, "weights": torch.ones(50_000)}, sys.argv[1])
real_save = torch.save

def half_then_die(obj, file):
    real_save(obj, file)
    file.truncate(file.tell() // 2)
    file.flush()
    os.kill(os.getpid(), signal.SIGKILL)

checkpoint_io.torch.save = half_then_die
io.save_checkpoint({"step": 2, "weights": torch.zeros(50_000)}, sys.argv[1])
"""


def test_a_kill_during_a_checkpoint_write_leaves_the_previous_file_whole(tmp_path: Path) -> None:
    last = tmp_path / "checkpoints" / "last.ckpt"
    result = subprocess.run([sys.executable, "-c", KILL_MID_WRITE, str(last)], cwd=REPO, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert saved["step"] == 1 and torch.equal(saved["weights"], torch.ones(50_000))
    leftovers = [p for p in last.parent.iterdir() if p != last]
    assert all(p.name.startswith(".last.ckpt.") and p.suffix == ".tmp" for p in leftovers), leftovers


def test_the_cli_writes_checkpoints_atomically(toy_lm_dir: Path, tmp_path: Path) -> None:
    from seq2text.cli import _lightning_cli_class
    from seq2text.tasks import ExactResume
    from seq2text.tasks.checkpoint_io import AtomicCheckpointIO

    cli = _lightning_cli_class()(model_class=None, datamodule_class=None, subclass_mode_model=True,
                                 subclass_mode_data=True, run=False, auto_configure_optimizers=False,
                                 args=["--config", "recipes/ptb_lstm_small.yaml", "--data.init_args.root",
                                       str(toy_lm_dir), *TINY_LM, "--trainer.default_root_dir", str(tmp_path)])
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    assert any(isinstance(c, ExactResume) for c in cli.trainer.callbacks)
