"""ForecastingTask: an LSTM/GRU stack and a dense head forecasting the next `horizon` steps of numeric series."""

from __future__ import annotations

from typing import Literal

import torch

from seq2text.data.batches import SeriesBatch
from seq2text.errors import ConfigError
from seq2text.nn.loss import regression_loss
from seq2text.nn.normalization import BetweenLayers
from seq2text.nn.regressor import RegressorConfig, SequenceRegressor
from seq2text.nn.rnn import RNNType
from seq2text.predict.metrics import FORECAST_SUMS, forecast_scores, forecast_sums
from seq2text.tasks.base import Task
from seq2text.tasks.shared import global_mean

__all__ = ["ForecastingTask"]

Loss = Literal["mse", "mae", "huber", "quantile"]


class ForecastingTask(Task):
    """Trains a `SequenceRegressor` on forecast windows; reports MAE, RMSE, sMAPE and MASE in the series' units,
    and the seasonal-naive forecast's MAE on the same windows (`rel_mae_snaive` < 1: better than it).

    Args:
        input_size, output_size, output_steps: the network's shape (features per step, variables, the
            horizon); None takes it from the data module (the CLI case), and a given value must match it.
        hidden_size, num_layers, rnn_type, bidirectional, dropout, head_sizes, between_layers, autoregressive: see
            `RegressorConfig` (autoregressive: the linear highway's steps, at most data.lookback).
        loss: `mse`, `mae`, `huber` or `quantile` (pinball loss on `quantiles`: prediction intervals).
        quantiles: the quantiles of `quantile` (must include 0.5, the point forecast).
        huber_delta: where `huber` turns linear (in units of the series' scale).
        optimizer: `adam` or `adamw`; lr: peak learning rate; weight_decay: L2 or decoupled decay.
        lr_schedule: `constant`, `cosine` or `linear` over training (the budget if one is set).
        warmup_steps: linear warm-up steps; min_lr_ratio: the schedule's floor.
    """

    bundle_task = "forecasting"

    def __init__(
        self,
        input_size: int | None = None,
        output_size: int | None = None,
        output_steps: int | None = None,
        hidden_size: int = 64,
        num_layers: int = 2,
        rnn_type: RNNType = "lstm",
        bidirectional: bool = False,
        dropout: float = 0.1,
        head_sizes: list[int] | None = None,
        loss: Loss = "mse",
        quantiles: list[float] | None = None,
        huber_delta: float = 1.0,
        optimizer: Literal["adam", "adamw"] = "adam",
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        lr_schedule: Literal["constant", "cosine", "linear"] = "cosine",
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.0,
        between_layers: BetweenLayers = "none",
        autoregressive: int = 0,
    ) -> None:
        super().__init__()
        if not 0 <= dropout < 1 or lr <= 0 or weight_decay < 0 or huber_delta <= 0:
            raise ConfigError("model: dropout lies in [0, 1), lr and huber_delta are > 0, weight_decay ≥ 0")
        if loss == "quantile" and not quantiles:
            quantiles = [0.1, 0.5, 0.9]
        if loss != "quantile" and quantiles:
            raise ConfigError("model.quantiles needs model.loss: quantile (the other losses fit one point)")
        self.save_hyperparameters()
        self.net: SequenceRegressor | None = None
        if None not in (input_size, output_size, output_steps):
            self._build(input_size, output_size, output_steps)

    def _build(self, input_size: int, output_size: int, horizon: int) -> None:
        hp = self.hparams
        try:
            config = RegressorConfig(input_size, output_size, horizon, hp.hidden_size, hp.num_layers, hp.rnn_type,
                                     hp.bidirectional, hp.dropout, tuple(hp.head_sizes or ()),
                                     tuple(hp.quantiles or ()), hp.between_layers, hp.autoregressive)
        except ValueError as error:
            raise ConfigError(f"model: {error}") from None
        self.net = SequenceRegressor(config)
        self.hparams.update(input_size=input_size, output_size=output_size, output_steps=horizon)

    def setup(self, stage: str) -> None:
        """Takes (or checks) the network's shape from the data module's reading spec."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        reading = getattr(datamodule, "reading", None)
        if reading is None:
            if self.net is None:
                raise ConfigError("model.input_size/output_size/output_steps are not set and there is no data module")
            return
        shape = (reading.input_size, reading.num_values, reading.horizon)
        given = (self.hparams.input_size, self.hparams.output_size, self.hparams.output_steps)
        wrong = [f"model.{name}={g} but the data gives {s}" for name, g, s in
                 zip(("input_size", "output_size", "output_steps"), given, shape, strict=True)
                 if g is not None and g != s]
        if wrong:
            raise ConfigError("; ".join(wrong) + "; leave them unset (the data module sets them)")
        if self.hparams.autoregressive > reading.lookback:
            raise ConfigError(f"model.autoregressive={self.hparams.autoregressive} reads more steps than "
                              f"data.lookback={reading.lookback}; lower it or raise the lookback")
        if self.net is None:
            self._build(*shape)

    # ------------------------------------------------------------------------------------------ steps
    def _predict(self, batch: SeriesBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictions (n, H, V, Q) and targets (n, H, V) of the real (non-filler) windows, in scaled units."""
        real = batch.indices >= 0
        return self.net(batch.input[real]), batch.target[real]

    def training_step(self, batch: SeriesBatch, batch_idx: int) -> torch.Tensor:
        predicted, target = self._predict(batch)
        hp = self.hparams
        losses = regression_loss(predicted, target, hp.loss, tuple(hp.quantiles or ()), hp.huber_delta)  # (n, H, V)
        total = losses.sum()
        self.log("train/loss", total.detach() / max(losses.numel(), 1), prog_bar=True, batch_size=target.size(0))
        return global_mean(self, total, losses.numel())

    def _eval_step(self, batch: SeriesBatch, stage: str) -> None:
        real = batch.indices >= 0
        if not bool(real.any()):  # a filler batch
            return
        predicted, target = self._predict(batch)
        hp = self.hparams
        loss = regression_loss(predicted, target, hp.loss, tuple(hp.quantiles or ()), hp.huber_delta).sum()
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

    def on_validation_epoch_end(self) -> None:
        self._log_eval("val")

    def on_test_epoch_end(self) -> None:
        self._log_eval("test")

    # ------------------------------------------------------------------------------------------ optimization
    def configure_optimizers(self) -> torch.optim.Optimizer:
        hp = self.hparams
        return self.make_adam(self.net.parameters(), hp.optimizer == "adamw", lr=hp.lr, weight_decay=hp.weight_decay)

    def throughput_metrics(self, batch: SeriesBatch, seconds: float) -> dict[str, float]:
        return {"train/steps_per_sec": batch.num_tokens / seconds,
                "train/windows_per_sec": batch.input.size(0) / seconds}
