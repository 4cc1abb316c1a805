"""Mixed precision for every task (issue 5): bf16-mixed (the CPU recipes' setting) and 16-mixed with a loss
scaler, both with gradient clipping. Lightning turns `precision="16-mixed"` into bf16 on a CPU, and oneDNN has
no fp16 LSTM, so the 16-mixed path (loss scaling, unscaling before clipping, the plain Adam kernel) runs here
with a CPU GradScaler around bf16 autocast; on a GPU the same path runs with fp16 (benchmarks/gpu_check.sh)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins.precision import MixedPrecision

from seq2text.data import ClassificationDataModule, LMDataModule, TranslationDataModule
from seq2text.tasks import ClassificationTask, LanguageModelTask, TranslationTask
from tests.conftest import write_multi30k, write_ptb, write_sst


def _lm(root: Path) -> tuple[pl.LightningDataModule, pl.LightningModule]:
    write_ptb(root, (60, 10, 10))
    dm = LMDataModule("ptb", root=str(root), tokenizer_type="word", batch_size=4, bptt=8)
    return dm, LanguageModelTask(dm.vocab_size, emb_size=16, hidden_size=16, adaptive_cutoffs=[], optimizer="adam")


def _cls(root: Path) -> tuple[pl.LightningDataModule, pl.LightningModule]:
    write_sst(root, (80, 10, 10))
    dm = ClassificationDataModule("sst2", root=str(root), tokenizer_type="word", tokenizer_vocab_size=None,
                                  max_tokens=200)
    return dm, ClassificationTask(dm.vocab_size, emb_size=16, hidden_size=16, num_layers=1, rnn_type="lstm",
                                  bidirectional=True)


def _mt(root: Path) -> tuple[pl.LightningDataModule, pl.LightningModule]:
    write_multi30k(root, (80, 10, 10))
    dm = TranslationDataModule("multi30k", root=str(root), tokenizer_vocab_size=80, max_tokens=300)
    return dm, TranslationTask(dm.vocab_size, emb_size=16, hidden_size=16, test_beam_size=1, val_bleu=False)


class _ScaledBf16(MixedPrecision):
    """Lightning's 16-mixed plugin (GradScaler and all) whose autocast uses bf16, which CPU LSTMs support."""

    def autocast_context_manager(self) -> torch.autocast:
        return torch.autocast("cpu", dtype=torch.bfloat16)


TASKS: dict[str, Callable[[Path], tuple[pl.LightningDataModule, pl.LightningModule]]] = {
    "language_modeling": _lm, "classification": _cls, "translation": _mt}


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
@pytest.mark.parametrize("task", sorted(TASKS))
def test_mixed_precision_trains_with_clipping(task: str, precision: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    dm, module = TASKS[task](tmp_path)
    if precision == "16-mixed":  # loss scaling, as on a GPU
        options = {"plugins": [_ScaledBf16("16-mixed", "cpu", torch.amp.GradScaler("cpu"))]}
    else:
        options = {"precision": precision}
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=1, gradient_clip_val=0.5, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, **options)
    trainer.fit(module, datamodule=dm)
    assert trainer.global_step > 0 and math.isfinite(float(trainer.callback_metrics["train/loss"]))
    fused = trainer.optimizers[0].defaults.get("fused")
    assert fused is (precision == "bf16-mixed")  # a loss scaler rules out the fused kernel's internal unscaling
    results = trainer.test(module, datamodule=dm, verbose=False)[0]
    assert all(math.isfinite(v) for k, v in results.items() if k.endswith("loss"))
