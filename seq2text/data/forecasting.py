"""Numeric series → forecast windows (`SeriesBatch`), split by time.

Each series is cut into consecutive train, valid and test parts; scales are fitted on the training part only. A
validation or test forecast starts at every step of its part (rolling origin) from the history before it.
`SeriesDataModule.view` reads the same series otherwise: the test part cut off (what a tuner may see), or training
on train + valid (a refit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from seq2text.data.base import _STAGE_SPLITS, BatchSampler, SplitDataModule
from seq2text.data.batches import SeriesBatch
from seq2text.errors import ConfigError, DataError
from seq2text.text.series import (
    POWERS,
    Calendar,
    Series,
    SeriesReading,
    frequency_defaults,
    power_choice,
    powered,
    read_series,
    seasonal_scale,
    series_scale,
    split_sizes,
    time_value,
)

__all__ = ["PANEL_RECENCY", "SeriesDataModule", "Windows", "WindowSampler", "seasonal_naive"]

# data.recency auto on a panel: the half-life of the training windows' weights, as a share of the training part
# (chosen on development panels, forecast_dev_fresh_recency50; one series gets none: it has no windows to spare)
PANEL_RECENCY = 0.5

def seasonal_naive(values: np.ndarray, origin: int, horizon: int, season: int) -> np.ndarray:
    """Hyndman's seasonal-naive forecast from `origin`: the last observed season repeated, (horizon, V)."""
    steps = np.arange(horizon)
    index = origin + steps - season * (steps // season + 1)
    return values[np.where(index >= 0, index, origin - 1)]


class Windows(Dataset[SeriesBatch]):
    """Forecast windows of one split, as arrays; an item is a whole batch (a list of window numbers)."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = {k: torch.from_numpy(v) for k, v in arrays.items()}

    def __len__(self) -> int:
        return len(self.arrays["input"])

    def __getitem__(self, indices: list[int]) -> SeriesBatch:
        index = torch.tensor(indices, dtype=torch.long)
        rows = index.clamp(min=0)  # a filler row repeats window 0 and is masked out by its index
        return SeriesBatch(**{k: v[rows] for k, v in self.arrays.items()}, indices=index)


class WindowSampler(BatchSampler):
    """Batches of window numbers (see `BatchSampler`): global training batches of `batch_size × world_size`."""

    def __init__(self, count: int, batch_size: int, shuffle: bool, seed: int = 0, rank: int = 0,
                 world_size: int = 1) -> None:
        self.batch_size = batch_size
        super().__init__(count, shuffle, seed, rank, world_size, "windows", " or a longer training part")

    def _evaluation_batches(self) -> list[list[int]]:
        return [list(range(i, min(i + self.batch_size, self.count))) for i in range(0, self.count, self.batch_size)]

    def _training_batches(self, rng: np.random.Generator) -> list[list[int]]:
        order, size = rng.permutation(self.count).tolist(), self.batch_size * self.world_size
        return [order[i: i + size] for i in range(0, self.count, size)]


@dataclass
class _Part:
    """Where a series' splits start: train [0, valid), valid [valid, test), test [test, end)."""

    valid: int
    test: int
    end: int


class SeriesDataModule(SplitDataModule):
    """Forecasting data from a CSV/TSV/Parquet table (or a DataFrame: `SeriesDataModule.from_frame`).

    Args:
        path: the table (one row per time step; many series stacked, told apart by `id_column`).
        time_column: timestamps (dates/times, or numbers), increasing within each series, regularly spaced.
        value_columns: the numeric columns to forecast (one or many variables per step).
        id_column: the series id of each row (None: the table is one series).
        lookback: time steps of history the network reads.
        horizon: time steps forecast at once (None: from the time step, as in the M4 competition: 6 yearly, 8
            quarterly, 18 monthly, 13 weekly, 14 daily, 48 hourly).
        season: the seasonal period of the seasonal-naive baseline and MASE (12: monthly, yearly cycle; 1: naive;
            None: from the time step: 1 yearly, 4 quarterly, 12 monthly, 52 weekly, 7 daily, 24 hourly).
        calendar: calendar features of each step: `month`, `dayofweek`, `dayofyear`, `hour` (date columns).
        normalize: `series` (each window divided by its series' training scale) or `window` (by the spread of
            its own history: series whose amplitude drifts).
        transform: the values the network reads and forecasts: `none`, `sqrt`, `log`, or `auto` (the range-mean
            rule on the training parts, `power_choice`: log where a series' spread grows with its level); forecasts
            are transformed back. The validation and test metrics of training are of the transformed values.
        recency: the half-life of a training window's weight in the loss, as a share of its series' training part
            (0: every window weighs the same): the window r steps before the last one weighs 0.5^(r / (recency ×
            the training part's length)), scaled to a mean of 1 per series, so recent behaviour counts more. `auto`:
            PANEL_RECENCY for a table of many series (a panel has windows to spare), 0 for one series.
        valid_size: the validation part before the test part (fraction or steps); 0: no validation.
        test_size: the test part at the end of each series (fraction or steps); 0: none (no test after fit).
        batch_size: training windows per batch (per process).
        eval_batch_size: windows per evaluation batch.
        seed: seeds the training order.
    """

    def __init__(self, path: str | None = None, time_column: str = "time", value_columns: Sequence[str] = ("value",),
                 id_column: str | None = None, lookback: int = 48, horizon: int | None = 12, season: int | None = 1,
                 calendar: Sequence[Calendar] = (), normalize: Literal["series", "window"] = "series",
                 transform: Literal["none", "sqrt", "log", "auto"] = "none", recency: float | Literal["auto"] = 0.0,
                 valid_size: float = 0.1, test_size: float = 0.1,
                 batch_size: int = 64, eval_batch_size: int = 512, seed: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters()
        if min(batch_size, eval_batch_size) < 1 or valid_size < 0 or test_size < 0:
            raise ConfigError("data: batch_size and eval_batch_size must be ≥ 1, valid_size and test_size ≥ 0")
        if recency != "auto" and not (isinstance(recency, int | float) and recency >= 0):
            raise ConfigError(f"data.recency {recency!r}: give a half-life ≥ 0 (a share of the training part; 0: "
                              "none) or auto")
        if transform not in (*POWERS, "auto"):
            raise ConfigError(f"data.transform {transform!r}: give one of {', '.join(POWERS)}, auto")
        self._base = SeriesReading(time_column, tuple(value_columns), id_column, lookback,
                                   1 if horizon is None else horizon, 1 if season is None else season,
                                   tuple(calendar), normalize=normalize)  # season/horizon None: set in _load
        self._series, self._parts, self.datasets, self._step = [], [], {}, None
        self._raw: list[Series] = []  # the series as read, before the power transform
        self._recency = 0.0 if recency == "auto" else float(recency)  # auto: resolved once the table is read
        if path is not None:
            self._load(path)

    @classmethod
    def from_frame(cls, frame: Any, **options: Any) -> SeriesDataModule:  # noqa: ANN401
        """The same from a pandas DataFrame."""
        module = cls(path=None, **options)
        module._load(frame)
        return module

    # ------------------------------------------------------------------------------------------ reading
    def _load(self, source: object) -> None:
        base = self._base
        series = read_series(source, base.time_column, base.value_columns, base.id_column)
        self._resolve_defaults(series, source)
        hp = self.hparams
        parts = [self._part(s, hp.valid_size, hp.test_size) for s in series]
        power = POWERS.get(hp.transform) if hp.transform != "auto" else power_choice(
            [s.values[:p.valid] for s, p in zip(series, parts, strict=True)], max(self._base.season,
                                                                                   self._base.horizon))
        self._raw, self._base = series, replace(self._base, power=power)
        if hp.recency == "auto":
            self._recency = PANEL_RECENCY if len(series) > 1 else 0.0
        self._adopt(self._powered(power), parts)

    def _powered(self, power: float) -> list[Series]:
        """The series as read, power-transformed (Box-Cox λ `power`)."""
        where = f"the data (data.transform {self.hparams.transform}, λ = {power})"
        return [replace(s, values=powered(s.values, power, where=where)) for s in self._raw]

    def transform_choices(self) -> tuple[str, ...]:
        """The transforms a tuner may choose among on the validation part: with data.transform `auto` and a rule
        that picks one, that one and `none`; else the transform in use alone."""
        picked = next(name for name, power in POWERS.items() if power == self._base.power)
        return (picked, "none") if self.hparams.transform == "auto" and picked != "none" else (picked,)

    def _resolve_defaults(self, series: list[Series], source: object) -> None:
        """Checks the series share one time step; season and horizon left unset come from it."""
        if self._base.calendar and series[0].times.dtype.kind != "M":
            raise ConfigError("data.calendar needs a date/time column; remove it for a numeric time column")
        steps = {s.step for s in series} - {None}
        if len(steps) > 1:
            raise DataError(f"the series of {source} have different time steps {sorted(steps)}; resample them to "
                            "one step")
        self._step = next(iter(steps), None)
        if self.hparams.season is None or self.hparams.horizon is None:
            season, horizon = frequency_defaults(self._step)
            self._base = replace(self._base, season=self.hparams.season or season,
                                 horizon=self.hparams.horizon or horizon)

    def _adopt(self, series: list[Series], parts: list[_Part]) -> None:
        """Takes `series` split at `parts`; fits each series' scale on its training part."""
        base = self._base
        for one, part in zip(series, parts, strict=True):
            if part.valid < base.lookback + base.horizon:
                name = f"series {one.id!r}" if one.id else "the series"
                raise DataError(f"{name} has {len(one)} time steps; its training part ({part.valid}) is shorter than "
                                f"lookback + horizon = {base.lookback + base.horizon}; lower data.lookback or "
                                "data.valid_size / data.test_size")
        self._series, self._parts, self.datasets = series, parts, {}
        scales = {s.id: tuple(series_scale(s.values[:p.valid])) for s, p in zip(series, parts, strict=True)}
        self._reading = SeriesReading(**{**base.to_dict(), "step": self._step, "scales": scales})

    def _part(self, series: Series, valid_size: float, test_size: float) -> _Part:
        train, valid, test = split_sizes(len(series), valid_size, test_size)
        name = f"series {series.id!r}" if series.id else "the series"
        for part, size in (("valid", valid), ("test", test)):
            if 0 < size < self._base.horizon:
                raise DataError(f"{name}: its {part} part has {size} time steps, fewer than the horizon "
                                f"{self._base.horizon}; raise data.{part}_size")
        return _Part(train, train + valid, len(series))

    def view(self, fit_until: Literal["valid", "test"], back: int = 0,
             **changes: Any) -> SeriesDataModule:  # noqa: ANN401
        """The same series with `changes` to this module's options (e.g. another lookback or normalize).

        Args:
            fit_until: `valid`: train | valid, each series cut where its test part starts (its test values are
                never read: what a tuner may see); `test`: train on train + valid, scales refitted there, and the
                test part after it (a refit).
            back: with `valid`, an earlier fold of a rolling-origin cross-validation: the validation block moved
                `back` validation lengths earlier (each series cut where that block ends; scales refitted on the
                shorter training part before it).
            changes: `transform` (`none`, `sqrt`, `log`) powers the values as read anew; `auto` keeps this one's.
        """
        if not self._series:
            raise ConfigError("data.path is not set: give the table to forecast (CSV, TSV or Parquet)")
        fixed = {"season": self._base.season, "horizon": self._base.horizon}
        options = {k: v for k, v in self.hparams.items() if not k.startswith("_")}  # not LightningCLI's _class_path
        module = SeriesDataModule(**{**options, **fixed, **changes, "path": None})
        power = POWERS.get(changes.get("transform"), self._base.power)
        series = self._series if power == self._base.power else self._powered(power)
        module._step, module._raw, module._base = self._step, self._raw, replace(module._base, power=power)
        if changes.get("recency", "auto") == "auto":
            module._recency = self._recency
        if fit_until == "valid":
            parts = [self._fold(p, back) for p in self._parts]
            cut = [replace(s, times=s.times[:p.test], values=s.values[:p.test], rows=s.rows[:p.test])
                   for s, p in zip(series, parts, strict=True)]
            module._adopt(cut, parts)
        else:
            module._adopt(series, [_Part(p.test, p.test, p.end) for p in self._parts])
        return module

    @property
    def reading(self) -> SeriesReading:
        """How the data is read, with the scales fitted on the training parts (written into the bundle)."""
        if not self._series:
            raise ConfigError("data.path is not set: give the table to forecast (CSV, TSV or Parquet)")
        return self._reading

    @property
    def tokenizer(self) -> None:
        """Numbers need no tokenizer (the bundle has none)."""
        return None

    @staticmethod
    def _fold(part: _Part, back: int) -> _Part:
        """Train | valid of the cross-validation fold `back` validation lengths before the last (0: the last)."""
        shift = back * (part.test - part.valid)
        return _Part(part.valid - shift, part.test - shift, part.test - shift)

    def training_steps(self, back: int = 0) -> int:
        """The shortest training part of the series, in time steps (of the fold `back`: see `view`)."""
        return min(self._fold(part, back).valid for part in self._parts)

    def training_ends(self) -> dict[str, str | float]:
        """Each series' last time step in its training part (an ISO date, or the number of a numeric time column):
        where a refitted forecaster's unseen values begin."""
        return {s.id: time_value(s.times[p.valid - 1]) for s, p in zip(self._series, self._parts, strict=True)}

    def raw_mase_scales(self) -> np.ndarray:
        """Each series' MASE denominator in the values as read (before the power transform), fitted on its training
        part: (series, V), in the order of the windows' series index."""
        return np.stack([seasonal_scale(s.values[:p.valid], self._base.season)
                         for s, p in zip(self._raw, self._parts, strict=True)])

    def has_test(self) -> bool:
        """Whether some series has a test part."""
        return any(part.end > part.test for part in self._parts)

    def bundle_config(self) -> dict:
        return {"num_series": len(self._series), "valid_size": self.hparams.valid_size,
                "test_size": self.hparams.test_size}

    # ------------------------------------------------------------------------------------------ windows
    def _origins(self, split: str, part: _Part) -> range:
        lookback, horizon = self._base.lookback, self._base.horizon
        if split == "train":
            return range(lookback, part.valid - horizon + 1)
        if split == "valid":
            return range(max(part.valid, lookback), part.test - horizon + 1)
        return range(max(part.test, lookback), part.end - horizon + 1)

    def load_split(self, split: str) -> Windows:
        """The windows of one split, built once."""
        if split not in self.datasets:
            reading, columns = self.reading, {k: [] for k in ("input", "target", "last", "scale", "mase_scale",
                                                               "naive", "series", "weight")}
            for number, (series, part) in enumerate(zip(self._series, self._parts, strict=True)):
                series_scale_ = reading.scale_of(series)
                mase = seasonal_scale(series.values[: part.valid], reading.season)
                origins = self._origins(split, part)
                columns["weight"] += list(self._weights(origins, part) if split == "train"
                                          else np.ones(len(origins), np.float32))
                for origin in origins:
                    scale = reading.window_scale(series, origin, series_scale_)
                    last = series.values[origin - 1]
                    naive = seasonal_naive(series.values, origin, reading.horizon, reading.season)
                    for key, value in (("input", reading.inputs(series, origin, scale)), ("last", last),
                                       ("target", reading.targets(series, origin, scale)), ("scale", scale),
                                       ("naive", (naive - last) / scale), ("mase_scale", mase)):
                        columns[key].append(value.astype(np.float32, copy=False))
                    columns["series"].append(np.int64(number))
            if not columns["input"]:
                raise DataError(f"no {split} windows: the {split} parts are empty; raise data.{split}_size")
            self.datasets[split] = Windows({k: np.stack(v) for k, v in columns.items()})
        return self.datasets[split]

    def _weights(self, origins: range, part: _Part) -> np.ndarray:
        """The training windows' weights (see `recency`), (len(origins),) float32, mean 1."""
        recency = self._recency
        if not recency or not len(origins):
            return np.ones(len(origins), np.float32)
        age = origins[-1] - np.asarray(origins, dtype=np.float64)  # steps before the last window
        weights = 0.5 ** (age / (recency * part.valid))
        return (weights / weights.mean()).astype(np.float32)

    def local_scales(self, split: str, steps: int) -> np.ndarray:
        """Each `split` window's `SeriesReading.local_scale` at its origin, over `steps` steps, (n, V), in the order
        of `load_split`'s windows."""
        return np.stack([self.reading.local_scale(series, origin, steps)
                         for series, part in zip(self._series, self._parts, strict=True)
                         for origin in self._origins(split, part)])

    def _no_validation(self) -> bool:
        return all(part.test == part.valid for part in self._parts)  # valid_size 0

    def setup(self, stage: str | None = None) -> None:
        for split in _STAGE_SPLITS.get(stage or "fit", _STAGE_SPLITS["fit"]):
            if not (split == "valid" and self._no_validation()):
                self.load_split(split)

    def val_dataloader(self) -> DataLoader | list:
        return [] if self._no_validation() else super().val_dataloader()

    def _loader(self, split: str, train: bool) -> DataLoader:
        data = self.load_split(split)
        rank, world = self._rank()
        hp = self.hparams
        sampler = WindowSampler(len(data), hp.batch_size if train else hp.eval_batch_size, shuffle=train,
                                seed=hp.seed, rank=rank, world_size=world)
        return self._make_loader(data, sampler, train)
