"""Where a training step of a language-model recipe spends its time: torch.profiler over Lightning's real loop.

    python benchmarks/lm_step_profile.py [--recipe recipes/ptb_lstm_small.yaml] [--steps 60] [--warmup 15]
        [--name lm_step_profile] [--precision 32-true] [--set model.init_args.hidden_size=200 ...]

Runs `--steps` training steps of the recipe (validation off) through seq2text's Trainer, profiles the steps after
`--warmup`, and records the operators' shares of the profiled CPU time (self time, so that shares add up), the
step's tokens/s and the wall time per step. Lightning's own per-step work shows as the time outside torch's
operators (`outside_torch_ops`).
"""

from __future__ import annotations

import argparse
import time

import pytorch_lightning as pl
import yaml
from common import ROOT, record, task_from_recipe
from torch.profiler import ProfilerActivity, profile

from seq2text.data.language_modeling import LMDataModule
from seq2text.tasks.language_modeling import LanguageModelTask
from seq2text.tasks.trainer import Trainer


class StepProfiler(pl.Callback):
    """Profiles training steps [warmup, end) and times them."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.prof, self.start, self.tokens, self.steps = warmup, None, 0.0, 0, 0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):  # noqa: ANN001, ANN201
        if batch_idx == self.warmup:
            self.prof = profile(activities=[ProfilerActivity.CPU])
            self.prof.__enter__()
            self.start = time.perf_counter()
        if batch_idx >= self.warmup:
            self.tokens += batch.input.numel()
            self.steps += 1

    def on_train_end(self, trainer, module):  # noqa: ANN001, ANN201
        self.seconds = time.perf_counter() - self.start
        self.prof.__exit__(None, None, None)


def apply_overrides(recipe: dict, overrides: list[str]) -> None:
    """`model.init_args.hidden_size=200` style settings, values parsed as YAML."""
    for item in overrides:
        key, _, value = item.partition("=")
        node = recipe
        *path, last = key.split(".")
        for part in path:
            node = node.setdefault(part, {})
        node[last] = yaml.safe_load(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="recipes/ptb_lstm_small.yaml")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=15)
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--name", default="lm_step_profile")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--set", nargs="*", default=[], help="recipe overrides, key.path=value")
    args = parser.parse_args()
    recipe = yaml.safe_load((ROOT / args.recipe).read_text())
    apply_overrides(recipe, args.set)
    pl.seed_everything(0, verbose=False)
    data = LMDataModule(**recipe["data"]["init_args"])
    task = task_from_recipe(LanguageModelTask, recipe["model"]["init_args"], data.vocab_size)
    timer = StepProfiler(args.warmup)
    trainer = Trainer(max_steps=args.warmup + args.steps, precision=args.precision,
                      gradient_clip_val=recipe["trainer"].get("gradient_clip_val"), logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      limit_val_batches=0, callbacks=[timer])
    trainer.fit(task, data)
    events = timer.prof.key_averages()
    total_us = timer.seconds * 1e6
    rows = sorted(((e.key, e.self_cpu_time_total) for e in events), key=lambda r: -r[1])
    top = {name: round(us / total_us, 4) for name, us in rows[: args.top]}
    in_ops = sum(us for _, us in rows)
    record(args.name, recipe=args.recipe, overrides=args.set, metric="train_tokens_per_sec",
           value=round(timer.tokens / timer.seconds, 1), split="train (ptb.train.txt batches)",
           ms_per_step=round(1e3 * timer.seconds / timer.steps, 2), profiled_steps=timer.steps,
           top_operator_self_cpu_share=top, outside_torch_ops=round(max(0.0, 1 - in_ops / total_us), 4),
           train_seconds=round(timer.seconds, 2), precision=args.precision,
           note="shares of the profiled wall time; the profiler itself slows small operators down")


if __name__ == "__main__":
    main()
