"""ForecastingTask: an LSTM/GRU stack and a dense head forecasting the next `horizon` steps of numeric series."""

from __future__ import annotations

from dataclasses import asdict, replace

import torch

from seq2text.data.batches import SeriesBatch
from seq2text.errors import ConfigError
from seq2text.nn.loss import regression_loss
from seq2text.nn.regressor import RegressorConfig, SequenceRegressor
from seq2text.predict.metrics import FORECAST_SUMS, forecast_scores, forecast_sums
from seq2text.predict.shared import MEMBERS
from seq2text.tasks.base import Task, shipped
from seq2text.tasks.config import ForecastNetwork, Objective, Optimization

__all__ = ["ForecastingTask", "trend_steps"]


def trend_steps(season: int, horizon: int, lookback: int) -> int:
    """The steps a damped-trend baseline measures its drift over where the recipe leaves it at 0: one season (its
    changes cancel the seasonal pattern), or the horizon for a series without one; at most lookback − 1."""
    return max(1, min(season if season > 1 else horizon, lookback - 1))


class ForecastingTask(Task):
    """Trains a `SequenceRegressor` on forecast windows; reports MAE, RMSE, sMAPE and MASE in the series' units,
    and the seasonal-naive forecast's MAE on the same windows (`rel_mae_snaive` < 1: better than it).

    Args:
        input_size, output_size, output_steps: features per step, variables, horizon; None takes them from the
            data module (checked when given).
        num_series: the panel's series (rows of the series embedding, with network.series_embedding > 0); None takes
            it from the data module.
        network: the architecture (`seq2text.tasks.config.ForecastNetwork`).
        objective: the loss and its quantiles (`Objective`; huber_delta in units of the series' scale).
        optim: see `Optimization`.
    """

    bundle_task = "forecasting"

    def __init__(
        self,
        input_size: int | None = None,
        output_size: int | None = None,
        output_steps: int | None = None,
        num_series: int | None = None,
        network: ForecastNetwork = ForecastNetwork(),
        objective: Objective = Objective(),
        optim: Optimization = Optimization("adam", 3e-3),
    ) -> None:
        super().__init__(optim)
        network.check()
        self.network, self.objective, self.quantiles = network, objective, objective.resolved()
        self.save_settings()
        self.net: SequenceRegressor | None = None
        self.calibration: dict | None = None  # conformal offsets of the band (seq2text.tasks.tuning), for the bundle
        self.members: list[tuple[SequenceRegressor, dict]] = []  # a tuned ensemble's further networks and readings
        self.combine = "mean"  # how the ensemble's networks combine (`Forecaster.combine`), as a tuner set it
        if None not in (input_size, output_size, output_steps):
            self._build(input_size, output_size, output_steps, num_series or 0)

    def _build(self, input_size: int, output_size: int, horizon: int, num_series: int) -> None:
        values = {**asdict(self.network), "head_sizes": tuple(self.network.head_sizes or ()),
                  "quantiles": self.quantiles, "num_series": num_series if self.network.series_embedding else 0}
        try:
            config = RegressorConfig(input_size, output_size, horizon, **values)
        except ValueError as error:
            raise ConfigError(f"model: {error}") from None
        self.net = SequenceRegressor(config)
        self.hparams.update(input_size=input_size, output_size=output_size, output_steps=horizon,
                            num_series=config.num_series)

    def setup(self, stage: str) -> None:
        """Takes (or checks) the network's shape from the data module's reading spec."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        reading = getattr(datamodule, "reading", None)
        if reading is None:
            if self.net is None:
                raise ConfigError("model.input_size/output_size/output_steps are not set and there is no data module")
            return
        hp, shape = self.hparams, (reading.input_size, reading.num_values, reading.horizon)
        wrong = [f"model.{name}={hp[name]} but the data gives {s}" for name, s in
                 zip(("input_size", "output_size", "output_steps"), shape, strict=True) if hp[name] not in (None, s)]
        if wrong:
            raise ConfigError("; ".join(wrong) + "; leave them unset (the data module sets them)")
        if self.network.autoregressive > reading.lookback:
            raise ConfigError(f"model.network.autoregressive={self.network.autoregressive} reads more steps than "
                              f"data.lookback={reading.lookback}; lower it or raise the lookback")
        if self.network.damping > 0 and not self.network.trend_steps:
            self.network = replace(self.network, trend_steps=trend_steps(reading.season, reading.horizon,
                                                                         reading.lookback))
        if self.network.baseline == "seasonal" and not self.network.season:
            self.network = replace(self.network, season=reading.season)
        self.hparams["network"] = asdict(self.network)  # what the data resolved, as the checkpoint's settings
        if self.net is None:
            self._build(*shape, len(reading.scales))

    # ------------------------------------------------------------------------------------------ steps
    def _predict(self, batch: SeriesBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictions (n, H, V, Q) and targets (n, H, V) of the real (non-filler) windows, in scaled units."""
        real = batch.indices >= 0
        return self.net(batch.input[real], batch.series[real]), batch.target[real]

    def _loss(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The objective's loss of each prediction, (n, H, V)."""
        return regression_loss(predicted, target, self.objective.loss, self.quantiles, self.objective.huber_delta)

    def training_step(self, batch: SeriesBatch, batch_idx: int) -> torch.Tensor:
        predicted, target = self._predict(batch)
        losses = self._loss(predicted, target)  # (n, H, V)
        total = (losses * batch.weight[batch.indices >= 0].view(-1, 1, 1)).sum()
        self.log("train/loss", total.detach() / max(losses.numel(), 1), prog_bar=True, batch_size=target.size(0))
        return self.global_mean(total, losses.numel())

    def _eval_step(self, batch: SeriesBatch, stage: str) -> None:
        real = batch.indices >= 0
        if not bool(real.any()):  # a filler batch
            return
        predicted, target = self._predict(batch)
        loss = self._loss(predicted, target).sum()
        last, scale = batch.last[real].unsqueeze(1), batch.scale[real].unsqueeze(1)  # (n, 1, V)
        actual = target * scale + last  # (n, H, V) in the series' units
        point = self.net.point(predicted) * scale + last
        naive = batch.naive[real] * scale + last
        sums = forecast_sums(actual, point, batch.mase_scale[real].unsqueeze(1), naive)
        self.add_sums(stage, *sums, loss)

    def _log_eval(self, stage: str) -> None:
        sums = self.gathered_sums(stage, len(FORECAST_SUMS) + 1)
        scores = forecast_scores(sums[:-1])
        count = max(float(sums[len(FORECAST_SUMS) - 1]), 1.0)
        for name, value in scores.items():
            self.log(f"{stage}/{name}", value, prog_bar=name == "mase", rank_zero_only=True)
        self.log(f"{stage}/loss", float(sums[-1]) / count, rank_zero_only=True)
        self.log(f"{stage}/windows", count / (self.net.config.horizon * self.net.config.output_size),
                 rank_zero_only=True)

    def bundle_extra(self) -> dict:
        """The band's conformal calibration, when a tuner measured it (`Forecaster` applies it), and the further
        members of a tuned ensemble: each one's network configuration and reading (its weights: `export_state`), and
        how they combine."""
        extra = {"calibration": self.calibration} if self.calibration else {}
        if self.members:
            extra["members"] = [{"net": net.config.to_dict(), "reading": reading} for net, reading in self.members]
            extra["combine"] = self.combine
        return extra

    def export_state(self) -> dict[str, torch.Tensor]:
        """The network's weights, and each further member's under `members.<number>.` (numbered from 1)."""
        state = super().export_state()
        for number, (net, _) in enumerate(self.members, start=1):
            state.update(shipped(net.state_dict(), f"{MEMBERS}{number}."))
        return state

    def throughput_metrics(self, batch: SeriesBatch, seconds: float) -> dict[str, float]:
        return {"train/steps_per_sec": batch.num_tokens / seconds,
                "train/windows_per_sec": batch.input.size(0) / seconds}
