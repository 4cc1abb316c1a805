"""The forecaster's predictor (the next steps of each series of a table, with the calendar arithmetic of their
timestamps) and the ensemble of forecasters (mean point forecasts and quantiles)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seq2text.errors import ConfigError, DataError
from seq2text.nn.regressor import RegressorConfig, SequenceRegressor
from seq2text.predict.conformal import BAND, adapted_level, calibrated_band, conformal_scores, decayed, offsets_of
from seq2text.predict.shared import MEMBERS, SAME_QUANTILES, Ensemble, _network, _read
from seq2text.text.series import Series, SeriesReading, powered, read_series, steps_after

__all__ = ["COMBINATIONS", "Forecaster", "ForecasterEnsemble", "reducer"]

# how a tuned ensemble's networks combine (`Forecaster.combine`): median-point, the point forecast by the median and
# the band's edges by the mean
COMBINATIONS = ("mean", "median", "median-point")


def reducer(combine: str, part: str) -> Callable[..., np.ndarray]:
    """How `combine` reduces the members' `part` (`point` or `edge`) along an axis: np.median or np.mean."""
    return np.median if combine == "median" or (combine == "median-point" and part == "point") else np.mean


class Forecaster:
    """A trained forecaster: the next `horizon` steps of each series from its recent history.

    Args:
        reading: how the training data was read (columns, lookback, step, each series' scale).
        calibration: the band's conformal calibration (`seq2text.predict.conformal`), as a tuned bundle stores it:
            `{"band": [lower, upper], "level": upper - lower, "offsets": (horizon, V), "units": "series"}`, the
            offsets in units of each series' scale, or (`"units": "local"`, with `"local_steps"`) of its recent
            scale at the forecast origin (`SeriesReading.local_scale`; older bundles: of the network's scaled
            units); None: the network's quantiles as they are. Newer bundles keep the validation windows' scores,
            each step's spread and each series' `fit_end`; with `"online": true` the forecast adds the scores of
            the windows the history holds after the fit (`offsets`), and with `"adapt": γ` calibrates at the level
            adaptive conformal inference reaches over those windows (`seq2text.predict.conformal.adapted_level`);
            with `"decay": S` each score's weight halves every S steps of its age (`conformal.decayed`).
        members: a tuned ensemble's further networks and their readings (each may read another lookback or
            normalisation); the forecast combines every network's point forecast and band edges (`combine`), in
            the series' units, before the calibration widens the band.
        online_windows: an online calibration scores at most this many windows after the fit per forecast, the
            most recent of each series (an equal share each), so a long history costs a bounded time.
        combine: how an ensemble's networks combine: `mean` (each point and band edge averaged), `median`, or
            `median-point` (the point forecasts' median, the band edges' mean).
    """

    task = "forecasting"

    def __init__(self, net: SequenceRegressor, reading: SeriesReading, metrics: dict | None = None,
                 calibration: dict | None = None,
                 members: Sequence[tuple[SequenceRegressor, SeriesReading]] = (), online_windows: int = 1000,
                 combine: str = "mean") -> None:
        if combine not in COMBINATIONS:
            raise ConfigError(f"combine {combine!r}: give one of {', '.join(COMBINATIONS)}")
        self.net, self.reading, self.metrics, self.calibration = net.eval(), reading, metrics or {}, calibration
        self.online_windows, self.combine = online_windows, combine
        self.members = [(self.net, reading), *((member.eval(), member_reading) for member, member_reading in members)]
        self._series_numbers = {series_id: k for k, series_id in enumerate(reading.scales)}

    @classmethod
    def load(cls, path: str | Path) -> Forecaster:
        """Loads a bundle written by `seq2text fit` (raises BundleError for other tasks or broken bundles)."""
        bundle, net = _read(path, cls.task, SequenceRegressor, RegressorConfig)
        reading = SeriesReading.from_bundle(bundle.config, path)
        members = []
        for number, member in enumerate(bundle.config.get("members") or [], start=1):
            prefix = f"{MEMBERS}{number}."
            weights = {k.removeprefix(prefix): v for k, v in bundle.weights.items() if k.startswith(prefix)}
            members.append((_network(bundle, SequenceRegressor, RegressorConfig, member.get("net") or {}, weights),
                            SeriesReading.from_bundle(member, path)))
        return cls(net, reading, bundle.metrics, bundle.config.get("calibration"), members,
                   combine=bundle.config.get("combine", "mean"))

    @property
    def quantiles(self) -> tuple[float, ...]:
        """The quantiles it forecasts (empty: point forecasts only); a calibrated band's edges and the median."""
        if self.calibration or len(self.members) > 1:
            lower, upper = self._band
            return (lower, 0.5, upper)
        return self.net.config.quantiles

    @property
    def _band(self) -> tuple[float, float]:
        return tuple(self.calibration["band"]) if self.calibration else BAND

    @torch.inference_mode()
    def forecast(self, history: object, horizon: int | None = None) -> Any:  # noqa: ANN401 - a pandas DataFrame
        """Forecasts the next `horizon` steps (at most the trained horizon; None: all) of every series of `history`
        (a CSV/TSV/Parquet path or a DataFrame with the training columns: at least `lookback` steps per series).

        Returns:
            a DataFrame with the id column (if any), the future timestamps and the point forecast of each value
            column; a quantile model adds `<column>_q<percent>` columns (e.g. `value_q10`, `value_q90`).
        Raises:
            DataError: unreadable history (see `read_series`), too short, or spaced unlike the training data.
            ConfigError: a horizon beyond the trained one.
        """
        import pandas as pd
        reading = self.reading
        horizon = reading.horizon if horizon is None else horizon
        if not 1 <= horizon <= reading.horizon:
            raise ConfigError(f"horizon={horizon}: this model forecasts 1 to {reading.horizon} steps at once; "
                              "train with a larger data.horizon for more")
        where = str(history) if isinstance(history, str | Path) else "the history DataFrame"
        series = read_series(history, reading.time_column, reading.value_columns, reading.id_column, where)
        for one in series:
            for _, member_reading in self.members:
                member_reading.check_compatible(one, where)
        series = [replace(one, values=powered(one.values, reading.power, where=f"{where}, series {one.id!r},"))
                  for one in series]  # the values the networks read (reading.power; every member's the same)
        frames, point = [], self.quantiles.index(0.5) if self.quantiles else 0
        for one, predicted in zip(series, powered(self._predict(series), reading.power, inverse=True),
                                  strict=True):  # predicted (H, V, Q), in the series' units
            frame = {reading.id_column: [one.id] * horizon} if reading.id_column else {}
            frame[reading.time_column] = _future_times(one, reading.step, horizon)
            for v, column in enumerate(reading.value_columns):
                frame[column] = predicted[:horizon, v, point]
                for q, level in enumerate(self.quantiles):
                    if level != 0.5:
                        frame[f"{column}_q{round(level * 100):02d}"] = predicted[:horizon, v, q]
            frames.append(pd.DataFrame(frame))
        return pd.concat(frames, ignore_index=True)

    def _predict(self, series: list[Series]) -> np.ndarray:
        """Each series' forecast from its end in the values the networks read (`reading.power`), (N, horizon, V, Q):
        the network's quantiles, or (an ensemble, or a calibrated model) the band's lower edge, the point forecast and
        its upper edge."""
        ends = [(one, len(one)) for one in series]
        if len(self.members) == 1 and not self.calibration:
            return self._restored(self.net, self.reading, ends, band=False)
        low, point, high = self._combined_band(ends)
        if self.calibration:
            offsets = self.offsets(series) * self._offset_units(ends)[:, None, :]  # (N, H, V)
            low, high = calibrated_band(point, low, high, offsets)
        return np.stack([low, point, high], axis=-1)

    @torch.inference_mode()
    def _combined_band(self, origins: list[tuple[Series, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The members' band edges and point forecast from each origin combined (`combine`), (N, H, V) each."""
        stacked = np.stack([self._restored(net, reading, origins, band=True) for net, reading in self.members])
        low, point, high = np.moveaxis(stacked, -1, 0)  # (M, N, H, V) each
        edge = reducer(self.combine, "edge")
        return edge(low, axis=0), reducer(self.combine, "point")(point, axis=0), edge(high, axis=0)

    @torch.inference_mode()
    def offsets(self, series: list[Series]) -> np.ndarray:
        """The calibration's offsets for each of `series` (N, H, V), in the values the networks read (`series`
        transformed by `reading.power`, as `forecast` passes them). An online calibration (`calibration["online"]`)
        recomputes them from the validation scores it keeps and the scores of every window whose true values `series`
        hold after the fit (each series past its `fit_end`): the band follows the series as it goes on, without
        refitting; with `"adapt_by": "series"` each series' level adapts to its own windows only."""
        calibration = self.calibration
        stored = np.asarray(calibration["offsets"], dtype=np.float64)
        nominal = np.broadcast_to(stored, (len(series), *stored.shape))
        if not calibration.get("online"):
            return nominal
        new, starts, ends, ages, kept_age, ids = self._scores_after_fit(series)
        if not len(new):
            return nominal
        kept, spread = (np.asarray(calibration[key], dtype=np.float64) for key in ("scores", "spread"))
        kept_weights = np.full(len(kept), float(calibration.get("score_weight", 1.0)))
        levels = self._levels(kept, kept_weights, new, starts, ends, ids)
        scores = np.concatenate([kept, new.reshape(-1, new.shape[-1])])
        weights = np.concatenate([kept_weights, np.ones(len(scores) - len(kept))])
        if calibration.get("decay"):
            weights = decayed(weights, np.concatenate([np.full(len(kept), kept_age), np.repeat(ages, new.shape[1])]),
                              float(calibration["decay"]))
        cap = weights.sum() / (weights.sum() + 1)
        offsets = {key: offsets_of(scores, spread, min(float(one), cap), weights) for key, one in levels.items()}
        return np.stack([offsets[one.id] if one.id in offsets else offsets[None] for one in series])

    def _levels(self, kept: np.ndarray, kept_weights: np.ndarray, new: np.ndarray, starts: np.ndarray,
                ends: np.ndarray, ids: np.ndarray) -> dict:
        """The band's level: {None: the level} or, adapted by series (`adapt_by`), also {series id: its level}
        (`seq2text.predict.conformal.adapted_level`; scores as `_scores_after_fit` returns them)."""
        level, by, rate = float(self.calibration["level"]), self.calibration.get("adapt_by", "window"), \
            float(self.calibration.get("adapt") or 0.0)
        if not rate:
            return {None: level}
        adapted = adapted_level(level, rate, kept, kept_weights, new, starts, ends, by, ids if by == "series" else None)
        return {None: level, **dict(zip(np.unique(ids), adapted, strict=True))} if by == "series" \
            else {None: adapted[0]}

    def _scores_after_fit(self, series: list[Series]
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, np.ndarray]:
        """The conformity scores (m, H, V) of every full window of `series` whose true values all lie after the fit;
        each window's origin time, the time of its last true value, its age (steps before its series' newest
        origin), (m,) each; the age of the validation part's newest window (the kept scores'), in steps; and each
        window's series id (m,)."""
        ends, horizon = self.calibration.get("fit_end") or {}, self.reading.horizon
        lookback = max(reading.lookback for _, reading in self.members)
        fitted = {one.id: steps_after(one, ends[one.id]) for one in series if one.id in ends}  # first step after
        known = [one for one in series if one.id in fitted]
        share = max(1, self.online_windows // max(len(known), 1))  # the most recent windows of each series
        origins = [(one, origin) for one in known
                   for origin in range(max(fitted[one.id], lookback, len(one) - horizon + 1 - share),
                                       len(one) - horizon + 1)]
        if not origins:
            empty = np.zeros(0)
            return np.zeros((0, horizon, self.reading.num_values)), empty, empty, empty, 0, empty.astype(str)
        low, point, high = self._combined_band(origins)
        actual = np.stack([one.values[origin:origin + horizon] for one, origin in origins])  # (m, H, V)
        units = self._offset_units(origins)[:, None, :]
        scores, _ = conformal_scores(point / units, low / units, high / units, actual / units,
                                     np.asarray(self.calibration["spread"], dtype=np.float64))
        starts = np.array([one.times[origin] for one, origin in origins])
        last = np.array([one.times[origin + horizon - 1] for one, origin in origins])
        ages = np.array([len(one) - horizon - origin for one, origin in origins])
        kept_age = min(len(one) - fitted[one.id] for one in known)  # its newest window: origin fit end - H
        ids = np.array([one.id for one, _ in origins])
        return scores.reshape(len(origins), horizon, -1), starts, last, ages, kept_age, ids

    def _restored(self, net: SequenceRegressor, reading: SeriesReading, origins: list[tuple[Series, int]],
                  band: bool) -> np.ndarray:
        """One network's forecast of each series from its origin (the steps before it are the history), restored from
        the network's scaling (in the values it reads): (N, H, V, Q), or with `band` (N, H, V, 3): the band's edges
        (the point forecast for a network without those quantiles) and the point."""
        scales = [reading.window_scale(one, origin, reading.scale_of(one)) for one, origin in origins]
        inputs = torch.from_numpy(np.stack([reading.inputs(one, origin, scale)
                                            for (one, origin), scale in zip(origins, scales, strict=True)]))
        predicted = net(inputs, self._numbers(net, [one for one, _ in origins])).float()  # (N, H, V, Q)
        if band:
            predicted = net.band(predicted, self._band)
        last = np.stack([one.values[origin - 1] for one, origin in origins])[:, None, :, None]  # (N, 1, V, 1)
        return reading.restore(predicted.numpy().astype(np.float64), last, np.stack(scales)[:, None, :, None])

    def _offset_units(self, origins: list[tuple[Series, int]]) -> np.ndarray:
        """What the calibration's offsets are in, per origin, (N, V): the series' scale, its recent scale, or (older
        bundles) the scale of the window the network read."""
        reading, units = self.reading, self.calibration.get("units")
        if units == "series":
            return np.stack([reading.scale_of(one) for one, _ in origins])
        if units == "local":
            return np.stack([reading.local_scale(one, origin, int(self.calibration["local_steps"]))
                             for one, origin in origins])
        return np.stack([reading.window_scale(one, origin, reading.scale_of(one)) for one, origin in origins])

    def _numbers(self, net: SequenceRegressor, series: list[Series]) -> torch.Tensor | None:
        """Each series' row of the series embedding, (N,); None for a network without one."""
        if not net.config.series_embedding:
            return None
        unknown = [one.id for one in series if one.id not in self._series_numbers]
        if unknown:
            raise DataError(f"series {unknown[:5]} were not in the training panel (it had {len(self._series_numbers)}:"
                            f" {list(self._series_numbers)[:5]}...); a model with a series embedding forecasts the "
                            "series it was trained on: check the id column, or train on a panel with these series")
        return torch.tensor([self._series_numbers[one.id] for one in series], dtype=torch.long)


class ForecasterEnsemble(Ensemble):
    """Forecasters of the same columns, horizon and time step forecasting together: the mean of their point
    forecasts and of their quantiles (e.g. one recipe trained with several seeds)."""

    member = Forecaster
    rules = ((lambda member: _table(member.reading), "reads other columns, horizon or time step than member 0 ({mine} "
              "against {first}); ensemble forecasters trained on the same table"), SAME_QUANTILES)

    def __init__(self, members: Sequence[Forecaster]) -> None:
        members = self._join(members)
        self.reading, self.quantiles = members[0].reading, members[0].quantiles

    def forecast(self, history: object, horizon: int | None = None) -> Any:  # noqa: ANN401 - a pandas DataFrame
        """As `Forecaster.forecast`; every forecast column is the mean of the members'."""
        frames = [member.forecast(history, horizon) for member in self.members]
        mean = frames[0].copy()
        columns = [c for c in mean.columns if c not in (self.reading.time_column, self.reading.id_column)]
        mean[columns] = sum(frame[columns].to_numpy() for frame in frames) / len(frames)
        return mean


def _table(r: SeriesReading) -> tuple:
    """What a forecaster reads and forecasts: columns, horizon and time step."""
    return r.time_column, r.value_columns, r.id_column, r.horizon, r.step


def _future_times(series: Series, step: str | None, horizon: int) -> list:
    """The `horizon` timestamps after the series' last one."""
    import pandas as pd
    last = series.times[-1]
    if series.times.dtype.kind == "f":
        gap = float(step) if step is not None else float(series.times[-1] - series.times[-2])
        return [float(last + gap * k) for k in range(1, horizon + 1)]
    frequency = step or pd.infer_freq(pd.DatetimeIndex(series.times[-3:]))
    return list(pd.date_range(start=pd.Timestamp(last), periods=horizon + 1, freq=frequency)[1:])
