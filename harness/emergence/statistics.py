"""Statistics of one series on its point values (B, linearity, Kendall tau, jump share), their
row forms on many resamples at once, and their bootstrap intervals."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from harness.emergence.bootstrap import (
    ALPHA,
    Estimate,
    as_scores,
    interval,
    nanmean_rows,
    resampled_point_means,
    sorted_series,
)
from harness.errors import HarnessError

DEGENERATE_RTOL = 1e-9  # sqrt(median squared step) <= this * (max - min): B is infinite

SeriesStatistic = Callable[[np.ndarray, np.ndarray], float]  # (sorted x, oriented y) -> value
RowStatistic = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (sorted x, oriented y (rows, n)) -> (rows,)


def orient(values: np.ndarray | Sequence[float], higher_is_better: bool) -> np.ndarray:
    """The values as float64, negated for a lower-is-better metric so improvement is positive."""
    y = np.asarray(values, dtype=np.float64)
    return y if higher_is_better else -y


@dataclass(frozen=True)
class Breakthrough:
    """Breakthroughness of one series, and where its largest step is.

    `value` is B; +-inf when `degenerate` (the median squared step is 0: mostly flat, then
    jumps), 0.0 for a flat series, NaN when a point is NaN. Never a huge finite stand-in for
    infinity. `jump` is the largest successive change (signed, oriented units) and
    `jump_between` the sorted indices (i, i + 1) it lies between.
    """

    value: float
    degenerate: bool
    jump: float
    jump_between: tuple[int, int]
    description: str


def _point_name(i: int, labels: Sequence[str] | None) -> str:
    return str(labels[i]) if labels is not None else str(i)


def breakthroughness(y: np.ndarray | Sequence[float], labels: Sequence[str] | None = None) -> Breakthrough:
    """B = sign(argmax y - argmin y) * (max y - min y) / sqrt(median_i (y[i+1] - y[i])**2).

    Srivastava et al. 2022 (BIG-bench), appendix "Definitions of linearity and
    breakthroughness". `y` is ordered by scale and oriented (see `orient`). A straight line over
    n points has B = n - 1; a curve that sits still and then jumps has a tiny median step and a
    large B. When at least half the steps are zero the median is 0 and B is infinite: reported
    as `degenerate`, value +-inf, and described as "flat, then a jump of X between a and b".
    `labels` name the points in the description (model names); default: their indices.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1 or y.size < 2:
        raise HarnessError(f"breakthroughness needs a 1-D series of at least 2 points, got shape {y.shape}")
    if np.isnan(y).any():
        missing = ", ".join(_point_name(int(i), labels) for i in np.flatnonzero(np.isnan(y)))
        return Breakthrough(math.nan, False, math.nan, (0, 1), f"undefined: no value at {missing}")
    steps = np.diff(y)
    i = int(np.argmax(np.abs(steps)))
    jump, between = float(steps[i]), (i, i + 1)
    where = f"between {_point_name(i, labels)} and {_point_name(i + 1, labels)}"
    where = where if labels is not None else f"between points {i} and {i + 1}"
    change = float(y.max() - y.min())
    if change == 0.0:
        return Breakthrough(0.0, False, 0.0, between, "flat: the same value at every point")
    sign = 1.0 if int(np.argmax(y)) > int(np.argmin(y)) else -1.0
    root_median = math.sqrt(float(np.median(steps**2)))
    kind = "jump" if jump > 0 else "drop"
    if root_median <= DEGENERATE_RTOL * change:
        still = np.abs(steps) <= DEGENERATE_RTOL * change
        first_move = int(np.argmin(still))
        if still.sum() == steps.size - 1:  # one step moves: say where the flat parts are
            text = f"a {kind} of {abs(jump):.3g} {where}"
            text = ("flat, then " if i > 0 else "") + text + (", then flat" if i < steps.size - 1 else "")
        elif first_move > 0 and not still[first_move:].any():  # flat, then moving at every step
            text = f"flat up to {_point_name(first_move, labels)}, then a {kind} of {abs(jump):.3g} {where}"
            text = text if labels is not None else text.replace("up to ", "up to point ", 1)
        else:
            text = f"flat in {int(still.sum())} of {steps.size} steps; largest {kind} {abs(jump):.3g} {where}"
        return Breakthrough(sign * math.inf, True, jump, between, text)
    value = sign * change / root_median
    text = f"B = {value:.3g}; largest {kind} {abs(jump):.3g} {where}"
    return Breakthrough(value, False, jump, between, text)


def linearity(x: np.ndarray | Sequence[float], y: np.ndarray | Sequence[float], log_x: bool = True) -> float:
    """R^2 of the least-squares line y = a + b log10(x): 1 for a straight line in log-scale.

    R^2 = corr(log10 x, y)^2 (simple regression with intercept). NaN when y is constant or a
    point is NaN. Sign-free: the direction is in B and tau.

    Why not BIG-bench's own linearity score L (same appendix as B)? As we read it, L divides
    the same overall improvement I(y) = sign(argmax - argmin)(max - min) by an aggregate of
    all successive changes (where B uses their median), so that steady improvement scores high
    and decline negative; its exact normaliser is not reproduced here. Like B it sees only the
    ordered values, not where the models sit on the scale axis, and real sweeps are unevenly
    spaced in log-parameters (Pythia: 70m, 160m, 410m, 1b, 1.4b, 2.8b...). R^2 on the actual
    log10(x) axis is the straight-line-on-a-scaling-plot reading of "improves predictably with
    scale". It is coarse with few points (the step 0,0,0,0,1,1 over six decades has R^2 = 0.69),
    so it is reported beside B and tau and the verdict rules do not use it. `log_x=False` fits
    against x itself (training steps that include step 0).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if log_x:
        if (x <= 0).any():
            raise HarnessError("linearity on log10(x) needs x > 0 (drop step 0, or pass log_x=False)")
        x = np.log10(x)
    if np.isnan(y).any():
        return math.nan
    dx, dy = x - x.mean(), y - y.mean()
    ss_y = float(dy @ dy)
    if ss_y == 0.0:
        return math.nan
    return float((dx @ dy) ** 2 / ((dx @ dx) * ss_y))


def monotonicity(y: np.ndarray | Sequence[float]) -> float:
    """Kendall's tau-b between point order (scale) and y: 1 strictly increasing, -1 decreasing.

    tau_b = (C - D) / sqrt((n0 - n1)(n0 - n2)) (Kendall 1945), n0 = n(n-1)/2 pairs, C / D the
    concordant / discordant pairs, n1 = 0 ties in the order, n2 = pairs with exactly equal y.
    NaN when every y is equal, or a point is NaN. O(n^2): series have tens of points.
    """
    y = np.asarray(y, dtype=np.float64)
    if np.isnan(y).any() or y.size < 2:
        return math.nan
    upper = np.triu_indices(y.size, k=1)
    signs = np.sign(y[None, :] - y[:, None])[upper]  # pair (i < j): sign(y[j] - y[i])
    n0 = signs.size
    n2 = int(np.sum(signs == 0))
    if n2 == n0:
        return math.nan
    return float(signs.sum() / math.sqrt(n0 * (n0 - n2)))



def jump_share(y: np.ndarray | Sequence[float]) -> float:
    """J = largest successive increase / (max - min): 1 for a step, 1/(n-1) for a line.

    On oriented values; 0 for a flat or a non-increasing series, NaN with a missing point.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.size < 2 or np.isnan(y).any():
        return math.nan
    span = float(np.max(y) - np.min(y))
    if span <= 0:
        return 0.0
    return max(0.0, float(np.max(np.diff(y)))) / span


def jump_share_statistic(x: np.ndarray, y: np.ndarray) -> float:
    return jump_share(y)


def b_statistic(x: np.ndarray, y: np.ndarray) -> float:
    """B of the oriented series (+-inf when degenerate), as a `SeriesStatistic`."""
    return breakthroughness(y).value


def tau_statistic(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall tau-b against scale order, as a `SeriesStatistic`."""
    return monotonicity(y)


# --------------------------------------------------------------------------------------
# The same statistics on many resamples at once: (sorted x, oriented y (rows, n)) -> (rows,).
# A Python loop over 1,000 resamples x 6 statistics x every series was most of a report's
# time; these give the same numbers (tested against the one-series functions).


def _nan_rows(y: np.ndarray) -> np.ndarray:
    return np.isnan(y).any(axis=1)


def b_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """`breakthroughness(row).value` for every row of `y`."""
    y = np.asarray(y, dtype=np.float64)
    steps = np.diff(y, axis=1)
    change = y.max(axis=1) - y.min(axis=1)
    sign = np.where(np.argmax(y, axis=1) > np.argmin(y, axis=1), 1.0, -1.0)
    root_median = np.sqrt(np.median(steps**2, axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        value = sign * change / root_median
    value = np.where(root_median <= DEGENERATE_RTOL * change, sign * np.inf, value)
    value = np.where(change == 0.0, 0.0, value)
    return np.where(_nan_rows(y), np.nan, value)


def tau_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """`monotonicity(row)` (Kendall tau-b against order) for every row of `y`."""
    y = np.asarray(y, dtype=np.float64)
    first, second = np.triu_indices(y.shape[1], k=1)
    signs = np.sign(y[:, second] - y[:, first])
    n0 = signs.shape[1]
    n2 = np.sum(signs == 0, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = signs.sum(axis=1) / np.sqrt(n0 * (n0 - n2))
    return np.where(_nan_rows(y) | (n2 == n0), np.nan, tau)


def linearity_rows(x: np.ndarray, y: np.ndarray, log_x: bool = True) -> np.ndarray:
    """`linearity(x, row, log_x)` (R^2) for every row of `y`."""
    x = np.asarray(x, dtype=np.float64)
    if log_x:
        if (x <= 0).any():
            raise HarnessError("linearity on log10(x) needs x > 0 (drop step 0, or pass log_x=False)")
        x = np.log10(x)
    y = np.asarray(y, dtype=np.float64)
    dx = x - x.mean()
    dy = y - y.mean(axis=1, keepdims=True)
    ss_y = np.einsum("ij,ij->i", dy, dy)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = (dy @ dx) ** 2 / ((dx @ dx) * ss_y)
    return np.where(_nan_rows(y) | (ss_y == 0.0), np.nan, r2)


def share_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """`jump_share(row)` (largest step / (max - min), oriented) for every row of `y`."""
    y = np.asarray(y, dtype=np.float64)
    span = y.max(axis=1) - y.min(axis=1)
    up = np.maximum(0.0, np.diff(y, axis=1).max(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        share = up / span
    share = np.where(span <= 0, 0.0, share)
    return np.where(_nan_rows(y), np.nan, share)


ROW_FORMS: dict[SeriesStatistic, RowStatistic] = {
    b_statistic: b_rows, tau_statistic: tau_rows,
    jump_share_statistic: share_rows,
}



def bootstrap_from_replicates(x: np.ndarray, point_values: np.ndarray, replicates: np.ndarray | None,
                              statistic: SeriesStatistic, higher_is_better: bool = True,
                              alpha: float = ALPHA, rows: RowStatistic | None = None) -> Estimate:
    """`statistic` of a series with its interval from given resampled point values.

    `x` and `point_values` (n_points,) and `replicates` (n_boot, n_points), columns in x's
    order (unsorted is fine: all are sorted by x here). `statistic(sorted x, oriented y)`.
    `rows(sorted x, oriented replicates)` is the same statistic on every resample at once (the
    module's statistics have one in `ROW_FORMS`); without one, `statistic` runs per resample.
    `replicates` None or empty: the estimate alone, NaN bounds.
    """
    x_sorted, order = sorted_series(x)
    y = orient(point_values, higher_is_better)[order]
    estimate = statistic(x_sorted, y)
    if replicates is None or np.size(replicates) == 0:
        return Estimate(estimate, math.nan, math.nan)
    if np.ndim(replicates) != 2 or np.shape(replicates)[1] != x_sorted.size:
        raise HarnessError(f"replicates must be (n_boot, {x_sorted.size}), got {np.shape(replicates)}")
    reps = orient(replicates, higher_is_better)[:, order]
    rows = rows or ROW_FORMS.get(statistic)
    if rows is None:
        return interval(estimate, np.array([statistic(x_sorted, row) for row in reps]), alpha)
    return interval(estimate, rows(x_sorted, reps), alpha)


def bootstrap_series(x: np.ndarray | Sequence[float], scores: np.ndarray, statistic: SeriesStatistic,
                     n_boot: int = 1000, seed: int = 0, higher_is_better: bool = True,
                     alpha: float = ALPHA) -> Estimate:
    """95% percentile CI of a series statistic, resampling examples (paired across models).

    Each resample draws n_examples example indices with replacement, recomputes every
    model's nan-mean on those same examples, orients, sorts by x and applies
    `statistic(sorted x, oriented y)`, e.g. `b_statistic` or `tau_statistic`.
    """
    x_sorted, _ = sorted_series(x)
    scores = as_scores(scores, x_sorted.size)
    return bootstrap_from_replicates(x, nanmean_rows(scores), resampled_point_means(scores, n_boot, seed),
                                     statistic, higher_is_better, alpha)
