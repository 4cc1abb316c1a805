"""Tokens/s of seq2text's Lightning training loop against a bare PyTorch loop: same model, same batches,
same optimizer, precision and clipping, same machine, measured in the same run (alternating; the ratio of the medians).

    python benchmarks/lm_throughput.py [--recipe recipes/ptb_lstm_small.yaml] [--steps 120] [--repeats 2]

value = ours / bare (tokens per second).
"""

from __future__ import annotations

import argparse
import statistics
import time

import pytorch_lightning as pl
import torch
import yaml
from common import ROOT, record, task_from_recipe

from seq2text.data.language_modeling import LMDataModule
from seq2text.hardware import resolve_precision
from seq2text.tasks.language_modeling import LanguageModelTask


def build(recipe: dict, seed: int) -> tuple[LanguageModelTask, LMDataModule]:
    pl.seed_everything(seed, verbose=False)
    data = LMDataModule(**recipe["data"]["init_args"])
    task = task_from_recipe(LanguageModelTask, recipe["model"]["init_args"], data.vocab_size)
    return task, data


class Timer(pl.Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.tokens = warmup, 0.0, 0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):  # noqa: ANN001, ANN201
        if batch_idx == self.warmup:
            self.start = time.perf_counter()
        if batch_idx >= self.warmup:
            self.tokens += batch.input.numel()


def precision_of(recipe: dict) -> str:
    """The recipe's precision as this machine resolves it (`auto`: bf16-mixed only where bf16 is native)."""
    return resolve_precision(recipe["trainer"].get("precision", "auto")).precision


def lightning_loop(recipe: dict, steps: int, warmup: int) -> float:
    task, data = build(recipe, 0)
    timer = Timer(warmup)
    trainer_cfg = recipe["trainer"]
    trainer = pl.Trainer(max_steps=steps, precision=precision_of(recipe),
                         gradient_clip_val=trainer_cfg.get("gradient_clip_val"), logger=pl.loggers.CSVLogger(
                             str(ROOT / "benchmarks" / "runs" / "lm_throughput")),
                         log_every_n_steps=trainer_cfg.get("log_every_n_steps", 50), enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         callbacks=[timer])
    trainer.fit(task, data)
    return timer.tokens / (time.perf_counter() - timer.start)


def bare_loop(recipe: dict, steps: int, warmup: int) -> float:
    """The same work written by hand: forward, masked NLL, backward, clip, step, state carry."""
    task, data = build(recipe, 0)
    data.setup("fit")
    net, hp = task.net.train(), task.hparams
    optimizer = torch.optim.Adam(net.parameters(), lr=hp.lr, weight_decay=hp.weight_decay, fused=True) \
        if hp.optimizer == "adam" else torch.optim.SGD(net.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
    bf16 = "bf16" in precision_of(recipe)
    clip = recipe["trainer"].get("gradient_clip_val")
    hidden, tokens, start = None, 0, 0.0
    for step, batch in enumerate(data.train_dataloader()):
        if step == steps:
            break
        if step == warmup:
            start = time.perf_counter()
        if step >= warmup:
            tokens += batch.input.numel()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            features, hidden, _ = net(batch.input, hidden)
            hidden = net.detach(hidden)
            loss = (net.nll(features, batch.target) * batch.mask).sum() / batch.mask.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
        optimizer.step()
    return tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="recipes/ptb_lstm_small.yaml")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    recipe = yaml.safe_load((ROOT / args.recipe).read_text())
    ours, bare = [], []
    for _ in range(args.repeats):
        bare.append(bare_loop(recipe, args.steps, args.warmup))
        ours.append(lightning_loop(recipe, args.steps, args.warmup))
    record("lm_throughput", recipe=args.recipe, metric="lightning_over_bare_tokens_per_sec",
           value=round(statistics.median(ours) / statistics.median(bare), 3), split="train (ptb.train.txt batches)",
           ours_tokens_per_sec=[round(x) for x in ours], bare_tokens_per_sec=[round(x) for x in bare],
           steps=args.steps, warmup_steps=args.warmup, train_seconds=None, precision=precision_of(recipe))


if __name__ == "__main__":
    main()
