"""Predictability, as Wei et al. 2022 define emergence: "not predictable by extrapolating the
performance of smaller models".

Fit the series on all but its last point (the largest size, or the last checkpoint), extrapolate to
that point, and report observed - predicted (oriented: positive means better than the smaller
models predict) with a paired bootstrap CI: every resample refits on its own resampled points.

Fits, two parameters each so that 3 to 6 fitted points stay robust (no optimiser, closed-form least
squares):
  linear in log10 x      log-likelihoods and other unbounded metrics (a power law in the loss is
                         a straight line in log-log; log-probabilities are already logs)
  logistic in log10 x    metrics in [0, 1]: logit(y) linear in log10 x, y clipped to
                         [LOGIT_EPS, 1 - LOGIT_EPS] (a sigmoid from 0 to 1; exact match stuck at 0
                         predicts ~0, so a jump at the largest size is an error, as it should be)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from harness.emergence.bootstrap import Estimate, fmt, interval

LOGIT_EPS = 1e-3
MIN_FIT_POINTS = 3  # two parameters and one degree of freedom
PREDICT_SHARE = 0.25  # an error below this share of max - min counts as predicted

FitKind = Literal["linear in log10 x", "logistic in log10 x"]
LINEAR_FIT: FitKind = "linear in log10 x"
LOGISTIC_FIT: FitKind = "logistic in log10 x"


def fit_kind(family: str, values: Sequence[float]) -> FitKind:
    """Linear for log-likelihoods and unbounded metrics, logistic for values in [0, 1]."""
    bounded = all(0.0 <= v <= 1.0 for v in values)
    return LINEAR_FIT if family == "log-likelihood" or not bounded else LOGISTIC_FIT


def _logit(y: np.ndarray) -> np.ndarray:
    clipped = np.clip(y, LOGIT_EPS, 1.0 - LOGIT_EPS)
    return np.log(clipped / (1.0 - clipped))


def predict_rows(x_fit: np.ndarray, y_fit: np.ndarray, x_new: np.ndarray, kind: FitKind) -> np.ndarray:
    """Least-squares fit of every row of `y_fit` (rows, n_fit) against log10 x, evaluated at
    `x_new`: (rows, n_new), in the metric's own units. NaN for a row with a NaN."""
    design = np.column_stack([np.ones(len(x_fit)), np.log10(x_fit)])
    target = _logit(y_fit) if kind == LOGISTIC_FIT else y_fit
    coef = np.linalg.pinv(design) @ target.T  # (2, rows)
    fitted = (np.column_stack([np.ones(len(x_new)), np.log10(x_new)]) @ coef).T
    if kind == LOGISTIC_FIT:
        fitted = 1.0 / (1.0 + np.exp(-fitted))
    return np.where(np.isnan(y_fit).any(axis=1, keepdims=True), np.nan, fitted)


@dataclass(frozen=True)
class Extrapolation:
    """The fit on the first `n_fit` points and what it says at the last one.

    `observed` and `predicted` in the metric's own units; `error` oriented (observed - predicted,
    negated for a lower-is-better metric): positive means better than the smaller models predict.
    """

    fit: FitKind
    n_fit: int
    x_held: float
    observed: float
    predicted: float
    error: Estimate
    change: float  # max - min of the series, the scale of "large"

    @property
    def predicted_well(self) -> bool:
        """The error's CI reaches 0, or the error is below PREDICT_SHARE of the range."""
        low, high = (self.error.ci_low, self.error.ci_high) if self.error.has_ci else (
            self.error.estimate, self.error.estimate)
        small = abs(self.error.estimate) < PREDICT_SHARE * self.change if self.change > 0 else True
        return (low <= 0 <= high) or small

    def describe(self, where: str) -> str:
        """'fit logistic in log10 x on 4 points predicts 0.01 at 942k, observed 0.47: error +0.46 [...]'."""
        verb = "predicted" if self.predicted_well else "not predicted"
        return (f"{verb} from the smaller points ({self.fit}, {self.n_fit} points: {fmt(self.predicted)} "
                f"at {where}, observed {fmt(self.observed)}, error {self.error.format()})")


def extrapolate(x: np.ndarray, points: np.ndarray, replicates: np.ndarray | None, higher_is_better: bool,
                kind: FitKind) -> Extrapolation | None:
    """Hold out the last point of a sorted series, fit the rest, compare. None with < 4 points.

    `points` (n,) and `replicates` (rows, n) in the metric's units, sorted by x.
    """
    x = np.asarray(x, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    n_fit = x.size - 1
    if n_fit < MIN_FIT_POINTS or np.isnan(points).any():
        return None
    sign = 1.0 if higher_is_better else -1.0
    predicted = float(predict_rows(x[:n_fit], points[None, :n_fit], x[n_fit:], kind)[0, 0])
    error = sign * (float(points[-1]) - predicted)
    if replicates is None or np.size(replicates) == 0:
        estimate = Estimate(error, math.nan, math.nan)
    else:
        reps = np.asarray(replicates, dtype=np.float64)
        predicted_rows = predict_rows(x[:n_fit], reps[:, :n_fit], x[n_fit:], kind)[:, 0]
        estimate = interval(error, sign * (reps[:, -1] - predicted_rows))
    return Extrapolation(kind, n_fit, float(x[-1]), float(points[-1]), predicted, estimate,
                         float(points.max() - points.min()))
