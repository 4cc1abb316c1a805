"""Precision follows the hardware (issue 11): `auto` resolves from a capability probe, an explicit precision the
machine cannot run is refused before anything is written, bundles trained in bf16 predict in fp32 anywhere, and
every task trains in mixed precision with gradient clipping where the CPU has native bf16.

Lightning turns `precision="16-mixed"` into bf16 on a CPU, and oneDNN has no fp16 LSTM, so the 16-mixed path
(loss scaling, unscaling before clipping, the plain Adam kernel) runs here with a CPU GradScaler around bf16
autocast where the CPU has native bf16, and around fp32 elsewhere; on a GPU the same path runs with fp16
(benchmarks/gpu_check.sh)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins.precision import MixedPrecision
from safetensors.torch import load_file, save_file

import seq2text
from seq2text import hardware
from seq2text.cli import main
from seq2text.data import ClassificationDataModule, LMDataModule, TranslationDataModule
from seq2text.errors import ConfigError
from seq2text.hardware import cpu_bf16, resolve_precision
from seq2text.nn.search import SearchConfig
from seq2text.tasks import ClassificationTask, LanguageModelTask, TranslationTask
from seq2text.tasks.config import ClassifierNetwork, Optimization, Seq2SeqNetwork
from tests.conftest import REPO, TINY_LM, fit, write_multi30k, write_ptb, write_sst
from tests.under_load import cpu_hogs

NATIVE_BF16, WHY_NOT = cpu_bf16()
needs_bf16 = pytest.mark.skipif(not NATIVE_BF16, reason=f"needs a CPU with native bf16: {WHY_NOT}")


@pytest.fixture()
def fresh_probe(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Pretends to be another CPU: flags, ATen level, oneDNN cap and oneDNN's bf16 support."""
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(hardware, "_device_kind", lambda accelerator: "cpu")

    def pretend(flags: set[str], capability: str = "AVX512", onednn_bf16: bool = True, isa: str | None = None) -> None:
        hardware.cpu_bf16.cache_clear()
        monkeypatch.setattr(hardware, "_cpu_flags", lambda: flags)
        monkeypatch.setattr(hardware, "cpu_capability", lambda: capability)
        monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: onednn_bf16)
        if isa:
            monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)

    yield pretend
    hardware.cpu_bf16.cache_clear()


def test_auto_picks_fp32_on_an_avx2_cpu_and_refuses_bf16_with_a_way_out(fresh_probe: Callable[..., None]) -> None:
    fresh_probe({"avx2", "fma"}, capability="AVX2")
    choice = resolve_precision("auto")
    assert (choice.precision, choice.requested) == ("32-true", "auto") and "no AVX512-BF16" in choice.reason
    with pytest.raises(ConfigError, match=r"native bf16.*--trainer.precision auto \(here: 32-true\) or 32-true"):
        resolve_precision("bf16-mixed")
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        resolve_precision("16-mixed")
    assert resolve_precision(32).precision == resolve_precision("32").precision == "32-true"


def test_auto_picks_bf16_only_where_native_and_uncapped(fresh_probe: Callable[..., None]) -> None:
    fresh_probe({"avx512f", "avx512_bf16"})
    assert resolve_precision("auto").precision == "bf16-mixed"
    assert resolve_precision("bf16").precision == "bf16-mixed"
    fresh_probe({"avx512f", "avx512_bf16"}, onednn_bf16=False)  # the flag, but oneDNN has no bf16 kernels
    assert resolve_precision("auto").precision == "32-true"
    fresh_probe({"avx512f", "avx512_bf16"}, isa="AVX2")  # the AVX2 emulation of CI: oneDNN capped
    assert "ONEDNN_MAX_CPU_ISA" in resolve_precision("auto").reason
    assert resolve_precision("auto").precision == "32-true"
    fresh_probe({"avx512f", "avx512_bf16"}, capability="AVX2")  # ATEN_CPU_CAPABILITY=avx2
    assert resolve_precision("auto").precision == "32-true"
    fresh_probe({"avx512f", "amx_bf16", "amx_tile"}, isa="AVX512_CORE_AMX")
    assert resolve_precision("auto").precision == "bf16-mixed"


def test_a_misspelt_precision_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="bf16-mixd.*auto, 32-true, bf16-mixed"):
        resolve_precision("bf16-mixd")


def test_auto_takes_no_timing_and_leaves_no_process_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """`auto` is read off the hardware: with every clock broken it still resolves, and it writes nothing into
    the environment for a later Trainer (or a notebook's second fit) to inherit."""
    import time

    def no_clock() -> float:
        raise AssertionError("precision auto must not time anything")

    for name in ("perf_counter", "monotonic", "time", "process_time"):
        monkeypatch.setattr(time, name, no_clock)
    before = dict(os.environ)
    hardware.cpu_bf16.cache_clear()
    try:
        choice = resolve_precision("auto", accelerator="cpu")
    finally:
        hardware.cpu_bf16.cache_clear()
    assert choice.precision == ("bf16-mixed" if NATIVE_BF16 else "32-true")
    assert dict(os.environ) == before


def test_auto_resolves_the_same_under_a_cpu_hog() -> None:
    """The same machine gives the same answer whatever its load: resolved in fresh processes, quiet and then with
    every core kept busy by other processes."""
    import subprocess
    import sys

    code = "from seq2text.hardware import resolve_precision as r; print(r('auto', accelerator='cpu').precision)"

    def resolve() -> str:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              cwd=REPO).stdout.strip()

    quiet = resolve()
    with cpu_hogs():
        busy = [resolve() for _ in range(3)]
    assert busy == [quiet] * 3 and quiet == ("bf16-mixed" if NATIVE_BF16 else "32-true")


def test_cli_refuses_what_the_cpu_cannot_run_and_writes_nothing(tmp_path: Path, toy_lm_dir: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    refused = ["16-mixed"] + ([] if NATIVE_BF16 else ["bf16-mixed"])
    for precision in [*refused, "fp32"]:
        out = tmp_path / precision
        code = main(["fit", "--config", str(REPO / "recipes" / "ptb_lstm_small.yaml"), "--data.init_args.root",
                     str(toy_lm_dir), *TINY_LM, "--trainer.precision", precision, "--trainer.max_steps", "2",
                     "--trainer.logger.init_args.save_dir", str(out), "--trainer.default_root_dir", str(out),
                     "--bundle", str(out / "bundle")])
        error = capsys.readouterr().err
        assert code == 1 and "seq2text: error: trainer.precision=" in error, error
        assert "Traceback" not in error and "primitive descriptor" not in error
        assert not out.exists()  # nothing written: no log folder, no checkpoint, no bundle


def test_auto_is_logged_and_recorded_in_the_bundle(tmp_path: Path, toy_lm_dir: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    bundle = fit("ptb_lstm_small.yaml", tmp_path, "--data.init_args.root", str(toy_lm_dir), *TINY_LM,
                 "--trainer.precision", "auto", "--trainer.max_epochs", "1")
    expected = resolve_precision("auto")
    metrics = json.loads((bundle / "metrics.json").read_text())
    assert metrics["precision"] == expected.precision and metrics["precision_requested"] == "auto"
    assert metrics["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert metrics["precision_reason"] == expected.reason
    assert f"seq2text: precision {expected.precision} (auto: {expected.reason})" in caplog.text


def test_a_bundle_with_bf16_weights_predicts_in_fp32(tmp_path: Path, lm_bundle: Path) -> None:
    bundle = Path(shutil.copytree(lm_bundle, tmp_path / "bundle"))
    text = ["the cat sat on the mat", "a dog ran"]
    reference = seq2text.load(bundle).perplexity(text)
    weights = load_file(str(bundle / "model.safetensors"))
    save_file({k: v.bfloat16() if v.is_floating_point() else v for k, v in weights.items()},
              str(bundle / "model.safetensors"))
    lm = seq2text.load(bundle)
    assert all(p.dtype == torch.float32 for p in lm.net.parameters())
    assert lm.perplexity(text) == pytest.approx(reference, rel=0.05)  # bf16 rounding of the weights only


# ------------------------------------------------------------------------------ every task in mixed precision
def _lm(root: Path) -> tuple[pl.LightningDataModule, pl.LightningModule]:
    write_ptb(root, (60, 10, 10))
    dm = LMDataModule("ptb", root=str(root), tokenizer_type="word", batch_size=4, bptt=8)
    optim = Optimization("adam", 30.0, 1.2e-6, lr_schedule="plateau")
    return dm, LanguageModelTask(dm.vocab_size, emb_size=16, hidden_size=16, adaptive_cutoffs=[], optim=optim)


def _cls(root: Path) -> tuple[pl.LightningDataModule, pl.LightningModule]:
    write_sst(root, (80, 10, 10))
    dm = ClassificationDataModule("sst2", root=str(root), tokenizer_type="word", tokenizer_vocab_size=None,
                                  max_tokens=200)
    return dm, ClassificationTask(dm.vocab_size, network=ClassifierNetwork(16, 16, 1, "lstm", bidirectional=True))


def _mt(root: Path) -> tuple[pl.LightningDataModule, pl.LightningModule]:
    write_multi30k(root, (80, 10, 10))
    dm = TranslationDataModule("multi30k", root=str(root), tokenizer_vocab_size=80, max_tokens=300)
    return dm, TranslationTask(dm.vocab_size, Seq2SeqNetwork(16, 16), val_bleu=False, search=SearchConfig(beam_size=1))


class _ScaledCpu(MixedPrecision):
    """Lightning's 16-mixed plugin (GradScaler and all) whose autocast uses bf16 where the CPU has it natively
    (oneDNN has no fp16 LSTM), and fp32 elsewhere: the loss-scaling path is what is tested."""

    def autocast_context_manager(self) -> contextlib.AbstractContextManager:
        return torch.autocast("cpu", dtype=torch.bfloat16) if NATIVE_BF16 else contextlib.nullcontext()


TASKS: dict[str, Callable[[Path], tuple[pl.LightningDataModule, pl.LightningModule]]] = {
    "language_modeling": _lm, "classification": _cls, "translation": _mt}


def _fit_and_test(task: str, root: Path, **options: object) -> pl.Trainer:
    torch.manual_seed(0)
    dm, module = TASKS[task](root)
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=1, gradient_clip_val=0.5, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, **options)
    trainer.fit(module, datamodule=dm)
    assert trainer.global_step > 0 and math.isfinite(float(trainer.callback_metrics["train/loss"]))
    results = trainer.test(module, datamodule=dm, verbose=False)[0]
    assert all(math.isfinite(v) for k, v in results.items() if k.endswith("loss"))
    in_fp32 = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, precision="32-true").test(module, datamodule=dm, verbose=False)[0]
    assert results == pytest.approx(in_fp32, rel=1e-6)  # the test phase runs in float32, as the bundle predicts
    return trainer


@needs_bf16
@pytest.mark.parametrize("task", sorted(TASKS))
def test_bf16_mixed_trains_with_clipping_and_the_fused_kernel(task: str, tmp_path: Path) -> None:
    trainer = _fit_and_test(task, tmp_path, precision="bf16-mixed")
    assert trainer.optimizers[0].defaults.get("fused") is True


@pytest.mark.parametrize("task", sorted(TASKS))
def test_loss_scaling_trains_with_clipping_and_the_plain_kernel(task: str, tmp_path: Path) -> None:
    scaler = _ScaledCpu("16-mixed", "cpu", torch.amp.GradScaler("cpu"))
    trainer = _fit_and_test(task, tmp_path, plugins=[scaler])
    assert trainer.optimizers[0].defaults.get("fused") is False  # a scaler rules out the fused kernel's unscaling


def test_one_trainers_precision_does_not_leak_into_the_next() -> None:
    """Two Trainers in one process (a notebook): an explicit precision for the first, `auto` for the second; the
    second resolves from the hardware alone."""
    from seq2text.tasks.trainer import Trainer

    first = Trainer(precision="64-true", accelerator="cpu", logger=False, enable_checkpointing=False)
    second = Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    assert first.precision_choice.precision == "64-true"
    assert second.precision_choice.precision == ("bf16-mixed" if NATIVE_BF16 else "32-true")
    assert second.precision_choice == resolve_precision("auto", accelerator="cpu")
