"""Automatic configuration of a forecaster (`seq2text fit --tune`): Optuna searches on the validation part only, an
ensemble of the best configurations refitted on training + validation, and the band of their median calibrated
(conformal) on validation blocks.

    data.view("valid", back=b, ...)  block b: train | valid cut b validation lengths before the test part (b = 0: the
        validation part itself); the tuner never reads test
      → `searches` (default 3) searches with seeds seed, seed + 1, ... (side by side in worker processes where there
        are cores: `workers`), each of `trials` trials: TPE (seeded) over lookback, width, depth, cell, highway,
        normalisation, calendar, learning rate, loss (and, for a panel, the series embedding); each trial trains on
        the training part of each of `folds` blocks (default 1) and is scored by the mean of their validation MASE
        (rolling origins, stride 1, as the test protocol); the median pruner stops a trial whose running score is
        worse than the median of earlier trials at the same point (block 0's epochs, then each further block)
      → the `members` (default 5) best configurations of each search, pooled: their median forecasts of each of
        `calibration_folds` blocks (default 1; each member trained before each further block) give the band's
        conformal offsets (`predict.conformal`)
    data.view("test", ...)  each member retrained on train + valid (same epochs; side by side in worker processes
        too, as the searches); the bundle forecasts with their median (`combine`)

The defaults were chosen on development series only (benchmarks/forecast.py forecast_dev: twelve series and panels,
never the benchmark series), each by a rule committed before its run; docs/forecasting.md (Automatic configuration)
lists every option that was tried, its record in benchmarks/results/ and why it is on or off by default.

The search stops after `trials` trials or `seconds` of wall-clock time, whichever comes first; with a trial count
and no time cap hit, the result depends on the seed only, not on the machine's speed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import pytorch_lightning as pl
import torch

from seq2text.errors import ConfigError, DataError
from seq2text.predict.conformal import BAND, calibrated_band, conformal_scores, offsets_of, summarised
from seq2text.predict.forecaster import COMBINATIONS, reducer
from seq2text.predict.metrics import forecast_scores, forecast_sums
from seq2text.tasks.forecasting import ForecastingTask
from seq2text.tasks.trainer import Trainer
from seq2text.text.series import powered

__all__ = ["PORTFOLIO", "SEARCH_SPACE", "SPACES", "TrialSettings", "TuningBudget", "TuningResult",
           "ensemble_test_scores", "tune_forecaster"]

SEARCH_SPACE: dict[str, tuple] = {
    "lookback_seasons": (1, 2, 3, 4),  # the lookback in units of max(season, horizon)
    "hidden_size": (16, 32, 64, 128),
    "num_layers": (1, 2),
    "rnn_type": ("lstm", "gru", "linear"),  # linear: no recurrent stack, the highway over the lookback alone
    "highway": ("none", "season", "lookback"),  # the linear autoregressive highway's steps
    "normalize": ("series", "window"),
    "calendar": (False, True),  # the calendar feature of the time step (month, day of week, hour), dated series only
    "lr": (1e-3, 3e-2),  # log-uniform
    "loss": ("quantile", "mae", "huber"),
    "series_embedding": (0, 4, 16),  # panels only
    "recency": (0.0, 0.25, 0.5),  # panels only, with TrialSettings.recency: data.recency's half-life (0: none)
    "dropout": (0.0, 0.1, 0.3),  # with TrialSettings.dropout: network.dropout (else the recipe's)
}
# Named search spaces (TrialSettings.space): the values each fixes instead of drawing. compact: the three choices the
# development sets' trials told apart least (fANOVA importance of the validation score, twelve sets, two records:
# rnn_type 0.021, num_layers 0.05, calendar 0.052), each at the value whose trials ranked better on validation there.
SPACES: dict[str, dict[str, Any]] = {"full": {}, "compact": {"rnn_type": "gru", "num_layers": 1, "calendar": True}}
CALENDAR_OF_STEP = {"M": "month", "Q": "month", "W": "dayofyear", "D": "dayofweek", "B": "dayofweek", "H": "hour"}
# Each development series' best configuration by its validation score (forecast_dev_linear at b5a738c, variant
# 1x5-nolinear: benchmarks/results/forecast_dev_linear.json `chosen`), the lookback in units of max(season, horizon):
# the configurations `--tune_start portfolio` tries first. Never a benchmark series'.
PORTFOLIO: dict[str, dict] = {
    "lynx": {"lookback_seasons": 3, "hidden_size": 128, "num_layers": 1, "rnn_type": "gru", "highway": "none",
             "normalize": "series", "loss": "huber", "lr": 0.003253},
    "wineind": {"lookback_seasons": 2, "hidden_size": 32, "num_layers": 1, "rnn_type": "gru", "highway": "season",
                "normalize": "series", "loss": "huber", "lr": 0.02782, "calendar": True},
    "woolyrnq": {"lookback_seasons": 4, "hidden_size": 64, "num_layers": 1, "rnn_type": "gru", "highway": "season",
                 "normalize": "series", "loss": "mae", "lr": 0.009286, "calendar": True},
    "airpassengers": {"lookback_seasons": 2, "hidden_size": 32, "num_layers": 1, "rnn_type": "lstm",
                      "highway": "season", "normalize": "series", "loss": "mae", "lr": 0.0282, "calendar": False},
    "ausbeer": {"lookback_seasons": 2, "hidden_size": 64, "num_layers": 1, "rnn_type": "gru", "highway": "lookback",
                "normalize": "series", "loss": "huber", "lr": 0.01416, "calendar": True},
    "elnino": {"lookback_seasons": 3, "hidden_size": 64, "num_layers": 2, "rnn_type": "gru", "highway": "none",
               "normalize": "series", "loss": "mae", "lr": 0.006224, "calendar": True},
    "fertility_panel": {"lookback_seasons": 1, "hidden_size": 32, "num_layers": 1, "rnn_type": "gru",
                        "highway": "lookback", "normalize": "window", "loss": "quantile", "lr": 0.01784,
                        "series_embedding": 0},
}


class SeriesViews(Protocol):
    """What the tuner needs of the data (`seq2text.data.SeriesDataModule`)."""

    reading: Any

    def view(self, fit_until: str, **changes: Any) -> Any: ...  # noqa: ANN401, D102

    def training_steps(self, back: int = 0) -> int: ...  # noqa: D102

    def transform_choices(self) -> tuple[str, ...]: ...  # noqa: D102


@dataclass(frozen=True)
class TuningBudget:
    """When the search stops: after `trials` trials or `seconds` of wall-clock time, whichever comes first.

    Attributes:
        seconds: the wall-clock cap of the search (the refit comes on top); None: none.
        trials: the number of trials; None: as many as `seconds` allows.
        seed: seeds the sampler and every trial's initialisation and batch order.
    """

    seconds: float | None = None
    trials: int | None = None
    seed: int = 0

    def check(self) -> None:
        if self.seconds is None and self.trials is None:
            raise ConfigError("--tune needs a time budget (e.g. --tune 10m) or a trial count (--tune_trials 30)")
        if (self.seconds is not None and self.seconds <= 0) or (self.trials is not None and self.trials < 1):
            raise ConfigError("--tune must be a positive duration and --tune_trials a positive integer")


@dataclass(frozen=True)
class TrialSettings:
    """How each trial and the refit train (from the recipe's trainer section).

    Attributes:
        max_epochs: epochs of every trial and of the refit.
        min_steps: at least this many optimizer steps (the recipe's `trainer.min_steps`): a fit trains
            max(max_epochs, ⌈min_steps / its batches per epoch⌉) epochs, so a short series, whose epoch is a few
            batches, trains as many steps as a long one (0: max_epochs).
        check_every: validate (and report to the pruner) every this many epochs (or the largest divisor of the fit's
            epochs below it, `validation_every`: the last epoch is always validated).
        folds: rolling-origin validation blocks each trial is scored on (fewer if the series are too short).
        members: the refit trains the configurations of this many best trials (by their cross-validation score) and
            the bundle forecasts with their median (`combine`; 1: the best alone).
        searches: independent searches (`search_budgets`: seeds seed, seed + 1, ...; each `trials` trials, the time
            cap shared), pooled: the `members` best of each are refitted (each from its search's seed) and combined,
            so the ensemble owes less to one search's path.
        workers: the searches, then the members' refits, run this many at a time, side by side in worker processes
            (`seq2text.tasks.workers`), each with its share of the threads (1: one after another in this process).
            Each search and fit is seeded: the outcome is the same, the wall time shorter where there are cores.
        seeds: the refit trains each of those configurations this many times, from the seeds seed, seed + 1, ...
            (initialisation and batch order), and the bundle averages them all: a mean over seeds lowers the variance
            a single network's forecast owes to its initialisation. The band's calibration stays that of the
            seed-`seed` members' validation forecasts (and, online, of the whole ensemble's windows after the fit).
        calibration_folds: validation blocks the band is calibrated on (at least `folds`; fewer if the members'
            lookbacks leave no room): the members trained before each further block forecast it.
        band: the calibrated band's units (`calibrate`): `series` or `local`; the record keeps the other's too.
        linear: search the linear autoregression (`rnn_type` linear: the highway alone) beside the recurrent cells.
        online: the bundle's band adds the scores of the windows a history holds after the fit (each window's
            true values past the training part's end) to the validation part's before it widens (`Forecaster`):
            calibration that follows the series as it goes on (False: the validation part's alone).
        combine: how the ensemble's networks combine, in its calibration and its bundle (`Forecaster.combine`):
            `median` (each point and band edge the networks' median), `mean`, or `median-point` (the point forecasts'
            median, the band edges' mean).
        selection: how the ensemble's configurations are chosen (`select_members`): `best`, the `members` with
            the best validation scores, or `forward`, forward selection on the validation MASE of their
            combination.
        transform: how the values' power transform is chosen where the data's is `auto`: `rule`, the range-mean
            rule's pick (`power_choice`); `validation`, the search draws it too, among the rule's pick and none
            (`transform_choices`), every trial scored in the values as read (`raw_scores`), and the ensemble is the
            best trials with the best one's transform.
        recency: a panel's search also draws the training windows' recency half-life (`data.recency`, a share of the
            training part) among SEARCH_SPACE["recency"]; one series keeps the data's (False: every trial the data's).
        dropout: the search also draws the network's dropout (`network.dropout`) among SEARCH_SPACE["dropout"]
            (False: every trial the recipe's).
        space: the named search space (SPACES): `full`, or `compact` (GRU, one layer, the calendar feature where the
            time step has one: fewer choices for the same trials).
        adapt: with `online`, the rate γ of adaptive conformal inference over those windows (0: the nominal level):
            a band that lately missed more than 20 % of the values widens, one that missed fewer narrows. None:
            ADAPT with an online band, else 0.
        decay: with `online`, each score's weight in the band's quantile halves every `decay` × max(season, horizon)
            steps of its age (`seq2text.predict.conformal.decayed`; 0: every score the same).
        start: configurations tried first, in order, and never pruned (a portfolio that did well on other series,
            e.g. PORTFOLIO's; `check_configuration`): the search then goes on from them. Each gives the lookback
            in units of max(season, horizon) (`lookback_seasons`) or in steps (`lookback`); what it leaves out is
            drawn.
        precision: the trainer's precision (`auto`: from the hardware).
        gradient_clip_val: gradient norm clipping (None: none).
    """

    max_epochs: int = 30
    min_steps: int = 0
    check_every: int = 5
    folds: int = 1
    members: int = 5
    searches: int = 3
    workers: int = 1
    seeds: int = 1
    calibration_folds: int = 1
    band: str = "series"
    linear: bool = False
    online: bool = True
    recency: bool = False
    dropout: bool = False
    space: str = "full"
    adapt: float | None = None
    decay: float = 0.0
    combine: str = "median"
    selection: str = "best"
    transform: str = "rule"
    start: tuple[dict, ...] = ()
    precision: str | int = "auto"
    gradient_clip_val: float | None = 1.0

    def __post_init__(self) -> None:
        for name, option in (("seeds", "--tune_seeds"), ("searches", "--tune_searches"), ("workers", "--tune_workers")):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} {getattr(self, name)} ({option}): give a positive whole number")
        if self.band not in UNITS:
            raise ConfigError(f"band {self.band!r} (--tune_band): give one of {', '.join(UNITS)}")
        if self.combine not in COMBINATIONS:
            raise ConfigError(f"combine {self.combine!r} (--tune_combine): give one of {', '.join(COMBINATIONS)}")
        if self.selection not in SELECTIONS:
            raise ConfigError(f"selection {self.selection!r} (--tune_selection): give one of {', '.join(SELECTIONS)}")
        if self.space not in SPACES:
            raise ConfigError(f"space {self.space!r} (--tune_space): give one of {', '.join(SPACES)}")
        if self.linear and "rnn_type" in SPACES[self.space]:
            raise ConfigError(f"--tune_linear true draws the cell, and --tune_space {self.space} fixes it; give one")
        if self.transform not in TRANSFORM_CHOICES:
            raise ConfigError(f"transform {self.transform!r} (--tune_transform): give one of "
                              f"{', '.join(TRANSFORM_CHOICES)}")
        if self.adapt is None:
            object.__setattr__(self, "adapt", ADAPT if self.online else 0.0)
        if not 0 <= self.adapt < 1 or (self.adapt and not self.online):
            raise ConfigError(f"adapt {self.adapt} (--tune_adapt): give a rate in [0, 1), with an online band "
                              "(--tune_online true)")
        if not self.decay >= 0 or (self.decay and not self.online):
            raise ConfigError(f"decay {self.decay} (--tune_decay): give a half-life ≥ 0 in units of max(season, "
                              "horizon), with an online band (--tune_online true)")
        for number, configuration in enumerate(self.start):
            check_configuration(configuration, self.linear, f"start configuration {number}")
            clash = {k: v for k, v in configuration.items() if SPACES[self.space].get(k, v) != v}
            if clash:
                raise ConfigError(f"start configuration {number} sets {clash}, which --tune_space {self.space} fixes "
                                  f"to {({k: SPACES[self.space][k] for k in clash})}; drop them or use the full space")


@dataclass
class TuningResult:
    """The refitted task and its data (train + valid | test), the search record the bundle keeps, and every member
    of the ensemble (the task first) with its data."""

    task: ForecastingTask
    data: Any
    record: dict = field(default_factory=dict)
    members: list[tuple[ForecastingTask, Any]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------- the space
def _unit(reading: Any) -> int:  # noqa: ANN401
    return max(reading.season, reading.horizon)


def _fits(lookback: int, reading: Any, training_steps: int) -> bool:  # noqa: ANN401
    """Whether `lookback` leaves at least 2 × horizon training windows in a training part of `training_steps`."""
    return lookback + 3 * reading.horizon <= training_steps


def lookback_choices(reading: Any, training_steps: int) -> list[int]:  # noqa: ANN401
    """Lookbacks of 1 to 4 × max(season, horizon) that fit (`_fits`) the shortest series' training part of
    `training_steps`."""
    fits = [k * _unit(reading) for k in SEARCH_SPACE["lookback_seasons"]
            if _fits(k * _unit(reading), reading, training_steps)]
    if not fits:
        raise ConfigError(f"the shortest series' training part has {training_steps} steps, too few for a lookback of "
                          f"max(season, horizon) = {_unit(reading)} plus 3 × horizon = {3 * reading.horizon}; give "
                          "a longer series, a smaller data.valid_size / data.test_size, or a shorter data.horizon")
    return fits


def search_space(linear: bool, recency: bool = True, dropout: bool = True, space: str = "full") -> dict[str, tuple]:
    """SEARCH_SPACE, without the linear cell unless `linear`, without the recency half-life unless `recency`, without
    the dropout unless `dropout`; the values SPACES[`space`] fixes as one-value choices."""
    left_out = {name for name, kept in (("recency", recency), ("dropout", dropout)) if not kept}
    return {**{k: v for k, v in SEARCH_SPACE.items() if k not in left_out},
            "rnn_type": tuple(c for c in SEARCH_SPACE["rnn_type"] if linear or c != "linear"),
            **{k: (v,) for k, v in SPACES[space].items()}}


def suggest(trial: Any, reading: Any, lookbacks: list[int], panel: bool,  # noqa: ANN401
            settings: TrialSettings | None = None, transforms: tuple[str, ...] = ()) -> dict:
    """One trial's configuration, drawn by `trial` (an optuna.Trial) from the space `settings` search (its linear
    cell, recency half-life, dropout and named space; None: the defaults'); `transforms`: the power transforms to draw
    from (fewer than two: the data's own). What the named space fixes is not drawn."""
    settings = settings or TrialSettings()
    space = search_space(settings.linear, settings.recency, settings.dropout, settings.space)

    def draw(name: str) -> Any:  # noqa: ANN401
        return space[name][0] if name in SPACES[settings.space] else trial.suggest_categorical(name, space[name])

    params = {"lookback": trial.suggest_categorical("lookback", lookbacks),
              **{name: draw(name) for name in ("hidden_size", "num_layers", "rnn_type", "highway", "normalize",
                                               "loss")},
              "lr": trial.suggest_float("lr", *space["lr"], log=True)}
    if _calendar_feature(reading) is not None:
        params["calendar"] = draw("calendar")
    if panel:
        params["series_embedding"] = draw("series_embedding")
        if settings.recency:
            params["recency"] = draw("recency")
    if len(transforms) > 1:
        params["transform"] = trial.suggest_categorical("transform", transforms)
    if settings.dropout:
        params["dropout"] = draw("dropout")
    return params


def check_configuration(configuration: dict, linear: bool, where: str) -> None:
    """Refuses a configuration to start from (`TrialSettings.start`) with names or values outside the space."""
    if not isinstance(configuration, dict):
        raise ConfigError(f"{where}: give a mapping of names to values, e.g. {json.dumps(PORTFOLIO['lynx'])}")
    space = {**search_space(linear), "lookback": None}
    for name, value in configuration.items():
        if name not in space:
            raise ConfigError(f"{where}: unknown name {name!r}; known: {', '.join(space)}")
        if name == "lookback" and not (isinstance(value, int) and value > 0):
            raise ConfigError(f"{where}: lookback {value!r}: give a positive whole number of steps")
        if name == "lr" and not (isinstance(value, float | int) and space["lr"][0] <= value <= space["lr"][1]):
            raise ConfigError(f"{where}: lr {value!r}: give a number from {space['lr'][0]} to {space['lr'][1]}")
        if name not in ("lookback", "lr") and value not in space[name]:
            raise ConfigError(f"{where}: {name} {value!r}: give one of {', '.join(map(str, space[name]))}")
    if "lookback" in configuration and "lookback_seasons" in configuration:
        raise ConfigError(f"{where}: give lookback or lookback_seasons, not both")


def start_params(configuration: dict, reading: Any, lookbacks: list[int], panel: bool) -> dict:  # noqa: ANN401
    """A configuration to start from as the trial's parameters: its lookback the longest of `lookbacks` up to the one
    it asks for (the shortest if none), the calendar, series embedding and recency only where the data have them."""
    params = {k: v for k, v in configuration.items()
              if k not in ("lookback_seasons", "calendar", "series_embedding", "recency")}
    wanted = configuration.get("lookback") or configuration.get("lookback_seasons", 0) * _unit(reading)
    if wanted:
        params["lookback"] = max((k for k in lookbacks if k <= wanted), default=min(lookbacks))
    if _calendar_feature(reading) is not None and "calendar" in configuration:
        params["calendar"] = configuration["calendar"]
    for name in ("series_embedding", "recency"):
        if panel and name in configuration:
            params[name] = configuration[name]
    return params


def _calendar_feature(reading: Any) -> str | None:  # noqa: ANN401
    letters = (reading.step or "").lstrip("0123456789").upper()
    if reading.calendar or not letters[:1].isalpha() or letters.startswith("MIN"):
        return None  # a recipe's own calendar, or a numeric time column
    return CALENDAR_OF_STEP.get(letters[:1])


def data_changes(params: dict, reading: Any) -> dict:  # noqa: ANN401
    """The data module's options of a configuration."""
    changes = {"lookback": params["lookback"], "normalize": params["normalize"]}
    if params.get("calendar"):
        changes["calendar"] = [_calendar_feature(reading)]
    if "transform" in params:
        changes["transform"] = params["transform"]
    if "recency" in params:
        changes["recency"] = params["recency"]
    return changes


def make_task(base: ForecastingTask, params: dict, reading: Any) -> ForecastingTask:  # noqa: ANN401
    """A fresh task with the recipe's settings but the configuration's."""
    highway = {"none": 0, "season": min(reading.season, params["lookback"]), "lookback": params["lookback"]}
    if params["rnn_type"] == "linear":  # a linear autoregression of the whole lookback (nn.regressor, num_layers 0)
        network = replace(base.network, num_layers=0, autoregressive=params["lookback"], series_embedding=0)
    else:
        network = replace(base.network, hidden_size=params["hidden_size"], num_layers=params["num_layers"],
                          rnn_type=params["rnn_type"], autoregressive=highway[params["highway"]],
                          series_embedding=params.get("series_embedding", base.network.series_embedding),
                          dropout=params.get("dropout", base.network.dropout))
    quantiles = list(BAND[:1]) + [0.5] + list(BAND[1:]) if params["loss"] == "quantile" else None
    objective = replace(base.objective, loss=params["loss"], quantiles=quantiles)
    return ForecastingTask(network=network, objective=objective, optim=replace(base.optim, lr=params["lr"]))


# ---------------------------------------------------------------------------------------------------- trials
FOLD_STEPS = 1_000_000  # the pruner's steps of block b start at b × FOLD_STEPS (then one per epoch)


class _Report(pl.Callback):
    """Reports the trial's running score to the Optuna trial (the mean of the finished folds' MASE and this fold's
    latest) at step `offset` + epoch; stops the fit when the pruner says so. With `raw` (the fold's data), this
    fold's MASE is of the values as read (`raw_scores`), else the task's validation MASE."""

    def __init__(self, trial: Any, finished: list[float], offset: int, prunable: bool,  # noqa: ANN401
                 raw: Any = None) -> None:  # noqa: ANN401
        self.trial, self.finished, self.offset, self.pruned, self.history = trial, finished, offset, False, []
        self.prunable, self.raw = prunable, raw

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = _score(trainer) if self.raw is None else _raw_mase(band_forecasts(pl_module.net, self.raw, "valid"),
                                                                   self.raw)  # the loop then restores the mode
        self.history.append(round(value, 5))
        self.trial.report(float(np.mean([*self.finished, value])), step=self.offset + trainer.current_epoch)
        if self.prunable and self.trial.should_prune():
            self.pruned, trainer.should_stop = True, True


def _raw_mase(forecasts: dict[str, np.ndarray], data: Any) -> float:  # noqa: ANN401
    """The MASE of `band_forecasts` of `data`'s validation windows in the values as read (`raw_scores`)."""
    return _finite(scores_of(raw_scores(forecasts, data))["mase"])


def _score(trainer: pl.Trainer) -> float:
    return _finite(float(trainer.callback_metrics.get("val/mase", math.inf)))


def _finite(value: float) -> float:
    """A trial's score as the pruner and sampler take it: 1e6 for a diverged fit."""
    return value if math.isfinite(value) else 1e6


def epochs_of(data: Any, settings: TrialSettings) -> int:  # noqa: ANN401
    """The epochs a fit on `data`'s training part trains: max_epochs, or more to reach settings.min_steps."""
    batches = math.ceil(len(data.load_split("train")) / data.hparams.batch_size)
    return max(settings.max_epochs, math.ceil(settings.min_steps / batches))


def validation_every(epochs: int, check_every: int) -> int:
    """How often a trial of `epochs` epochs validates: every `check_every` epochs, or the largest divisor of `epochs`
    below that, so that its last epoch is validated and its score is of the network it keeps (2 epochs and
    check_every 5: every 2, not never)."""
    return max(k for k in range(1, max(1, min(check_every, epochs)) + 1) if epochs % k == 0)


def _train(task: ForecastingTask, data: Any, settings: TrialSettings, seed: int,  # noqa: ANN401
           callbacks: list[pl.Callback], validate: bool) -> pl.Trainer:
    pl.seed_everything(seed, verbose=False)
    epochs = epochs_of(data, settings)
    trainer = Trainer(max_epochs=epochs, precision=settings.precision, logger=False,
                      gradient_clip_val=settings.gradient_clip_val, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                      check_val_every_n_epoch=validation_every(epochs, settings.check_every) if validate else 1,
                      limit_val_batches=1.0 if validate else 0, callbacks=callbacks,
                      use_distributed_sampler=False, devices=1)
    trainer.fit(task, datamodule=data)
    return trainer


def folds_and_lookbacks(data: SeriesViews, requested: int) -> tuple[int, list[int]]:
    """The most folds (1 to `requested`) whose earliest training part still fits two of the lookbacks that fit the
    validation part's (all of them if fewer), and the lookbacks that fit every fold's training part."""
    widest = lookback_choices(data.reading, data.training_steps())
    for folds in range(max(requested, 1), 1, -1):
        try:
            fits = lookback_choices(data.reading, data.training_steps(back=folds - 1))
        except ConfigError:
            continue
        if len(fits) >= min(2, len(widest)):
            return folds, fits
    return 1, widest


def _objective(data: SeriesViews, base: ForecastingTask, settings: TrialSettings, budget: TuningBudget,
               best: dict, log: Callable[[str], None]) -> Callable[[Any], float]:
    import optuna

    folds, lookbacks = best["folds"], best["lookbacks"]
    panel = len(data.reading.scales) > 1
    transforms = data.transform_choices() if settings.transform == "validation" else ()

    def objective(trial: optuna.Trial) -> float:
        start = time.monotonic()
        params = suggest(trial, data.reading, lookbacks, panel, settings, transforms)
        scores, history, windows = [], [], []
        for back in range(folds):
            view = data.view("valid", back=back, **data_changes(params, data.reading))
            task = make_task(base, params, view.reading)
            raw = bool(transforms) and view.reading.power != 1  # else val/mase is already in the values as read
            report = _Report(trial, scores, back * FOLD_STEPS, prunable=trial.number >= len(settings.start),
                             raw=view if raw else None)
            trainer = _train(task, view, settings, budget.seed, [report], validate=True)
            history.append(report.history)
            if report.pruned:
                break
            windows.append(band_forecasts(task.net, view, "valid"))
            scores.append(_raw_mase(windows[-1], view) if raw else _score(trainer))
        score = float(np.mean(scores)) if scores and not report.pruned else math.inf
        trial.set_user_attr("fold_valid_mase", [round(v, 5) for v in scores])
        trial.set_user_attr("valid_mase_history", history)
        trial.set_user_attr("seconds", round(time.monotonic() - start, 2))
        trial.set_user_attr("fixed", {k: v for k, v in params.items() if k not in trial.params})  # not drawn
        log(f"trial {trial.number}: valid MASE {'pruned' if report.pruned else f'{score:.4f}'} over folds "
            f"{[round(v, 4) for v in scores]} {time.monotonic() - start:.0f}s {params}")
        if report.pruned:
            raise optuna.TrialPruned()
        best["kept"][trial.number] = (score, params, windows)
        return score

    return objective


def _search(data: SeriesViews, base: ForecastingTask, settings: TrialSettings, budget: TuningBudget,
            log: Callable[[str], None]) -> tuple[list[dict], dict]:
    """Runs the study; returns its trials (as the record keeps them) and every completed trial's score, configuration
    and fold forecasts."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    startup = min(10, max(3, (budget.trials or 30) // 3))
    study = optuna.create_study(direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=budget.seed, n_startup_trials=startup,
                                                                   multivariate=True),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=0))
    folds, lookbacks = folds_and_lookbacks(data, settings.folds)
    if folds < settings.folds:
        log(f"the series leave room for {folds} of {settings.folds} cross-validation folds")
    best: dict = {"folds": folds, "lookbacks": lookbacks, "kept": {}}
    for configuration in settings.start:  # tried first, in order (trial numbers 0, 1, ...), never pruned
        study.enqueue_trial(start_params(configuration, data.reading, lookbacks, len(data.reading.scales) > 1))
    study.optimize(_objective(data, base, settings, budget, best, log), n_trials=budget.trials,
                   timeout=budget.seconds, gc_after_trial=True)
    if not best["kept"]:
        raise ConfigError("no tuning trial completed; give a longer --tune budget or more --tune_trials")
    return _trials(study), best


# ---------------------------------------------------------------------------------------------------- calibration
@torch.no_grad()
def band_forecasts(net: torch.nn.Module, data: Any, split: str) -> dict[str, np.ndarray]:  # noqa: ANN401
    """`net`'s forecasts of the `split` windows of `data`, in the series' units: the point forecast, the band's edges
    (the point for a network without those quantiles), the true values and the seasonal-naive forecast, (n, H, V)
    each; per window its series' index (`series`, (n,)); and per window the series' scale (`norm`), its recent scale
    (`local`: `SeriesReading.local_scale` over `local_steps`) and MASE's denominator (`mase`), (n, 1, V). Networks
    that read the series differently (lookback, normalisation) give windows of the same origins, so their forecasts
    average. The series' units are the values the network reads (power-transformed: `raw_scores` transforms back)."""
    windows = data.load_split(split)
    batch = windows[list(range(len(windows)))]
    lower, point, upper = net.eval().band(net(batch.input, batch.series).float(), BAND).unbind(-1)  # (n, H, V)
    scale, last = batch.scale.double().unsqueeze(1), batch.last.double().unsqueeze(1)  # (n, 1, V)
    units = {name: (value.double() * scale + last).numpy() for name, value in
             (("point", point), ("lower", lower), ("upper", upper), ("actual", batch.target),
              ("naive", batch.naive))}
    norms = np.asarray(list(data.reading.scales.values()), dtype=np.float64)  # (series, V)
    return {**units, "norm": norms[batch.series.numpy()][:, None, :], "series": batch.series.numpy(),
            "local": data.local_scales(split, local_steps(data.reading))[:, None, :],
            "mase": batch.mase_scale.double().unsqueeze(1).numpy()}


def local_steps(reading: Any) -> int:  # noqa: ANN401
    """The steps a window's recent scale is measured over (a band in `local` units): 2 × max(season, horizon)."""
    return 2 * _unit(reading)


def raw_scores(forecasts: dict[str, np.ndarray], data: Any) -> dict[str, np.ndarray]:  # noqa: ANN401
    """`band_forecasts` of `data`'s windows in the values as read: the point, band, true values and seasonal-naive
    forecast transformed back from the power `data.reading.power`, MASE's denominator fitted there
    (`raw_mase_scales`): scores comparable between transforms."""
    power = data.reading.power
    back = {k: powered(forecasts[k], power, inverse=True) for k in ("point", "lower", "upper", "actual", "naive")}
    return {**forecasts, **back, "mase": data.raw_mase_scales()[forecasts["series"]][:, None, :]}


def combined_forecasts(members: list[dict[str, np.ndarray]], combine: str = "mean") -> dict[str, np.ndarray]:
    """The members' forecasts of the same windows combined (point and band edges), by their `mean`, `median` or
    `median-point` (as `Forecaster.combine` combines its networks: `reducer`); the rest as member 0's."""
    if len({len(m["actual"]) for m in members}) > 1:
        raise ConfigError("ensemble members forecast different windows; every lookback must fit the training part")
    return {**members[0], **{k: reducer(combine, "point" if k == "point" else "edge")([m[k] for m in members], axis=0)
                             for k in ("point", "lower", "upper")}}


def scores_of(forecasts: dict[str, np.ndarray]) -> dict[str, float]:
    """MAE, RMSE, sMAPE, MASE, rel_mae_snaive (as a task evaluates: `predict.metrics`) and the band's coverage."""
    as_tensor = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in forecasts.items()}
    scores = forecast_scores(forecast_sums(as_tensor["actual"], as_tensor["point"], as_tensor["mase"],
                                           as_tensor["naive"]))
    inside = (forecasts["lower"] <= forecasts["actual"]) & (forecasts["actual"] <= forecasts["upper"])
    return {**scores, "coverage": float(inside.mean()), "windows": float(len(forecasts["actual"]))}


# Adaptive conformal inference's rate for an online band: 0.05 brought the nine development sets' test coverage closest
# to 0.8 (mean distance 0.0517, against 0.0612 at 0.01 and 0.0664 without; forecast_dev_adaptive, rule set before), and
# the twelve sets' closest among 0.05, 0.1 and 0.2 (0.0522, 0.0545, 0.0537; forecast_rescore_rate, rule in 66566f1).
ADAPT = 0.05
TRANSFORM_CHOICES = ("rule", "validation")  # how the power transform is chosen (`TrialSettings.transform`)
SELECTIONS = ("best", "forward")  # how the ensemble's configurations are chosen (`select_members`)
UNITS = {"series": "norm", "local": "local"}  # a band's units: the key of `band_forecasts` they are read from
KEPT_SCORES = 2000  # a bundle keeps at most this many validation scores per variable (`summarised`)


def calibrate(folds: list[dict[str, np.ndarray]], units: str, steps: int, online: bool = False, adapt: float = 0.0,
              decay: float = 0.0) -> dict:
    """The band's conformal offsets from the ensemble's forecasts of every fold's validation windows
    (`band_forecasts`: each by models trained before its block), pooled over the folds; in `units`: `series` (each
    series' scale: one width for every window) or `local` (each window's recent scale over `steps` steps: the band
    widens where the series moves more). It keeps the scores and each step's spread: with `online`, `Forecaster`
    adds the scores of the windows a history holds after the fit (`Forecaster.offsets`), and with `adapt` > 0 moves
    the level by adaptive conformal inference over them (`seq2text.predict.conformal.adapted_level`); with `decay` >
    0 each online score's weight halves every `decay` steps of its age (`seq2text.predict.conformal.decayed`)."""
    point, lower, upper, actual = (np.concatenate([f[k] / f[UNITS[units]] for f in folds])
                                   for k in ("point", "lower", "upper", "actual"))
    level = BAND[1] - BAND[0]
    scores, spread = conformal_scores(point, lower, upper, actual)
    offsets = offsets_of(scores, spread, level)
    kept, weights = summarised(scores, KEPT_SCORES)
    covered = float(np.mean((lower <= actual) & (actual <= upper)))
    scale = "the series' scale" if units == "series" else f"each window's recent scale ({steps} steps)"
    return {"method": "split-conformal quantile regression (CQR) on the validation windows of every cross-validation "
                      f"fold (each forecast by the models trained before its block), scores in units of {scale}, "
                      "normalised by each horizon step's mean absolute error and pooled over the steps and folds",
            "band": list(BAND), "level": round(level, 6), "units": units,
            **({"local_steps": steps} if units == "local" else {}),
            "offsets": offsets.round(6).tolist(), "windows": len(actual), "folds": len(folds),
            "valid_coverage_before": round(covered, 4), "online": online, "adapt": adapt,
            **({"decay": round(decay, 6)} if decay else {}),
            "scores": kept.round(6).tolist(),
            "score_weight": float(weights[0]), "spread": spread.round(6).tolist()}


def calibrated(forecasts: dict[str, np.ndarray], calibration: dict) -> dict[str, np.ndarray]:
    """`forecasts` with the band widened by the calibration's offsets (in its units, per window)."""
    offsets = np.asarray(calibration["offsets"])[None] * forecasts[UNITS[calibration["units"]]]  # (n, H, V)
    lower, upper = calibrated_band(forecasts["point"], forecasts["lower"], forecasts["upper"], offsets)
    return {**forecasts, "lower": lower, "upper": upper}


# ---------------------------------------------------------------------------------------------------- entry
def tune_forecaster(data: SeriesViews, base: ForecastingTask, budget: TuningBudget, settings: TrialSettings,
                    log: Callable[[str], None] = print, worker_setup: Callable[[], None] | None = None
                    ) -> TuningResult:
    """Searches a configuration on `data`'s validation part, calibrates the band there, and refits on train + valid.

    Args:
        data: the loaded data module (its test part is cut off before any trial sees the data).
        base: the recipe's task: the settings the search leaves alone (dropout, head, optimizer, ...).
        budget: when the search stops, and its seed.
        settings: how every trial and the refit train.
        log: where each trial's line goes.
        worker_setup: a module-level function each worker process of side-by-side searches runs first (the
            caller's console settings; `settings.workers`).
    Returns:
        the refitted task, its data (train + valid | test) and the search record.
    """
    budget.check()
    try:
        data.view("valid").load_split("valid")
    except DataError:
        raise ConfigError("tuning scores trials on the validation part: set data.valid_size > 0 (e.g. 0.1), at "
                          "least the horizon") from None
    start = time.monotonic()
    budgets = search_budgets(budget, settings.searches, settings.workers)
    searches = _side_by_side(_search, [(data, base, settings, searched) for searched in budgets], settings, log,
                             worker_setup, "search")
    trials, best = searches[0]
    search_seconds = time.monotonic() - start
    pooled = [(s, member) for s, (_, one) in enumerate(searches)
              for member in select_members(one, settings.members, settings.selection, settings.combine)]
    if len(searches) > 1:  # the best configuration first, whichever search found it
        pooled.sort(key=lambda item: item[1][1][0])  # (search, (trial number, (validation score, ...)))
    ranked, origins = [member for _, member in pooled], [s for s, _ in pooled]
    folds = [combined_forecasts([windows[f] for _, (_, _, windows) in ranked], settings.combine)
             for f in range(best["folds"])]
    blocks = folds + _more_blocks(data, base, [params for _, (_, params, _) in ranked], settings, budget,
                                  best["folds"])
    other = next(units for units in UNITS if units != settings.band)
    members = _side_by_side(_refit, [(data, base, params, settings, budget.seed + s + k)
                                     for s, (_, (_, params, _)) in zip(origins, ranked, strict=True)
                                     for k in range(settings.seeds)],  # the best first; search s: seed + s
                            settings, log, worker_setup, "refit")
    task, final_data = members[0]
    decay = settings.decay * _unit(data.reading)  # the half-life in steps
    calibration, alternative = ({**calibrate(blocks, units, local_steps(data.reading), settings.online,
                                           settings.adapt, decay),
                                 "fit_end": final_data.training_ends()} for units in (settings.band, other))
    task.calibration, task.combine = calibration, settings.combine
    task.members = [(other.net, other_data.reading.to_dict()) for other, other_data in members[1:]]
    record = _record(trials, ranked[0][1][:2], best["folds"], budget, settings, search_seconds,
                     time.monotonic() - start - search_seconds)
    if len(searches) > 1:  # the further searches' trials, each with its sampler's seed
        record["further_searches"] = [{"seed": searched.seed, "trials": one}
                                      for searched, (one, _) in zip(budgets[1:], searches[1:], strict=True)]
    ensemble = {"members": [{"trial": number, "valid_mase": score, "params": params,
                             **({"search": s} if len(searches) > 1 else {})}
                            for s, (number, (score, params, _)) in zip(origins, ranked, strict=True)],
                "valid_mase": round(float(np.mean([scores_of(f)["mase"] for f in folds])), 5)}
    return TuningResult(task, final_data, {**record, "ensemble": ensemble, "calibration": calibration,
                                           "calibration_alternative": alternative}, members)


def search_budgets(budget: TuningBudget, searches: int, workers: int = 1) -> list[TuningBudget]:
    """Each of `searches` searches' budget: the seed seed + s (its sampler's and its trials'), the trial count each,
    the time cap shared equally among the rounds of `workers` searches side by side."""
    seconds = None if budget.seconds is None else budget.seconds * min(workers, searches) / searches
    return [replace(budget, seed=budget.seed + s, seconds=seconds) for s in range(searches)]


def _side_by_side(job: Callable[..., Any], jobs: list[tuple], settings: TrialSettings, log: Callable[[str], None],
                  worker_setup: Callable[[], None] | None, label: str) -> list[Any]:
    """`job(*args, log=log)` for each of `jobs` (the searches, then the refits): one after another here, or with
    `settings.workers` > 1 side by side in supervised worker processes (`run_jobs`, lines labelled `label`), each
    with its share of the threads; each job is seeded, so the outcome is the same either way."""
    workers = min(settings.workers, len(jobs))
    if workers == 1:
        return [job(*args, log=log) for args in jobs]
    from seq2text.tasks.workers import run_jobs

    return run_jobs(job, jobs, workers, max(1, torch.get_num_threads() // workers), log, setup=worker_setup,
                    preload=["seq2text.tasks.tuning"], label=label)


def select_members(best: dict, members: int, selection: str, combine: str = "mean"
                   ) -> list[tuple[int, tuple[float, dict, list]]]:
    """The ensemble's trials, (number, (score, params, fold forecasts)) each: `best`, the `members` with the best
    validation scores; `forward`, forward selection (Caruana et al. 2004, without replacement): from the best trial,
    add the one that most lowers the validation MASE of the members' combined forecasts (`combine`), while one does,
    up to `members`."""
    ranked = sorted(best["kept"].items(), key=lambda item: item[1][0])
    ranked = [item for item in ranked if item[1][1].get("transform") == ranked[0][1][1].get("transform")]
    if selection == "best":
        return ranked[:max(members, 1)]

    def score(chosen: list) -> float:
        return float(np.mean([scores_of(combined_forecasts([windows[f] for _, (_, _, windows) in chosen],
                                                           combine))["mase"] for f in range(best["folds"])]))

    chosen, left = ranked[:1], ranked[1:]
    current = score(chosen)
    while len(chosen) < members and left:
        value, k = min((score([*chosen, candidate]), k) for k, candidate in enumerate(left))
        if value >= current:
            break
        chosen.append(left.pop(k))
        current = value
    return chosen


def _more_blocks(data: SeriesViews, base: ForecastingTask, members: list[dict], settings: TrialSettings,
                 budget: TuningBudget, scored: int) -> list[dict[str, np.ndarray]]:
    """The members' mean forecasts of the blocks after the `scored` ones, up to `settings.calibration_folds` blocks
    (as many as leave every member's lookback room to train): each member trained before each block."""
    blocks = []
    for back in range(scored, settings.calibration_folds):
        steps = data.training_steps(back=back)
        if not all(_fits(params["lookback"], data.reading, steps) for params in members):
            break
        forecasts = []
        for params in members:
            view = data.view("valid", back=back, **data_changes(params, data.reading))
            task = make_task(base, params, view.reading)
            _train(task, view, settings, budget.seed, [], validate=False)
            forecasts.append(band_forecasts(task.net, view, "valid"))
        blocks.append(combined_forecasts(forecasts, settings.combine))
    return blocks


def _refit(data: SeriesViews, base: ForecastingTask, params: dict, settings: TrialSettings, seed: int,
           log: Callable[[str], None] | None = None) -> tuple[ForecastingTask, Any]:  # noqa: ANN401
    """A configuration trained on train + valid (same epochs) from `seed`: the task and its data (test part after
    it). `log` goes unused: a refit writes no lines (`_side_by_side` passes one)."""
    final_data = data.view("test", **data_changes(params, data.reading))
    task = make_task(base, params, final_data.reading)
    _train(task, final_data, settings, seed, [], validate=False)
    return task, final_data


def ensemble_test_scores(result: TuningResult) -> dict[str, float]:
    """The refitted ensemble's scores on the test part (the calibrated band's coverage too), as `test/<name>`."""
    forecasts = combined_forecasts([band_forecasts(task.net, data, "test") for task, data in result.members],
                                   result.task.combine)
    scores = scores_of(calibrated(forecasts, result.task.calibration))
    return {f"test/{name}": value for name, value in scores.items()}


def _trials(study: Any) -> list[dict]:  # noqa: ANN401
    """Each trial of an Optuna study as the search record keeps it."""
    return [{"number": t.number, "state": t.state.name.lower(), "valid_mase": t.value,
             "params": {**t.params, **t.user_attrs.get("fixed", {})},
             **{k: v for k, v in t.user_attrs.items() if k != "fixed"}} for t in study.trials]


def _record(trials: list[dict], top: tuple[float, dict], folds: int, budget: TuningBudget,
            settings: TrialSettings, search_seconds: float, refit_seconds: float) -> dict:
    """The search record: every trial of the (first) search, the chosen configuration and its validation score
    (`top`: the ensemble's first member's), the space, the budget and the timings."""
    score, chosen = top
    return {"sampler": f"optuna {__import__('optuna').__version__} TPESampler(seed={budget.seed}, multivariate) + "
                       "MedianPruner on the running mean of the folds' validation MASE",
            "budget": asdict(budget), "trial_settings": asdict(settings),
            "space": {k: list(v) for k, v in search_space(settings.linear, settings.recency, settings.dropout,
                                                          settings.space).items()},
            "folds": folds, "chosen": chosen, "valid_mase": score, "trials": trials,
            "completed": sum(t["state"] == "complete" for t in trials),
            "pruned": sum(t["state"] == "pruned" for t in trials),
            "search_seconds": round(search_seconds, 1), "refit_seconds": round(refit_seconds, 1),
            "refit": f"the ensemble's configurations (the chosen one first) each trained on train + valid from "
                     f"{settings.seeds} seed(s), same epochs; the calibration kept"}
