"""Calibrated prediction intervals: split-conformal quantile regression (CQR, Romano, Patterson & Candès 2019).

A band [lower, upper] (two predicted quantiles, or the point forecast twice for a point model, which makes this the
plain split-conformal interval) is scored on held-out windows the model never trained on: each window's conformity
score is E = max(lower - y, y - upper), the distance by which y falls outside the band (negative inside it). The band
widened by the ⌈(n + 1)·level⌉-th smallest of n scores covers a new value with probability ≥ level (exchangeable
windows); the offset may be negative, narrowing a band that covered too much.

Errors grow with the horizon step, and a validation part holds few windows (20 for 30 yearly values and horizon 11),
so the scores are pooled over the steps after dividing each step's by its spread (the mean absolute error of the
point forecast at that step: normalised conformal prediction, Papadopoulos et al. 2002): one quantile q from n × H
scores, and step h's offset is q × spread_h. One offset per horizon step and variable, in the network's scaled units
(restored with the window's scale, as the forecast is).
"""

from __future__ import annotations

import math

import numpy as np

from seq2text.errors import DataError

__all__ = ["ADAPTED_LEVELS", "ADAPT_BY", "BAND", "adapted_level", "calibrated_band", "conformal_offsets",
           "conformal_scores", "decayed", "offsets_of", "summarised"]

BAND = (0.1, 0.9)  # the band a tuned forecaster calibrates: 10 % – 90 %, nominal coverage 80 %


def conformal_offsets(point: np.ndarray, lower: np.ndarray, upper: np.ndarray, actual: np.ndarray,
                      level: float) -> np.ndarray:
    """The offsets that make [lower - offset, upper + offset] cover `level` of held-out values.

    Args:
        point, lower, upper, actual: the point forecast, the band's edges and the true values of n held-out windows,
            (n, H, V) each.
        level: the nominal coverage, e.g. 0.8 for the 10 %–90 % band.
    Returns:
        offsets (H, V), float64.
    """
    return offsets_of(*conformal_scores(point, lower, upper, actual), level)


def conformal_scores(point: np.ndarray, lower: np.ndarray, upper: np.ndarray, actual: np.ndarray,
                     spread: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each held-out value's conformity score divided by its step's spread, and the spread.

    Args:
        point, lower, upper, actual: as `conformal_offsets`, (n, H, V) each.
        spread: each step's spread (H, V) to divide by; None: these windows' mean absolute error per step.
    Returns:
        scores (n × H, V) and spread (H, V), float64.
    """
    if spread is None:
        spread = np.abs(actual - point).astype(np.float64).mean(axis=0)  # (H, V)
        spread = np.where(spread > 0, spread, max(float(spread.max()), 1e-6))
    scores = np.maximum(lower - actual, actual - upper).astype(np.float64) / spread  # (n, H, V)
    return scores.reshape(-1, scores.shape[-1]), np.asarray(spread, dtype=np.float64)


def offsets_of(scores: np.ndarray, spread: np.ndarray, level: float, weights: np.ndarray | None = None
               ) -> np.ndarray:
    """The offsets (H, V) from pooled scores (m, V) (`conformal_scores`): the ⌈(m + 1)·level⌉-th smallest of each
    variable's scores times each step's spread; with `weights` (m,), each score counts as that many (a kept summary
    of many scores: `summarised`)."""
    if not 0 < level < 1:
        raise ValueError(f"level={level} lies in (0, 1)")
    weights = np.ones(len(scores)) if weights is None else np.asarray(weights, dtype=np.float64)
    count, horizon = float(weights.sum()), len(spread)
    if count < 2 * horizon or math.ceil((count + 1) * level) > count:
        raise DataError(f"{int(count) // max(horizon, 1)} held-out windows cannot calibrate a {level:.0%} band; raise "
                        "data.valid_size")
    return _quantile(scores, weights, level)[None, :] * spread


def _quantile(scores: np.ndarray, weights: np.ndarray, level: float | np.ndarray) -> np.ndarray:
    """Each variable's ⌈(m + 1)·level⌉-th smallest of the weighted scores (m, V) (the largest where the rank passes
    their count): (V,) for one level, (L, V) for levels (L,)."""
    levels = np.atleast_1d(np.asarray(level, dtype=np.float64))  # (L,)
    total = float(weights.sum())
    ranks = np.minimum(np.ceil((total + 1) * levels), total)  # (L,)
    q = np.empty((len(levels), scores.shape[1]))
    for v in range(scores.shape[1]):  # the smallest score whose cumulative weight reaches the rank
        order = np.argsort(scores[:, v], kind="stable")
        reached = np.searchsorted(np.cumsum(weights[order]), ranks - 1e-9)
        q[:, v] = scores[order, v][np.minimum(reached, len(order) - 1)]
    return q if np.ndim(level) else q[0]


ADAPTED_LEVELS = (0.5, 0.99)  # where an adapted level is held


ADAPT_BY = ("window", "origin", "series")  # what one move of an adapted level stands for (`adapted_level`)


def adapted_level(level: float, rate: float, kept: np.ndarray, weights: np.ndarray, new: np.ndarray,
                  starts: np.ndarray, ends: np.ndarray, by: str = "window", groups: np.ndarray | None = None
                  ) -> np.ndarray:
    """Adaptive conformal inference (Gibbs & Candès 2021) replayed over the windows after the fit, in time order: the
    level moves by `rate` × (the window's share of values outside its band − (1 − level)) once the window's last true
    value is known, so a band that has lately missed more than it should widens, and one that covered too much
    narrows. Each window's band is the one its origin had: the quantile, at the level then, of the kept scores and
    of the windows known before that origin.

    Args:
        level: the nominal coverage (0.8 for the 10 %–90 % band).
        rate: γ, how far one window moves the level (0: the nominal level).
        kept, weights: the stored scores (k, V) and the weight of each (k,).
        new: the scores of the windows after the fit (m, H, V), normalised as `conformal_scores` does.
        starts, ends: each new window's origin and the time of its last true value (m,) each, comparable values.
        by: `window`: one level, each window moving it; `origin`: one level moved once per origin time by the share
            of the values outside the bands of all its windows (a panel's series together), so a panel of N series
            moves it as fast as one series does, not N times as fast; `series`: a level per group of `groups`
            (a panel's series), each moved by its own windows only, so one series' misses do not widen another's
            band. Every band's quantile pools the same scores.
        groups: each new window's group (m,), with `by="series"`.
    Returns:
        the adapted levels (G,), one per group in sorted order (one level unless `by="series"`), held within
        ADAPTED_LEVELS.
    """
    if by not in ADAPT_BY or (by == "series") != (groups is not None):
        raise ValueError(f"by={by!r}: give one of {', '.join(ADAPT_BY)}, and groups with series only")
    low, high = ADAPTED_LEVELS
    misses = np.zeros(len(new))
    _, inverse, counts = np.unique(starts, return_inverse=True, return_counts=True)
    steps = 1 / counts[inverse] if by == "origin" else np.ones(len(new))  # each window's share of its move
    labels, group = np.unique(np.zeros(len(new)) if groups is None else groups, return_inverse=True)

    def levels(known: np.ndarray) -> np.ndarray:  # each group's level once the `known` windows are (G,)
        moves = [(steps[mask] * (misses[mask] - (1 - level))).sum()  # np.sum's order: the levels of one group
                 for mask in (known & (group == g) for g in range(len(labels)))]  # are the same to the last bit
        return np.clip(level + rate * np.array(moves), low, high)

    for start in np.unique(starts):
        known = ends < start
        pooled = np.concatenate([kept, new[known].reshape(-1, new.shape[-1])])
        pooled_weights = np.concatenate([weights, np.ones(int(known.sum()) * new.shape[1])])
        here = starts == start
        q = _quantile(pooled, pooled_weights, levels(known)[group[here]])  # (windows here, V)
        misses[here] = (new[here] > q[:, None, :]).mean(axis=(1, 2))
    return levels(np.ones(len(new), dtype=bool))


def decayed(weights: np.ndarray, ages: np.ndarray, half_life: float) -> np.ndarray:
    """`weights` halved every `half_life` steps of each score's age (steps before the newest) and scaled back to
    their sum (a weighted quantile counts as many scores as before): non-exchangeable conformal prediction (Barber,
    Candès, Ramdas & Tibshirani 2023), where the recent past counts more when the errors drift.

    Args:
        weights, ages: each score's weight and its age in steps (m,) each, ages ≥ 0.
        half_life: steps, > 0.
    Returns:
        weights (m,), float64.
    """
    if half_life <= 0:
        raise ValueError(f"half_life={half_life} must be positive")
    weights = np.asarray(weights, dtype=np.float64)
    moved = weights * 0.5 ** (np.asarray(ages, dtype=np.float64) / half_life)
    return moved * weights.sum() / moved.sum()


def summarised(scores: np.ndarray, most: int) -> tuple[np.ndarray, np.ndarray]:
    """At most `most` of the sorted scores (m, V), evenly spaced order statistics, and the weight (m / kept) each
    stands for: a bundle's summary of many windows' scores."""
    ordered = np.sort(scores, axis=0)
    if len(ordered) <= most:
        return ordered, np.ones(len(ordered))
    kept = ordered[np.linspace(0, len(ordered) - 1, most).round().astype(int)]
    return kept, np.full(most, len(ordered) / most)


def calibrated_band(point: np.ndarray, lower: np.ndarray, upper: np.ndarray, offsets: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The band widened by `offsets` (H, V), never crossing the point forecast; arrays (..., H, V)."""
    return np.minimum(lower - offsets, point), np.maximum(upper + offsets, point)
