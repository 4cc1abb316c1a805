"""The groups the tasks' arguments come in: frozen dataclasses that LightningCLI types and checks, nested under
`model.init_args` in a recipe (`optim: {lr: 0.003}`). `Optimization` is every task's; the others belong to one
or two tasks. A field left out of a recipe keeps the task's default for it."""

from __future__ import annotations

import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, fields, make_dataclass
from typing import Literal

from seq2text.errors import ConfigError
from seq2text.nn.classifier import ClassifierConfig
from seq2text.nn.regressor import RegressorConfig
from seq2text.nn.seq2seq import Seq2SeqConfig

__all__ = ["ClassifierNetwork", "FineTuning", "ForecastNetwork", "Objective", "Optimization", "Regularization",
           "Seq2SeqNetwork", "TextObjective", "check_ranges", "check_support"]


def check_ranges(group: str, settings: object, zero_allowed: tuple[str, ...] = ()) -> None:
    """Each dropout and smoothing of `settings` (a group, under `model.<group>`) lies in [0, 1); each size, depth
    and length is a positive integer (or None where allowed; ≥ 0 for those in `zero_allowed`)."""
    for field in fields(settings):
        name, value = field.name, getattr(settings, field.name)
        if name.startswith(("dropout", "weight_dropout", "label_smoothing")) and not 0.0 <= value < 1.0:
            raise ConfigError(f"model.{group}.{name}={value} is out of range; it lies in [0, 1)")
        if name.endswith(("_size", "_layers", "bptt", "_len")) and isinstance(value, int) and value < 1 \
                and not (name in zero_allowed and value == 0):
            raise ConfigError(f"model.{group}.{name}={value} must be a positive integer"
                              + (" (or 0, see its docstring)" if name in zero_allowed else ""))


@dataclass(frozen=True)
class Optimization:
    """How a task trains (`optim`): a step's learning rate is `lr` × linear warm-up × the schedule's shape at the
    training progress (of the wall-clock budget, else max_steps/max_epochs) × the language model's plateau decays.

    Attributes:
        optimizer: `sgd` (language models, AWD-LSTM), `adam` or `adamw`.
        lr: peak learning rate (a classifier's head; its lower layer groups are scaled down from it).
        weight_decay: L2 (sgd, adam) or decoupled (adamw) weight decay.
        momentum: SGD momentum.
        betas: Adam's betas (ULMFiT uses (0.8, 0.99)).
        lr_schedule: `constant`; `cosine` / `linear` annealing to `min_lr_ratio`; `slanted_triangular` (ULMFiT:
            from lr / stlr_ratio up to lr for `stlr_cut_frac` of training, then back); `plateau` (language models:
            × `plateau_factor` each time validation stops improving).
        warmup_steps: linear warm-up steps, on top of the schedule.
        min_lr_ratio: floor of the cosine/linear schedules, as a share of `lr`.
        plateau_factor: learning-rate factor applied on a plateau.
        stlr_cut_frac: share of training the slanted triangular schedule spends rising.
        stlr_ratio: its peak-to-floor ratio.
    """

    optimizer: Literal["sgd", "adam", "adamw"] = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    lr_schedule: Literal["constant", "cosine", "linear", "slanted_triangular", "plateau"] = "cosine"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    plateau_factor: float = 0.25
    stlr_cut_frac: float = 0.1
    stlr_ratio: float = 32.0

    def check(self, language_model: bool = False) -> None:
        """Refuses values out of range, and `sgd`/`plateau` outside a language model."""
        if not language_model and (self.optimizer == "sgd" or self.lr_schedule == "plateau"):
            raise ConfigError("model.optim: sgd and the plateau schedule are for language models; use adam or adamw "
                              "with constant, cosine, linear or slanted_triangular")
        if self.lr <= 0 or self.weight_decay < 0 or self.momentum < 0 or self.warmup_steps < 0:
            raise ConfigError("model.optim: lr must be > 0; weight_decay, momentum and warmup_steps ≥ 0")
        if not 0 <= self.min_lr_ratio <= 1 or not 0 < self.plateau_factor <= 1:
            raise ConfigError("model.optim: min_lr_ratio lies in [0, 1] and plateau_factor in (0, 1]")
        if not 0.0 < self.stlr_cut_frac < 1.0 or self.stlr_ratio < 1.0:
            raise ConfigError("model.optim: stlr_cut_frac lies in (0, 1) and stlr_ratio ≥ 1")


@dataclass(frozen=True)
class Regularization:
    """A language model's regularizers (`regularization`, AWD-LSTM).

    Attributes:
        dropout, dropout_hidden, dropout_input, dropout_embedding, weight_dropout: see `LMConfig`.
        alpha: activation regularization (AR) weight.
        beta: temporal activation regularization (TAR) weight.
        asgd: NT-ASGD: average the weights once validation has not improved for `nonmono` epochs (evaluation and
            the bundle use the average).
        nonmono: NT-ASGD's non-monotone interval.
    """

    dropout: float = 0.4
    dropout_hidden: float = 0.3
    dropout_input: float = 0.65
    dropout_embedding: float = 0.1
    weight_dropout: float = 0.5
    alpha: float = 2.0
    beta: float = 1.0
    asgd: bool = False
    nonmono: int = 5

    def check(self) -> None:
        check_ranges("regularization", self)
        if self.alpha < 0 or self.beta < 0 or self.nonmono < 1:
            raise ConfigError("model.regularization: alpha and beta must be ≥ 0, nonmono ≥ 1")


def _network(name: str, doc: str, config: type, drop: tuple[str, ...], optional: tuple[str, ...] = (),
             check: Callable[[object], None] | None = None, zero_allowed: tuple[str, ...] = (),
             **namespace: object) -> type:
    """A `network` group: a frozen dataclass with the fields of the nn `config` (its types and defaults) but `drop`;
    those in `optional` default to None, and tuples are lists (None: empty), as a recipe writes them. Its `check()`
    runs `check_ranges` (`zero_allowed`: sizes that may be 0), then `check`."""
    hints, specs = typing.get_type_hints(config), []
    for f in fields(config):
        kind, default = hints[f.name], f.default
        if f.name in optional or typing.get_origin(kind) is tuple:
            kind = list[typing.get_args(kind)[0]] if typing.get_origin(kind) is tuple else kind
            kind, default = kind | None, None
        specs += [] if f.name in drop else [(f.name, kind, default)]

    def check_group(self: object) -> None:
        check_ranges("network", self, zero_allowed)
        if check is not None:
            check(self)

    group = make_dataclass(name, specs, frozen=True, namespace={"__doc__": doc, "check": check_group, **namespace})
    group.__module__ = __name__
    return group


def _positive_head(network: object) -> None:
    if min(network.head_sizes or [1]) < 1:
        raise ConfigError(f"model.network.head_sizes={network.head_sizes} must be positive integers")


ClassifierNetwork = _network(
    "ClassifierNetwork", """A classifier's network (`network`); every field as in `ClassifierConfig`. The
    architecture fields left at None take the from-scratch defaults (`SCRATCH`), or, with `pretrained_lm`, the
    language model's (unidirectional); a value given must then agree with the language model's.""",
    ClassifierConfig, ("vocab_size", "num_classes", "output_size"), check=_positive_head,
    optional=("emb_size", "hidden_size", "num_layers", "rnn_type", "bidirectional", "between_layers"),
    SCRATCH={"emb_size": 300, "hidden_size": 256, "num_layers": 1, "rnn_type": "lstm", "bidirectional": True,
             "between_layers": "none"})


@dataclass(frozen=True)
class FineTuning:
    """How a classifier trains beyond its optimizer (`fine_tuning`; ULMFiT's recipe and distillation).

    Attributes:
        discriminative_lr: each layer group below the head learns at lr / discriminative_lr^depth (depth 1 = the
            last recurrent layer, ..., the embedding deepest); 2.6 in ULMFiT, 1 = off.
        gradual_unfreezing: train the head alone first, then unfreeze one more layer group (top down) every
            `unfreeze_interval` epochs (fractions allowed, e.g. 0.25).
        unfreeze_interval: see `gradual_unfreezing`.
        embedding_lr_scale: the embedding's share of its learning rate (on top of `discriminative_lr`); 0 freezes
            it, e.g. to keep `word_vectors` in one space with the words the labeled data lacks.
        label_smoothing: cross-entropy label smoothing.
        soft_target_weight: with a teacher's probabilities in the data (`data.train_soft_targets`, distillation),
            the loss is this weight × the cross-entropy against them + the rest × that against the gold labels.
    """

    discriminative_lr: float = 1.0
    gradual_unfreezing: bool = False
    unfreeze_interval: float = 1.0
    embedding_lr_scale: float = 1.0
    label_smoothing: float = 0.0
    soft_target_weight: float = 1.0

    def check(self) -> None:
        check_ranges("fine_tuning", self)
        if self.discriminative_lr < 1.0 or self.unfreeze_interval <= 0:
            raise ConfigError("model.fine_tuning: discriminative_lr ≥ 1 (1 = off) and unfreeze_interval > 0")
        for name, value in (("embedding_lr_scale", self.embedding_lr_scale),
                            ("soft_target_weight", self.soft_target_weight)):
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"model.fine_tuning.{name}={value} lies in [0, 1]")


def _luong_dot_width(network: object) -> None:
    encoder = network.encoder_hidden_size or network.hidden_size // 2
    if network.attention == "luong_dot" and 2 * encoder != network.hidden_size:
        raise ConfigError("luong_dot attention needs 2 × encoder_hidden_size == hidden_size; leave "
                          "network.encoder_hidden_size unset or use luong_general / bahdanau")


Seq2SeqNetwork = _network("Seq2SeqNetwork", "A translation network (`network`); every field as in `Seq2SeqConfig`.",
                          Seq2SeqConfig, ("vocab_size", "pad_id", "bos_id", "eos_id"), check=_luong_dot_width)
ForecastNetwork = _network(
    "ForecastNetwork", """A forecaster's network (`network`); every field as in `RegressorConfig` (autoregressive:
    the linear highway's steps, at most data.lookback; series_embedding: a learned vector per series of a panel, the
    number of series taken from the data; num_layers 0: the linear highway alone; trend_steps 0 with damping > 0: one
    season, or the horizon without one, at most lookback − 1, `tasks.forecasting.trend_steps`; season 0 with baseline
    seasonal: data.season).""", RegressorConfig,
    ("input_size", "output_size", "horizon", "quantiles", "num_series"), zero_allowed=("num_layers",))


@dataclass(frozen=True)
class Objective:
    """The loss of a task that predicts numbers (`objective`: forecasting, text regression).

    Attributes:
        loss: `mse`, `mae`, `huber` or `quantile` (pinball loss on `quantiles`: prediction intervals).
        quantiles: the quantiles of `quantile` (with 0.5, the point prediction; None: 0.1, 0.5 and 0.9).
        huber_delta: where `huber` turns linear (in units of the (scaled) target).
    """

    loss: Literal["mse", "mae", "huber", "quantile"] = "mse"
    quantiles: list[float] | None = None
    huber_delta: float = 1.0

    def resolved(self) -> tuple[float, ...]:
        """The quantiles the head predicts (empty for a point loss), checked."""
        quantiles = tuple(self.quantiles or ((0.1, 0.5, 0.9) if self.loss == "quantile" else ()))
        if self.loss != "quantile" and quantiles:
            raise ConfigError("model.objective.quantiles needs objective.loss: quantile (the other losses fit one "
                              "point)")
        if quantiles and (0.5 not in quantiles or sorted(set(quantiles)) != list(quantiles)
                          or not all(0 < q < 1 for q in quantiles)):
            raise ConfigError(f"model.objective.quantiles={list(quantiles)} must increase strictly within (0, 1) "
                              "and include 0.5")
        if self.huber_delta <= 0:
            raise ConfigError("model.objective.huber_delta must be > 0")
        return quantiles


MAX_SUPPORT = 100
"""The most target values a `distribution` or `ordinal` head learns probabilities for."""


@dataclass(frozen=True)
class TextObjective(Objective):
    """A text regressor's loss (`objective`): `Objective`'s, or one over the target values (for targets of few
    values, e.g. ratings; each target counts as the nearest value of `support`).

    Attributes:
        loss: as `Objective`'s, or `distribution`: a softmax over the values of `support`, trained with cross-entropy,
            its median the point prediction (the value that minimises the expected absolute error); or `ordinal`: one
            sigmoid per gap between neighbouring values, P(target > value), each trained with binary cross-entropy
            weighted by the gap's width (their sum bounds the absolute error), the point prediction the value above
            as many gaps as have P > 1/2 (the median).
        support: the values of `distribution` or `ordinal`, increasing; None: the distinct training targets (at most
            `MAX_SUPPORT`), which the bundle keeps.
    """

    loss: Literal["mse", "mae", "huber", "quantile", "distribution", "ordinal"] = "mse"
    support: list[float] | None = None

    def resolved(self) -> tuple[float, ...]:
        """The quantiles the head predicts (empty for a point loss, a distribution or ordinal), checked."""
        if self.support is not None and self.loss not in ("distribution", "ordinal"):
            raise ConfigError("model.objective.support needs objective.loss: distribution or ordinal")
        if self.support is not None:
            check_support(self.support)
        return super().resolved()


def check_support(values: list[float]) -> tuple[float, ...]:
    """The values of a `distribution` or `ordinal` head as a tuple, checked: 2 to `MAX_SUPPORT` finite values,
    increasing."""
    support = tuple(float(v) for v in values)
    if not 2 <= len(support) <= MAX_SUPPORT or list(support) != sorted(set(support)) or not all(
            math.isfinite(v) for v in support):
        shown = list(support) if len(support) <= 12 else f"{len(support)} values"
        raise ConfigError(f"objective.loss distribution or ordinal needs 2 to {MAX_SUPPORT} distinct finite values, "
                          f"increasing; got {shown}: targets of many values take mse, mae, huber or quantile")
    return support
