"""The sequence regressor: numbers in, numbers out (DESIGN: the same recurrent stack as the text models, with an
input projection where they have an embedding).

    input (B, L, input_size) → Linear → RNNStack (LSTM/GRU, 1..n layers, locked dropout between them)
      → the state after the last step (both directions' final states when bidirectional) → MLP head
      → (B, horizon, output_size, Q): every future step at once (direct multi-step), Q = 1 for a point
        forecast or one output per quantile (prediction intervals).
    + (autoregressive > 0) a linear autoregressive "highway" (LSTNet, Lai et al. 2018): the last
      `autoregressive` values of each variable → Linear → (B, horizon, output_size, 1), added to every output,
      so the recurrent stack learns what a linear forecast misses (trend and season extrapolate linearly;
      the network's output stays in the range it was trained on).
    + (series_embedding > 0) a learned vector per series of a panel, concatenated to every input step: one global
      model over many series that still tells them apart.
    + (damping > 0) a damped-trend baseline (Gardner & McKenzie's damped trend, fixed, not learned): the drift per step
      over the input's last `trend_steps` steps, step h of the forecast adding drift × (φ + φ² + … + φ^h), φ =
      `damping`; the network learns the deviation from it instead of from the last value.
    + (baseline `seasonal`) the seasonal-naive forecast under every output (the value one season before each
      future step, as ARIMA's seasonal difference reads it): the network learns the change from a season ago instead
      of from the last value.
    num_layers = 0: no recurrent stack: the linear highway alone plus a learned constant per output (with quantiles,
      each quantile's offset from the linear forecast): a linear autoregression of the lookback, direct multi-step,
      the classical candidate a tuner weighs against the recurrent ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from seq2text.nn.classifier import _mlp, pool
from seq2text.nn.config import Config
from seq2text.nn.normalization import BetweenLayers
from seq2text.nn.regularization import LockedDropout
from seq2text.nn.rnn import RNNStack, RNNType

__all__ = ["RegressorConfig", "SequenceRegressor"]


@dataclass(frozen=True)
class RegressorConfig(Config):
    """The regressor's architecture.

    Args:
        input_size: features per time step (values and covariates).
        output_size: variables predicted at each future step.
        horizon: future steps predicted at once.
        hidden_size: width of the projection and of every recurrent layer (per direction).
        num_layers: recurrent depth; 0: none, the linear highway alone (needs autoregressive > 0; see the module
            docstring).
        rnn_type: `lstm`, `gru`, `rnn`, `lstm_peephole` or `lstm_layernorm`.
        bidirectional: read the history both ways.
        dropout: locked dropout between recurrent layers and dropout before each layer of the head.
        head_sizes: hidden widths of the MLP head (empty: one linear layer).
        quantiles: predict these quantiles (pinball loss) instead of one point; must include 0.5, the point
            forecast.
        between_layers: normalisation between recurrent layers: `none`, `layernorm` or `batchnorm`.
        autoregressive: steps of each variable's most recent history fed to the linear highway (0: none); at
            most the lookback. Its weights are shared by all variables, as in LSTNet.
        num_series: the series of the panel it was trained on (their embedding rows; 0: none).
        series_embedding: width of each series' learned vector, concatenated to every input step (0: none).
        damping: the damped-trend baseline's φ in [0, 1] (see the module docstring; 0: none, the forecast is relative
            to the last value alone; 1: the drift undamped).
        trend_steps: the steps the baseline's drift is measured over (the mean step change of the input's last
            `trend_steps` + 1 values); with damping > 0, at least 1 and less than the lookback.
        baseline: what the outputs are relative to: `last`, the last value (the input's units), or `seasonal`, the
            seasonal-naive forecast of each step (see the module docstring; needs `season` ≥ 1 and a lookback of at
            least one season).
        season: the seasonal period of the `seasonal` baseline.
    """

    input_size: int
    output_size: int = 1
    horizon: int = 1
    hidden_size: int = 64
    num_layers: int = 2
    rnn_type: RNNType = "lstm"
    bidirectional: bool = False
    dropout: float = 0.1
    head_sizes: tuple[int, ...] = ()
    quantiles: tuple[float, ...] = ()
    between_layers: BetweenLayers = "none"
    autoregressive: int = 0
    num_series: int = 0
    series_embedding: int = 0
    damping: float = 0.0
    trend_steps: int = 0
    baseline: Literal["last", "seasonal"] = "last"
    season: int = 0

    def __post_init__(self) -> None:
        if min(self.input_size, self.output_size, self.horizon, self.hidden_size) < 1 or self.num_layers < 0:
            raise ValueError("input_size, output_size, horizon and hidden_size must be positive, num_layers ≥ 0")
        if self.num_layers == 0 and (self.autoregressive < 1 or self.series_embedding):
            raise ValueError("num_layers=0 is the linear highway alone: it needs autoregressive ≥ 1 and no "
                             "series_embedding")
        if self.autoregressive < 0 or self.output_size > self.input_size:
            raise ValueError(f"autoregressive={self.autoregressive} must be ≥ 0 (0: no linear highway) and "
                             f"output_size={self.output_size} at most input_size={self.input_size}")
        if self.series_embedding < 0 or (self.series_embedding > 0 and self.num_series < 1):
            raise ValueError(f"series_embedding={self.series_embedding} must be ≥ 0 and needs num_series ≥ 1 (the "
                             f"panel's series; got {self.num_series})")
        if not 0.0 <= self.damping <= 1.0 or (self.damping > 0 and self.trend_steps < 1):
            raise ValueError(f"damping={self.damping} must lie in [0, 1] (0: no trend baseline), and with damping > 0 "
                             f"trend_steps={self.trend_steps} must be ≥ 1")
        if self.baseline not in ("last", "seasonal") or (self.baseline == "seasonal" and self.season < 1):
            raise ValueError(f"baseline={self.baseline!r} must be last or seasonal, and seasonal needs season ≥ 1 "
                             f"(got {self.season})")
        if self.quantiles and (0.5 not in self.quantiles or not all(0 < q < 1 for q in self.quantiles)
                               or list(self.quantiles) != sorted(set(self.quantiles))):
            raise ValueError(f"quantiles={list(self.quantiles)} must increase strictly within (0, 1) and include "
                             "0.5 (the point forecast)")

    @property
    def num_outputs(self) -> int:
        """Outputs per variable and step: one per quantile, or one point."""
        return max(1, len(self.quantiles))


class SequenceRegressor(nn.Module):
    """Input projection → recurrent stack → dense head, from a `RegressorConfig`."""

    def __init__(self, config: RegressorConfig) -> None:
        super().__init__()
        self.config = config
        outputs = config.horizon * config.output_size * config.num_outputs
        self.series = nn.Embedding(config.num_series, config.series_embedding) if config.series_embedding else None
        if config.num_layers:
            self.project = nn.Linear(config.input_size + config.series_embedding, config.hidden_size)
            self.rnn = RNNStack(config.rnn_type, config.hidden_size, config.hidden_size, config.hidden_size,
                                config.num_layers, config.dropout, bidirectional=config.bidirectional,
                                between_layers=config.between_layers)
            self.output_dropout = LockedDropout(config.dropout)
            self.head = _mlp(self.rnn.output_size, config.head_sizes, outputs, config.dropout)
        else:  # the linear highway alone: a constant per output
            self.constant = nn.Parameter(torch.zeros(outputs))
        self.highway = nn.Linear(config.autoregressive, config.horizon) if config.autoregressive else None
        if self.highway is not None:  # starts as the last-value forecast; the stack's output is added to it
            nn.init.zeros_(self.highway.weight)
            nn.init.zeros_(self.highway.bias)

    def forward(self, x: torch.Tensor, series: torch.Tensor | None = None) -> torch.Tensor:
        """x: (batch, lookback, input_size), the predicted variables first; series: each window's series number
        (batch,), needed with a series embedding → predictions (batch, horizon, output_size, Q), Q = `num_outputs`."""
        c = self.config
        predictions = self._recurrent(x, series) if c.num_layers else self.constant.expand(x.size(0), -1)
        predictions = predictions.view(x.size(0), c.horizon, c.output_size, c.num_outputs).float()
        if c.damping > 0:
            predictions = predictions + self._trend(x)
        if c.baseline == "seasonal":
            predictions = predictions + self._seasonal(x)
        if self.highway is None:
            return predictions
        if x.size(1) < c.autoregressive:
            raise ValueError(f"the linear highway reads {c.autoregressive} steps but the input has {x.size(1)}")
        recent = x[:, -c.autoregressive:, : c.output_size].transpose(1, 2)  # (B, V, k)
        linear = self.highway(recent).transpose(1, 2).unsqueeze(-1)  # (B, H, V, 1)
        return predictions + linear.float()

    def _trend(self, x: torch.Tensor) -> torch.Tensor:
        """The damped-trend baseline, (B, horizon, output_size, 1), from x (B, L, input_size) read relative to its last
        value (so the drift per step is −x[:, −1 − trend_steps] / trend_steps)."""
        c = self.config
        if x.size(1) <= c.trend_steps:
            raise ValueError(f"the trend baseline reads {c.trend_steps + 1} steps but the input has {x.size(1)}")
        drift = -x[:, -1 - c.trend_steps, : c.output_size].float() / c.trend_steps  # (B, V)
        powers = c.damping ** torch.arange(1, c.horizon + 1, device=x.device, dtype=torch.float32)
        profile = powers.cumsum(0)  # (H,): φ + … + φ^h
        return (profile.view(1, -1, 1) * drift.unsqueeze(1)).unsqueeze(-1)

    def _seasonal(self, x: torch.Tensor) -> torch.Tensor:
        """The seasonal-naive forecast in the input's units, (B, horizon, output_size, 1): step h (from 0) reads the
        input's position L + h − season × (h // season + 1), the same season one or more cycles before."""
        c, length = self.config, x.size(1)
        if length < c.season:
            raise ValueError(f"the seasonal baseline reads one season ({c.season} steps) but the input has {length}")
        steps = torch.arange(c.horizon, device=x.device)
        positions = length + steps - c.season * (steps // c.season + 1)  # (H,) in [L − season, L − 1]
        return x[:, positions, : c.output_size].float().unsqueeze(-1)

    def _recurrent(self, x: torch.Tensor, series: torch.Tensor | None) -> torch.Tensor:
        """The recurrent stack's outputs from the state after the last step, (B, horizon × output_size × Q)."""
        out, _ = self.rnn(self.project(self._with_series(x, series)))  # (B, L, hidden × directions)
        lengths = torch.full((x.size(0),), x.size(1), device=x.device)
        return self.head(pool(self.output_dropout(out), lengths, "last", self.config.bidirectional))

    def _with_series(self, x: torch.Tensor, series: torch.Tensor | None) -> torch.Tensor:
        """x with its series' embedding appended to every step, (B, L, input_size + series_embedding)."""
        if self.series is None:
            return x
        if series is None:
            raise ValueError("this network embeds series: pass each window's series number")
        vectors = self.series(series).unsqueeze(1).expand(-1, x.size(1), -1)  # (B, L, E)
        return torch.cat([x, vectors.to(x.dtype)], dim=-1)

    def point(self, predictions: torch.Tensor) -> torch.Tensor:
        """The point forecast, (..., output_size): the median where quantiles are predicted."""
        return predictions[..., self.config.quantiles.index(0.5) if self.config.quantiles else 0]

    def band(self, predictions: torch.Tensor, levels: tuple[float, float]) -> torch.Tensor:
        """The band's lower edge, the point forecast and its upper edge, (..., output_size, 3): each edge the quantile
        of its level, or the point forecast for a network that does not predict that quantile."""
        point, quantiles = self.point(predictions), self.config.quantiles or ()
        low, high = (predictions[..., quantiles.index(q)] if q in quantiles else point for q in levels)
        return torch.stack([low, point, high], dim=-1)
