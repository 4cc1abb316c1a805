"""How a forecaster reads numbers, for training and for prediction alike (pandas imported only to read a table).

A table (CSV, TSV, Parquet or a DataFrame) has a time column, value columns and optionally a series-id column;
`read_series` checks it where it enters. `SeriesReading` is the frozen spec written into the bundle, with each
series' scale fitted on its training part only. A window is read relative to its last value and divided by its
scale; the network predicts the next `horizon` steps in those units, and `SeriesReading.restore` maps them back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from seq2text.errors import ConfigError, DataError
from seq2text.text.reading import _Spec

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CALENDAR_FEATURES", "FREQUENCY_DEFAULTS", "Calendar", "Series", "SeriesReading", "frequency_defaults",
           "POWERS", "power_choice", "powered", "read_series", "read_table", "seasonal_scale", "split_sizes",
           "steps_after", "time_value"]

Calendar = Literal["month", "dayofweek", "dayofyear", "hour"]
CALENDAR_FEATURES: dict[str, tuple[str, float]] = {  # feature: (pandas attribute, period)
    "month": ("month", 12.0), "dayofweek": ("dayofweek", 7.0), "dayofyear": ("dayofyear", 365.25),
    "hour": ("hour", 24.0)}
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")
# pandas offset alias (its letters) → (season, horizon): the seasons of the usual cycles, the M4 competition's horizons
FREQUENCY_DEFAULTS: dict[str, tuple[int, int]] = {
    "Y": (1, 6), "A": (1, 6), "Q": (4, 8), "M": (12, 18), "W": (52, 13), "D": (7, 14), "B": (5, 10), "H": (24, 48)}


@dataclass(frozen=True)
class Series:
    """One series of a table: its id ("" without an id column), `times` (T,) datetime64[ns] or float64, `values`
    (T, V) float64, the 1-based table `rows` (T,) for error messages, and its `step` (see `infer_step`)."""

    id: str
    times: np.ndarray
    values: np.ndarray
    rows: np.ndarray
    step: str | None = None

    def __len__(self) -> int:
        return len(self.times)


@dataclass(frozen=True)
class SeriesReading(_Spec):
    """How a forecaster reads a table (see the module docstring).

    Attributes:
        time_column, value_columns, id_column: the table's columns (no id column: one series).
        lookback: time steps the network reads before a forecast origin.
        horizon: time steps it forecasts (direct multi-step: all at once).
        season: the seasonal period of the seasonal-naive baseline and of MASE (1: naive).
        calendar: calendar features added to each step (sin and cos of month, day of week, day of year, hour).
        step: the spacing of the training timestamps (a pandas offset alias such as `MS`, or a number).
        scales: each series' scale per value column, fitted on its training part: {id: [scale, ...]}.
        normalize: `series` divides every window by its series' scale; `window` by the spread of its own history
            (for series whose amplitude drifts), at least a tenth of the series' scale.
        power: the power transform of the values the network reads and forecasts (Box-Cox λ: 1 none, 0.5 square
            root, 0 log; `powered`); forecasts are transformed back.
    """

    time_column: str = "time"
    value_columns: tuple[str, ...] = ("value",)
    id_column: str | None = None
    lookback: int = 48
    horizon: int = 12
    season: int = 1
    calendar: tuple[str, ...] = ()
    step: str | None = None
    scales: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    normalize: Literal["series", "window"] = "series"
    power: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.horizon, int) and self.horizon == 0:
            raise ConfigError("horizon=0: a forecaster predicts at least one step; set data.horizon ≥ 1")
        self._positive("lookback", "horizon", "season")
        if not self.value_columns:
            raise ConfigError("value_columns is empty; name at least one numeric column to forecast")
        if self.normalize not in ("series", "window"):
            raise ConfigError(f"normalize={self.normalize!r}: use series or window")
        if self.power not in POWERS.values():
            raise ConfigError(f"power={self.power!r}: use one of {sorted(POWERS.values())} (data.transform "
                              f"{', '.join(POWERS)})")
        unknown = sorted(set(self.calendar) - set(CALENDAR_FEATURES))
        if unknown:
            raise ConfigError(f"unknown calendar features {unknown}; use {sorted(CALENDAR_FEATURES)}")
        object.__setattr__(self, "value_columns", tuple(self.value_columns))
        object.__setattr__(self, "calendar", tuple(self.calendar))
        object.__setattr__(self, "scales", {str(k): tuple(float(x) for x in v) for k, v in dict(self.scales).items()})

    @property
    def num_values(self) -> int:
        return len(self.value_columns)

    @property
    def input_size(self) -> int:
        """Features per time step: the values, then sin and cos of each calendar feature."""
        return self.num_values + 2 * len(self.calendar)

    def scale_of(self, series: Series) -> np.ndarray:
        """The series' scale, (V,): the one fitted in training, or (a series unseen in training) its own."""
        if series.id in self.scales:
            return np.asarray(self.scales[series.id], dtype=np.float64)
        return series_scale(series.values)

    def window_scale(self, series: Series, origin: int, scale: np.ndarray) -> np.ndarray:
        """The scale of the window before `origin`, (V,) (see `normalize`)."""
        if self.normalize == "series":
            return scale
        spread = series.values[origin - self.lookback: origin].std(axis=0)
        return np.maximum(spread, 0.1 * scale)

    def local_scale(self, series: Series, origin: int, steps: int) -> np.ndarray:
        """How much the series moved lately, (V,): the standard deviation of its step changes over the `steps` steps
        before `origin` (fewer where the history is shorter), at least a tenth of the series' scale. A calibrated
        band in these units widens when the series gets louder (`seq2text.predict.conformal`)."""
        floor = 0.1 * self.scale_of(series)
        changes = np.diff(series.values[max(0, origin - steps - 1): origin], axis=0)  # (≤ steps, V)
        return np.maximum(changes.std(axis=0), floor) if len(changes) > 1 else floor

    def inputs(self, series: Series, origin: int, scale: np.ndarray) -> np.ndarray:
        """The network input for a forecast from `origin` (steps before it are history), (lookback, input_size)."""
        history = series.values[origin - self.lookback: origin]  # (L, V)
        relative = (history - history[-1]) / scale  # relative to the last observed value
        if not self.calendar:
            return relative.astype(np.float32)
        return np.concatenate([relative, calendar_features(series.times[origin - self.lookback: origin],
                                                           self.calendar)], axis=1).astype(np.float32)

    def targets(self, series: Series, origin: int, scale: np.ndarray) -> np.ndarray:
        """What the network learns to predict from `origin`, (horizon, V), in the units of `inputs`."""
        return ((series.values[origin: origin + self.horizon] - series.values[origin - 1]) / scale).astype(np.float32)

    @staticmethod
    def restore(predicted: np.ndarray, last: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """Network units back to the series': predicted (..., V), last and scale (V,) each."""
        return predicted * scale + last

    def check_compatible(self, series: Series, where: str) -> None:
        """Refuses history too short for the lookback, or spaced differently from the training data."""
        if len(series) < self.lookback:
            raise DataError(f"{where}: series {series.id or '(the only one)'} has {len(series)} time steps but the "
                            f"model reads {self.lookback} (lookback); give at least {self.lookback} steps of history")
        step = series.step
        if self.step is not None and step is not None and step != self.step:
            raise DataError(f"{where}: the time steps are {step} apart, but the model was trained on steps of "
                            f"{self.step}; resample the history to {self.step}")


# ------------------------------------------------------------------------------------------------- reading
def read_table(source: object) -> pd.DataFrame:
    """A CSV/TSV/Parquet file, or a DataFrame (copied), as a DataFrame."""
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        return source.copy()
    path = Path(str(source))
    if not path.is_file():
        raise DataError(f"{path} does not exist; give a CSV, TSV or Parquet table with a time column")
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise DataError(f"{path} is not a CSV, TSV or Parquet table (a forecaster reads a time column and numeric "
                        "value columns); for text, train a classifier or a text regressor")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        # keep_default_na=False: a cell "n/a" or "NULL" is reported as what it is, an empty cell as empty
        return pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",", skipinitialspace=True,
                           keep_default_na=False)
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not UTF-8 ({error.reason} at byte {error.start}); re-save it as UTF-8") from None
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise DataError(f"{path} cannot be read as a table ({error})") from None


def read_series(source: object, time_column: str, value_columns: Sequence[str], id_column: str | None = None,
                where: str | None = None) -> list[Series]:
    """Reads and checks a table's series (in order of first appearance), each with its time step."""
    frame = read_table(source)
    where = where or (str(source) if not hasattr(source, "columns") else "the DataFrame")
    needed = [time_column, *value_columns, *([id_column] if id_column else [])]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(f"{where} has no column {missing} (columns: {list(frame.columns)}); set data.time_column, "
                        "data.value_columns and data.id_column to its column names")
    if len(frame) == 0:
        raise DataError(f"{where} has no rows")
    times = _times(frame[time_column], where, time_column)
    values = np.stack([_numbers(frame[c], where, c) for c in value_columns], axis=1)  # (rows, V)
    ids = frame[id_column].astype(str).to_numpy() if id_column else np.full(len(frame), "", dtype=object)
    rows = np.arange(1, len(frame) + 1)
    out = []
    for series_id in dict.fromkeys(ids):
        mask = ids == series_id
        series = Series(str(series_id), times[mask], values[mask], rows[mask])
        _check_order(series, where)
        out.append(replace(series, step=infer_step(series, where)))
    return out


def _numbers(column: pd.Series, where: str, name: str) -> np.ndarray:
    import pandas as pd

    numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(numbers))
    if len(bad):
        row, raw = int(bad[0]) + 1, column.iloc[int(bad[0])]
        if raw is None or (isinstance(raw, float) and math.isnan(raw)) or str(raw).strip() == "":
            raise DataError(f"{where}, row {row}: column {name!r} is empty ({len(bad)} such cells); fill or drop the "
                            "gaps first (e.g. DataFrame.interpolate())")
        raise DataError(f"{where}, row {row}: column {name!r} holds {raw!r}, not a number")
    return numbers


def _times(column: pd.Series, where: str, name: str) -> np.ndarray:
    import pandas as pd

    if pd.api.types.is_numeric_dtype(column):
        return _numbers(column, where, name)
    parsed = pd.to_datetime(column, errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        raise DataError(f"{where}, row {int(bad[0]) + 1}: column {name!r} holds {column.iloc[int(bad[0])]!r}, "
                        "not a date or time")
    return parsed.to_numpy(dtype="datetime64[ns]")


def time_value(time: object) -> str | float:
    """A time step as JSON holds it: a date's ISO text, or a number."""
    time = np.asarray(time)
    return str(np.datetime_as_string(time, unit="s")) if time.dtype.kind == "M" else float(time)


def steps_after(series: Series, value: str | float) -> int:
    """The index of the series' first time step after `value` (`time_value`); len(series) if none."""
    try:
        bound = np.datetime64(value, "ns") if series.times.dtype.kind == "M" else float(value)
    except (TypeError, ValueError):
        raise DataError(f"{_in(series)}: its time column holds {series.times.dtype} values, but the model was "
                        f"trained up to {value!r}; give the history with the training table's time column") from None
    return int(np.searchsorted(series.times, bound, side="right"))


def _check_order(series: Series, where: str) -> None:
    gaps = np.diff(series.times)
    zero = np.zeros((), dtype=gaps.dtype)
    for bad, what, fix in ((gaps == zero, "repeats", "keep one row per time step (e.g. aggregate duplicates)"),
                           (gaps < zero, "comes before", "sort the table by time")):
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0]) + 1
            raise DataError(f"{where}, row {series.rows[i]}: timestamp {series.times[i]} {what} the previous one"
                            f"{_in(series)}; {fix}")


def _in(series: Series) -> str:
    return f" in series {series.id!r}" if series.id else ""


def infer_step(series: Series, where: str) -> str | None:
    """The regular spacing of a series (a pandas offset alias, or a number); None for fewer than 3 steps."""
    if len(series) < 3:
        return None
    if series.times.dtype.kind == "f":
        gaps = np.diff(series.times)
        if not np.allclose(gaps, gaps[0]):
            return _irregular(series, where, gaps)
        return f"{gaps[0]:g}"
    import pandas as pd

    step = pd.infer_freq(pd.DatetimeIndex(series.times))
    if step is None:
        return _irregular(series, where, np.diff(series.times))
    return step


def _irregular(series: Series, where: str, gaps: np.ndarray) -> str:
    values, counts = np.unique(gaps, return_counts=True)
    common = values[np.argmax(counts)]
    odd = int(np.flatnonzero(gaps != common)[0]) + 1
    raise DataError(f"{where}, row {series.rows[odd]}: the time steps are irregular{_in(series)} (mostly "
                    f"{common}, but {gaps[odd - 1]} here); resample to a regular step first (e.g. "
                    "DataFrame.resample('MS').mean().interpolate())")


# ------------------------------------------------------------------------------------------------- features
def calendar_features(times: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """sin and cos of each calendar feature at each timestamp, (T, 2 × len(names)) float64."""
    import pandas as pd

    if times.dtype.kind != "M":
        raise ConfigError("calendar features need a date/time column; remove data.calendar for a numeric time column")
    index = pd.DatetimeIndex(times)
    columns = []
    for name in names:
        attribute, period = CALENDAR_FEATURES[name]
        phase = 2 * np.pi * np.asarray(getattr(index, attribute), dtype=np.float64) / period
        columns += [np.sin(phase), np.cos(phase)]
    return np.stack(columns, axis=1)


POWERS = {"none": 1.0, "sqrt": 0.5, "log": 0.0}  # data.transform: each name's Box-Cox λ


def power_choice(parts: Sequence[np.ndarray], chunk: int) -> float:
    """The power transform the range-mean rule picks (Box-Cox λ: 0 log, 0.5 square root, 1 none) from each series'
    training values, (n, V) each: over chunks of `chunk` steps (from each part's end), the slope b of the log of each
    chunk's spread (the standard deviation around the chunk's least-squares line, so a steep level is not read as a
    wide swing) on the log of its mean; λ = 1 − b, the nearest of the three that the values allow (log: all positive;
    square root: none negative). None with fewer than 4 chunks or levels within 20 % of each other."""
    levels, spreads = [], []
    steps = np.arange(chunk, dtype=np.float64)
    for part in parts:
        for column in np.asarray(part, dtype=np.float64).T:
            for end in range(len(column), chunk - 1, -chunk):
                piece = column[end - chunk:end]
                spread = (piece - np.polyval(np.polyfit(steps, piece, 1), steps)).std()
                if piece.mean() > 0 and spread > 0:
                    levels.append(math.log(piece.mean()))
                    spreads.append(math.log(spread))
    if len(levels) < 4 or max(levels) - min(levels) < math.log(1.2):
        return POWERS["none"]
    slope = float(np.polyfit(levels, spreads, 1)[0])
    lowest = min(float(np.min(part)) for part in parts)
    allowed = [power for power, ok in ((0.0, lowest > 0), (0.5, lowest >= 0), (1.0, True)) if ok]
    return min(allowed, key=lambda power: abs(power - (1 - slope)))


def powered(values: np.ndarray, power: float, inverse: bool = False, where: str = "the series") -> np.ndarray:
    """`values` power-transformed (Box-Cox λ `power`: 0 log, 0.5 square root, 1 as they are), or transformed back
    (`inverse`; a negative square root counts as 0). Raises DataError for values the transform cannot read."""
    if power == 1.0:
        return values
    if inverse:
        return np.exp(values) if power == 0.0 else np.maximum(values, 0.0) ** 2
    name, bad = ("log", values <= 0) if power == 0.0 else ("square root", values < 0)
    if np.any(bad):
        raise DataError(f"{where} holds {float(values[bad][0])!r}, which the {name} transform of this model's values "
                        f"cannot read (data.transform); train with data.transform none for such series")
    return np.log(values) if power == 0.0 else np.sqrt(values)


def series_scale(values: np.ndarray) -> np.ndarray:
    """The scale of each column, (V,): the standard deviation of its steps' changes (1 where it is 0)."""
    changes = np.diff(values, axis=0) if len(values) > 1 else values - values
    scale = changes.std(axis=0) if len(changes) else np.ones(values.shape[1])
    return np.where(scale > 0, scale, 1.0)


def seasonal_scale(values: np.ndarray, season: int) -> np.ndarray:
    """MASE's denominator: the mean absolute error of the in-sample seasonal-naive forecast, per column, (V,)
    (1 where the series repeats exactly)."""
    if len(values) <= season:
        return np.ones(values.shape[1])
    scale = np.abs(values[season:] - values[:-season]).mean(axis=0)
    return np.where(scale > 0, scale, 1.0)


def frequency_defaults(step: str | None) -> tuple[int, int]:
    """(season, horizon) for a series spaced by `step` (a pandas offset alias such as `MS`, `QS-OCT`, `YS-JAN`)."""
    letters = (step or "").lstrip("0123456789").upper()
    for prefix, defaults in FREQUENCY_DEFAULTS.items():
        if letters.startswith(prefix) and not letters.startswith("MIN"):
            return defaults
    raise ConfigError(f"the time step {step!r} has no default season and horizon (known: yearly, quarterly, monthly, "
                      "weekly, daily, business-daily, hourly); set data.season and data.horizon")


def split_sizes(length: int, valid_size: float, test_size: float) -> tuple[int, int, int]:
    """(train, valid, test) time steps of a series of `length`: sizes < 1 are fractions, else step counts."""
    valid = round(valid_size * length) if valid_size < 1 else int(valid_size)
    test = round(test_size * length) if test_size < 1 else int(test_size)
    return length - valid - test, valid, test

