"""`seq2text fit --config RECIPE --tune 10m [--tune_trials 20] [--tune_folds 1] [--tune_members 5]
[--tune_seeds 1] [--tune_calibration_folds 1] [--tune_searches 3] [--tune_workers N] [--tune_band series|local]
[--tune_linear true|false]
[--tune_online true|false] [--tune_adapt RATE] [--tune_decay K] [--tune_recency true|false]
[--tune_dropout true|false] [--tune_space full|compact]
[--tune_combine median|mean|median-point] [--tune_selection best|forward] [--tune_transform rule|validation]
[--tune_start none|portfolio|FILE.json]`: the recipe's forecaster configured automatically (`seq2text.tasks.tuning`),
its bundle written with the search record and the band's calibration."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from seq2text.errors import ConfigError

__all__ = ["TUNE_ARGUMENTS", "TUNE_OPTIONS", "quiet_worker", "split_tune_options", "start_configurations", "tune_main"]

TUNE_ARGUMENTS: dict[str, tuple[type, str]] = {  # option: (type, help), as `seq2text fit --help` lists them
    "--tune": (str, "forecasters: search the configuration on the validation part for this long (e.g. 10m; Optuna, "
                    "pip install seq2text[tune]), then refit (docs/forecasting.md)"),
    "--tune_trials": (int, "with or instead of --tune: stop the search after this many trials"),
    "--tune_folds": (int, "with --tune: rolling-origin validation blocks each trial is scored on (default 1)"),
    "--tune_members": (int, "with --tune: the bundle averages this many best configurations (default 5)"),
    "--tune_seeds": (int, "with --tune: the refit trains each member from this many seeds and averages them all "
                          "(default 1)"),
    "--tune_calibration_folds": (int, "with --tune: validation blocks the band is calibrated on (default 1)"),
    "--tune_searches": (int, "with --tune: independent searches (seeds seed, seed + 1, ...; --tune_trials each, the "
                             "--tune time shared), the --tune_members best of each refitted and combined (default 3)"),
    "--tune_workers": (int, "with --tune: run this many searches, then refits, side by side in worker processes "
                            "(default: one per usable core; 1: one after another); the same result"),
    "--tune_band": (str, "with --tune: the calibrated band's units: series (one width per series, the default) or "
                         "local (widens where the series moved more lately)"),
    "--tune_linear": (str, "with --tune: also search the linear autoregression (true, or false: the default)"),
    "--tune_online": (str, "with --tune: the band adds the errors of the windows a history holds after the fit to "
                           "its calibration at each forecast (true: the default, or false)"),
    "--tune_adapt": (str, "with --tune and an online band: the rate of adaptive conformal inference over the windows "
                          "after the fit (default 0.05; 0: none)"),
    "--tune_decay": (str, "with --tune and an online band: each error's weight in the band halves every K × "
                          "max(season, horizon) steps of its age (default 0: none)"),
    "--tune_recency": (str, "with --tune on a panel: also search the training windows' recency half-life "
                            "(data.recency: none, 0.25 or 0.5; true, or false: the default)"),
    "--tune_dropout": (str, "with --tune: also search the network's dropout (none, 0.1 or 0.3; true, or false: the "
                            "default, the recipe's)"),
    "--tune_space": (str, "with --tune: the search space: full (the default) or compact (GRU, one layer and the "
                          "calendar feature fixed: fewer choices for the same trials)"),
    "--tune_combine": (str, "with --tune: how the ensemble's networks combine: median (the default), mean, or "
                            "median-point (the point forecasts' median, the band edges' mean)"),
    "--tune_selection": (str, "with --tune: the ensemble's configurations: best (the --tune_members best, the "
                              "default) or forward (forward selection on the validation MASE of their combination)"),
    "--tune_transform": (str, "with --tune and data.transform auto: rule (the range-mean rule's pick, the default) or "
                              "validation (the search chooses between the rule's pick and none)"),
    "--tune_start": (str, "with --tune: configurations tried first: portfolio (each development series' best), none "
                          "(the default) or a JSON file holding a list of configurations"),
}
TUNE_OPTIONS = tuple(TUNE_ARGUMENTS)
COUNTS = {"--tune_trials": ("trials", None), "--tune_folds": ("validation blocks", 1),
          "--tune_members": ("ensemble members", 5), "--tune_seeds": ("seeds", 1),
          "--tune_calibration_folds": ("calibration blocks", 1),
          "--tune_searches": ("searches", 3),
          "--tune_workers": ("worker processes", None)}  # option: (what it counts, default; None: decided later)
LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning_fabric")  # their INFO lines: per fit, not per trial
# option: the TrialSettings field it sets
BOOLEANS = {"--tune_linear": "linear", "--tune_online": "online", "--tune_recency": "recency",
            "--tune_dropout": "dropout"}


def split_tune_options(args: list[str]) -> tuple[list[str], dict[str, str]]:
    """`args` without the tuning options, and those options (`--tune 10m`, `--tune=10m`, `--tune_trials 30`)."""
    rest, found, words = [], {}, iter(args)
    for word in words:
        option, eq, value = word.partition("=")
        if option in TUNE_OPTIONS:
            value = value if eq else next(words, None)
            if value is None or value.startswith("--"):
                raise ConfigError(f"{option} needs a value, e.g. --tune 10m or --tune_trials 30")
            found[option] = value
        else:
            rest.append(word)
    return rest, found


def tune_main(args: list[str], options: dict[str, str]) -> None:
    """Tunes, refits and writes the bundle; `args` start with the subcommand (only `fit` tunes)."""
    from seq2text.tasks.callbacks import parse_duration
    from seq2text.tasks.tuning import TuningBudget

    if args[:1] != ["fit"]:
        raise ConfigError(f"{' and '.join(options)} go with `seq2text fit` (not {args[:1] or 'no command'})")
    counts = {}
    for option, (what, default) in COUNTS.items():
        value = options.get(option)
        if value is not None and (not value.isdigit() or int(value) < 1):
            raise ConfigError(f"{option} {value}: give a positive whole number of {what}")
        counts[option] = default if value is None else int(value)
    for option in BOOLEANS:
        if options.get(option, "true") not in ("true", "false"):
            raise ConfigError(f"{option} {options[option]}: give true or false")
    choices = {name: options[option] == "true" for option, name in BOOLEANS.items() if option in options}
    for option, name in (("--tune_band", "band"), ("--tune_selection", "selection"), ("--tune_transform", "transform"),
                         ("--tune_combine", "combine"), ("--tune_space", "space")):  # TrialSettings checks them
        if option in options:
            choices[name] = options[option]
    for option, name, example in (("--tune_adapt", "adapt", "a number in [0, 1), e.g. 0.01"),
                                  ("--tune_decay", "decay", "a half-life ≥ 0, e.g. 2")):  # TrialSettings checks range
        if option in options:
            try:
                choices[name] = float(options[option])
            except ValueError:
                raise ConfigError(f"{option} {options[option]}: give {example}") from None
    choices["start"] = start_configurations(options.get("--tune_start", "none"))
    budget = (parse_duration(options["--tune"]) if "--tune" in options else None, counts["--tune_trials"])
    cli = _parse(args[1:])
    config = cli.config
    seed = config.get("seed_everything")
    budget = TuningBudget(*budget, seed=int(seed) if isinstance(seed, int) and not isinstance(seed, bool) else 0)
    budget.check()
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:  # one line per trial, not Lightning's per fit (for this search only)
        logger.setLevel(logging.WARNING)
    try:
        _tune_and_export(cli, budget, counts, choices)
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def quiet_worker() -> None:
    """A worker process of side-by-side searches starts so (`tune_forecaster`'s `worker_setup`): its console shows
    seq2text's lines only, as the search in this process does."""
    from seq2text.cli import quiet_dependencies

    quiet_dependencies()
    for name in LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def start_configurations(value: str) -> tuple[dict, ...]:
    """The configurations `--tune_start` names: none, the built-in portfolio, or a JSON file's list (or mapping of
    names to configurations); `TrialSettings` checks each."""
    from seq2text.tasks.tuning import PORTFOLIO

    if value in ("none", "portfolio"):
        return tuple(PORTFOLIO.values()) if value == "portfolio" else ()
    path = Path(value)
    if not path.is_file():
        raise ConfigError(f"--tune_start {value}: no such file; give none, portfolio or a JSON file of configurations")
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"--tune_start {value}: not UTF-8 JSON ({error}); give a list of configurations such as "
                          '[{"lookback_seasons": 2, "rnn_type": "gru"}]') from None
    configurations = list(loaded.values()) if isinstance(loaded, dict) else loaded
    if not isinstance(configurations, list) or not configurations:
        raise ConfigError(f"--tune_start {value}: give a non-empty list of configurations (or a mapping of names to "
                          "them)")
    return tuple(configurations)


def _parse(args: list[str]) -> object:
    """The recipe parsed and its classes built by LightningCLI (nothing run); a forecasting recipe only."""
    from seq2text.cli.training import _lightning_cli_class, recipe_model_class

    class_path = recipe_model_class(args)
    if not str(class_path).endswith("ForecastingTask"):
        raise ConfigError(f"--tune configures forecasters; this recipe's model is {class_path}. Use a forecasting "
                          "recipe (e.g. recipes/forecast_auto.yaml) or drop --tune")
    return _lightning_cli_class()(model_class=None, datamodule_class=None, subclass_mode_model=True,
                                  subclass_mode_data=True, args=args, run=False, save_config_callback=None,
                                  auto_configure_optimizers=False)


def _tune_and_export(cli: object, budget: object, counts: dict[str, int], choices: dict) -> None:
    from seq2text.bundles.io import check_bundle_target, export_bundle
    from seq2text.hardware import resolve_precision, usable_cores
    from seq2text.tasks.tuning import TrialSettings, ensemble_test_scores, tune_forecaster

    config, trainer = cli.config, cli.config.get("trainer") or {}
    if config.get("budget"):
        raise ConfigError("--budget times one fit; with --tune, --tune is the search's time and trainer.max_epochs "
                          "each trial's length: drop --budget")
    target = Path(config.get("bundle") or Path(cli.trainer.log_dir or "runs") / "bundle")
    check_bundle_target(target)
    settings = TrialSettings(max_epochs=trainer.get("max_epochs") or 30, min_steps=trainer.get("min_steps") or 0,
                             check_every=trainer.get("check_val_every_n_epoch") or 5,
                             precision=trainer.get("precision") or "auto",
                             gradient_clip_val=trainer.get("gradient_clip_val"),
                             folds=counts["--tune_folds"], members=counts["--tune_members"],
                             seeds=counts["--tune_seeds"], calibration_folds=counts["--tune_calibration_folds"],
                             searches=counts["--tune_searches"],
                             workers=counts["--tune_workers"] or usable_cores(),
                             **choices)
    result = tune_forecaster(cli.datamodule, cli.model, budget, settings, log=lambda line: print(line, flush=True),
                             worker_setup=quiet_worker)
    search = result.record
    metrics = {"val/mase": search["ensemble"]["valid_mase"], "search": search,
               **resolve_precision(settings.precision, trainer.get("accelerator") or "auto").as_record()}
    if config.get("test_after_fit") and result.data.has_test():  # the ensemble's, its calibrated band's coverage
        metrics.update(ensemble_test_scores(result))
    path = export_bundle(result.task, result.data, target, metrics)
    shown = {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)}
    print(f"\nbundle: {path}\nchosen: {json.dumps(search['chosen'])}\nmetrics: {json.dumps(shown)}\n"
          f"trials: {search['completed']} completed, {search['pruned']} pruned in {search['search_seconds']} s",
          flush=True)
