"""`seq2text fit|validate|test`: LightningCLI with seq2text's options (`--budget`, `--bundle`, `--test_after_fit`;
`--tune` for forecasters: `seq2text.cli.tuning`),
its `Trainer` (`precision: auto`), the checks of `--ckpt_path` and the bundle export after fit; and
`seq2text prepare` (a recipe's data, or corpus files, tokenized once into prepared caches)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from seq2text.errors import ConfigError, Seq2TextError

__all__ = ["LIGHTNING_COMMANDS", "_lightning_cli_class", "_lightning_main", "_prepare", "check_moved_keys",
           "moved_keys", "recipe_model_class"]


LIGHTNING_COMMANDS = ("fit", "validate", "test")
_COMMAND_START = time.perf_counter()  # when the command's Python began (what StartupTime measures from)
RENAMED = {"search.beam_size": "test_beam_size"}  # a grouped setting whose flat key had another name


def moved_keys(task: type) -> dict[str, str]:
    """The task's table of recipe keys that moved into its argument groups: flat key → `group.field` (under
    `model.init_args`), from the groups' dataclass fields (e.g. `lr` → `optim.lr`)."""
    import dataclasses
    import typing
    hints = typing.get_type_hints(task.__init__)
    table = {RENAMED.get(f"{group}.{f.name}", f.name): f"{group}.{f.name}" for group, hint in hints.items()
             if dataclasses.is_dataclass(hint) for f in dataclasses.fields(hint)}
    return {old: new for old, new in table.items() if old not in hints}


def _recipe_model(args: list[str]) -> tuple[str | None, list[str]]:
    """The model's class path and the `model.init_args` keys that a recipe (`--config`) and overrides set."""
    import yaml
    words = [part for arg in args for part in (arg.split("=", 1) if arg.startswith("--") else [arg])]
    class_path, keys = None, []
    for option, value in zip(words, words[1:], strict=False):
        if option in ("--config", "-c") and Path(value).is_file():
            model = (yaml.safe_load(Path(value).read_text(encoding="utf-8")) or {}).get("model")
            if isinstance(model, dict):
                class_path = model.get("class_path", class_path)
                keys += list(model.get("init_args") or {})
        elif option in ("--model", "--model.class_path"):
            class_path = value
        elif option.startswith("--model."):
            keys.append(option.removeprefix("--model.").removeprefix("init_args.").split(".")[0])
    return class_path, keys


def recipe_model_class(args: list[str]) -> str | None:
    """The model class path a recipe (`--config`) and its overrides name (None: none named)."""
    return _recipe_model(args)[0]


def check_moved_keys(args: list[str]) -> None:
    """Refuses a recipe (`--config`) or override (`--model.init_args.KEY`) that sets a task setting by its flat
    key from before the settings were grouped, naming where each one went."""
    class_path, keys = _recipe_model(args)
    from seq2text import tasks
    task = getattr(tasks, str(class_path).rsplit(".", 1)[-1], None)
    table = moved_keys(task) if isinstance(task, type) else {}
    moved = [f"model.init_args.{key} is now model.init_args.{table[key]}" for key in dict.fromkeys(keys)
             if key in table]
    if moved:
        raise ConfigError(f"{'; '.join(moved)}. The task's settings come in groups now (optim, network, ...); "
                          "see 'Recipe keys' in docs/README.md for the whole table")


def _lightning_cli_class() -> type:
    from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

    from seq2text.tasks.callbacks import ExactResume, StartupTime, ValidationLine, WallClockBudget
    from seq2text.tasks.trainer import Trainer
    imports_done = time.perf_counter()

    class Seq2TextCLI(LightningCLI):
        """LightningCLI with seq2text's links and options: `--budget`, `--bundle`, `--test_after_fit`, and
        seq2text's `Trainer` (`precision: auto`)."""

        def __init__(self, *args: object, trainer_class: type = Trainer, **kwargs: object) -> None:
            super().__init__(*args, trainer_class=trainer_class, **kwargs)

        def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
            parser.link_arguments("data.vocab_size", "model.init_args.vocab_size", apply_on="instantiate")
            parser.add_argument("--budget", type=str | None, default=None,
                                help="wall-clock training budget (e.g. 15m, 1h); LR schedules anneal to it")
            parser.add_argument("--bundle", type=str | None, default=None,
                                help="where fit writes the model bundle (default: <log dir>/bundle)")
            parser.add_argument("--test_after_fit", type=bool, default=True,
                                help="after fit, evaluate on the test split and store the metrics in the bundle")
            from seq2text.cli.tuning import TUNE_ARGUMENTS

            for option, (kind, text) in TUNE_ARGUMENTS.items():  # read by seq2text.cli.tuning before the CLI parses
                parser.add_argument(option, type=kind | None, default=None, help=text)
            parser.set_defaults({"trainer.use_distributed_sampler": False})

        def instantiate_trainer(self, **kwargs: object):  # noqa: ANN201 - Lightning's signature
            from pytorch_lightning.plugins.io import TorchCheckpointIO

            from seq2text.tasks.checkpoint_io import AtomicCheckpointIO
            trainer = super().instantiate_trainer(**kwargs)
            trainer.callbacks.extend([ExactResume(), StartupTime(_COMMAND_START, imports_done)])
            if not trainer.progress_bar_callback:  # otherwise the bar shows the same after each epoch
                trainer.callbacks.append(ValidationLine())
            if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # not a plugin the recipe chose
                trainer.strategy.checkpoint_io = AtomicCheckpointIO()
            budget = (self.config[self.subcommand] if self.subcommand else self.config).get("budget")
            if budget:
                trainer.callbacks.append(WallClockBudget(budget))
            return trainer

        def before_instantiate_classes(self) -> None:
            """Refuses a precision the hardware cannot run before any class is built or file written."""
            from seq2text.hardware import resolve_precision
            trainer = (self.config[self.subcommand] if self.subcommand else self.config).get("trainer") or {}
            resolve_precision(trainer.get("precision"), trainer.get("accelerator") or "auto")

        def before_fit(self) -> None:
            from seq2text.bundles.io import check_bundle_target
            bundle = self.config[self.subcommand].get("bundle")
            if bundle:  # fail before training, not after it
                check_bundle_target(bundle)

        def _parse_ckpt_path(self) -> None:
            """Checks `--ckpt_path` before Lightning takes the model's hyperparameters from it."""
            subcommand = self.config.get("subcommand")
            ckpt = self.config[subcommand].get("ckpt_path") if subcommand else None
            if ckpt and ckpt not in ("last", "best", "hpc", "registry"):
                from seq2text.tasks.checkpoint_io import check_checkpoint
                check_checkpoint(ckpt, self.config[subcommand].get("model"))
            super()._parse_ckpt_path()

        def after_fit(self) -> None:
            from seq2text.bundles.io import export_bundle
            config = self.config[self.subcommand]
            metrics = {k: float(v) for k, v in self.trainer.callback_metrics.items() if k.startswith("val/")}
            for callback in self.trainer.callbacks:
                if isinstance(callback, WallClockBudget):
                    metrics["train_seconds"] = callback.elapsed()
            metrics["global_step"] = self.trainer.global_step
            metrics["epochs"] = self.trainer.current_epoch
            if config.get("test_after_fit"):
                results = self.trainer.test(self.model, datamodule=self.datamodule, verbose=False)
                metrics.update({k: float(v) for k, v in results[0].items()})
            metrics.update(getattr(self.model, "bundle_metrics", dict)())  # e.g. sacreBLEU signatures
            choice = getattr(self.trainer, "precision_choice", None)
            if choice is not None:
                metrics.update(choice.as_record())
            if self.trainer.is_global_zero:
                target = config.get("bundle") or Path(self.trainer.log_dir or ".") / "bundle"
                path = export_bundle(self.model, self.datamodule, target, metrics)
                shown = {k: round(v, 4) for k, v in metrics.items()
                         if k.startswith(("test/", "val/")) and isinstance(v, int | float)}
                print(f"\nbundle: {path}\nmetrics: {json.dumps(shown)}\n"
                      f"use it: python -c \"import seq2text; m = seq2text.load('{path}'); ...\"", flush=True)

    return Seq2TextCLI


def _lightning_main(args: list[str]) -> None:
    check_moved_keys(args)
    from seq2text.cli.tuning import split_tune_options, tune_main
    args, tune = split_tune_options(args)
    if tune:  # seq2text fit --tune 10m: a forecaster configured automatically (seq2text.tasks.tuning)
        tune_main(args, tune)
        return
    cli_class = _lightning_cli_class()
    cli_class(model_class=None, datamodule_class=None, subclass_mode_model=True, subclass_mode_data=True,
              args=args, save_config_kwargs={"overwrite": True}, auto_configure_optimizers=False)


def _prepare(args: argparse.Namespace, extra: list[str]) -> None:
    """`seq2text prepare`: a recipe's splits (with `--data.KEY VALUE` overrides), or corpus files."""
    import yaml

    from seq2text.data.prepare import describe, prepare_files, prepare_recipe
    if (args.config is None) == (args.input is None):
        raise Seq2TextError("give --config RECIPE (every split of its data) or --input FILES --tokenizer-model M")
    start = time.perf_counter()
    if args.input is not None:
        if args.tokenizer_model is None or extra:
            raise Seq2TextError(f"--input needs --tokenizer-model and takes no {' '.join(extra) or 'other'} options")
        caches = {"corpus": prepare_files(args.input, args.tokenizer_model, args.name, args.output_dir, args.workers)}
    else:
        if len(extra) % 2 or not all(key.startswith("--data.") for key in extra[::2]):
            raise Seq2TextError(f"unexpected {' '.join(extra)}: overrides come in pairs, --data.KEY VALUE")
        overrides = {key.removeprefix("--data.").removeprefix("init_args."): yaml.safe_load(value)
                     for key, value in zip(extra[::2], extra[1::2], strict=True)}
        caches = prepare_recipe(args.config, overrides)
        if not caches:
            raise Seq2TextError(f"{args.config}: this data module reads its data directly; nothing to prepare")
    for split, cache in caches.items():
        print(describe(split, cache))
    print(f"ready in {time.perf_counter() - start:.1f} s")
