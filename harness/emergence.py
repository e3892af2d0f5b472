"""Does a metric's curve over scale jump, or improve smoothly? Pure numpy, no plotting.

A *series* is one (task, metric) over models: `x` (non-embedding parameters, or training steps),
one value per model, and usually the per-example scores behind those values, shape
(n_points, n_examples), the same examples for every model, NaN for an unscorable example. A
point's value is the nan-mean over its examples. Everything here sorts by `x` first.

Orientation: B, Kendall tau, jumps and verdicts are computed on *oriented* values, `y` for a
higher-is-better metric and `-y` for a lower-is-better one (`token_edit_distance`, Brier), so
"improvement" is always positive. Point values are stored in the metric's own units.

Intervals are 95% percentile bootstraps over examples, *paired*: one resample of example indices
is used for every model (and, with the same seed and examples, for every metric), as the models
answered the same examples. Resamples are drawn like `harness.stats`:
`numpy.random.default_rng(seed).integers(0, n, size=(rows, n))`, chunk after chunk.

Verdict rules (module constants, see `classify`), checked in this order. With 5-10 points
BIG-bench's B hinges on the median of a handful of squared steps (two of four when one
step of five points is flat), so the call rests on two sturdier quantities, both with paired
bootstrap CIs: the *gain* between the worst and the best point (fixed points, resampled
examples), and the *jump share* J = largest step / (max - min), 1/(n-1) for a straight line
and 1 for a step. B is always reported beside them.
  flat            the gain's CI reaches 0: no change beyond noise (without CIs: max - min
                  < FLAT_TOL, in the metric's own units)
  jump            J's lower CI bound >= JUMP_SHARE and that step's own gain is > 0 beyond
                  noise; or B's lower CI bound > B* = JUMP_FACTOR * (n - 1) (three times a
                  straight line's B); either way with tau >= JUMP_TAU (the curve stays up,
                  not a zigzag); a drop is the same for a worsening
  smooth          Kendall tau's lower CI bound >= SMOOTH_TAU and J < JUMP_SHARE
  steady          tau confidently monotone, but J's CI straddles JUMP_SHARE: shape unresolved
  unclear         anything else
Without a CI (n_boot = 0, or point values only) the estimate stands in for both bounds, and the
sentence says "no CI".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from harness.errors import HarnessError
from harness.stats import resample_counts, resample_indices

JUMP_FACTOR = 3.0  # B* = JUMP_FACTOR * (n_points - 1): three times the B of a straight line
SMOOTH_TAU = 0.7  # Kendall tau bound for "monotone" (6 points: at most 2 of 15 pairs out of order)
FLAT_TOL = 0.01  # without a CI (point values only): max - min below this is "flat"
JUMP_SHARE = 0.6  # a jump: at least this share of the whole change happens in one step
JUMP_TAU = 0.5  # ... and the curve stays up after it (tau >= this): not a zigzag
DEGENERATE_RTOL = 1e-9  # sqrt(median squared step) <= this * (max - min): B is infinite
ALPHA = 0.05  # 95% intervals

SeriesStatistic = Callable[[np.ndarray, np.ndarray], float]  # (sorted x, oriented y) -> value
RowStatistic = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (sorted x, oriented y (rows, n)) -> (rows,)
Shape = Literal["flat", "jump", "drop", "smooth", "smooth decline", "steady", "unclear"]
Conclusion = Literal["metric artefact", "jump under every metric", "jump unexplained", "smooth",
                     "flat", "unclear"]


# --------------------------------------------------------------------------------------
# Series statistics on point values


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


# --------------------------------------------------------------------------------------
# Paired bootstrap over examples


@dataclass(frozen=True)
class Estimate:
    """A statistic of the series and its percentile bootstrap interval.

    `degenerate_fraction`: share of resamples where the statistic was +-inf (for B: flat, then
    a jump). `undefined_fraction`: share that were NaN (a point with no scorable example, a
    constant series for tau); they are left out of the quantiles. No resamples: NaN bounds.
    """

    estimate: float
    ci_low: float
    ci_high: float
    degenerate_fraction: float = 0.0
    undefined_fraction: float = 0.0

    @property
    def has_ci(self) -> bool:
        return not (math.isnan(self.ci_low) or math.isnan(self.ci_high))

    def format(self, decimals: int | None = None) -> str:
        """'12.3 [8.1, 30.2]' (3 significant digits, or fixed `decimals`), inf spelled out; '[no CI]'."""
        if not self.has_ci:
            return f"{_fmt(self.estimate, decimals)} [no CI]"
        low, high = _fmt(self.ci_low, decimals), _fmt(self.ci_high, decimals)
        return f"{_fmt(self.estimate, decimals)} [{low}, {high}]"


def _fmt(value: float, decimals: int | None = None) -> str:
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if decimals is not None:
        return f"{value:.{decimals}f}"
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _quantile(sorted_values: np.ndarray, q: float) -> float:
    """NumPy's default (linear) quantile, extended to +-inf.

    np.quantile([1, inf, inf, inf], 0.975) is NaN (its interpolation computes inf - inf), and
    a B bootstrap is full of infinities. Between a finite and an infinite neighbour the
    interpolated value is that infinity, as long as the infinite one has any weight.
    """
    if np.isfinite(sorted_values).all():
        return float(np.quantile(sorted_values, q))
    position = q * (sorted_values.size - 1)
    lo = int(math.floor(position))
    hi = min(lo + 1, sorted_values.size - 1)
    frac = position - lo
    a, b = float(sorted_values[lo]), float(sorted_values[hi])
    if frac == 0.0 or a == b:
        return a
    if math.isinf(a) and math.isinf(b):
        return a if frac < 0.5 else b
    if math.isinf(a) or math.isinf(b):
        return a if math.isinf(a) else b
    return a + (b - a) * frac


def interval(estimate: float, replicate_values: np.ndarray, alpha: float = ALPHA) -> Estimate:
    """`Estimate` from a statistic's value on every resample (NaNs dropped and counted)."""
    values = np.asarray(replicate_values, dtype=np.float64).ravel()
    if values.size == 0:
        return Estimate(float(estimate), math.nan, math.nan)
    nan = np.isnan(values)
    kept = np.sort(values[~nan])
    degenerate = float(np.mean(np.isinf(values)))
    if kept.size == 0:
        return Estimate(float(estimate), math.nan, math.nan, degenerate, 1.0)
    return Estimate(float(estimate), _quantile(kept, alpha / 2), _quantile(kept, 1 - alpha / 2), degenerate,
                    float(np.mean(nan)))


def _count_chunks(n_examples: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Resampling counts (rows, n_examples), n_boot rows in all; the resamples of harness.stats."""
    for indices in resample_indices(n_examples, n_boot, seed):
        yield resample_counts(indices, n_examples)


def resampled_points(n_examples: int, points: Callable[[np.ndarray], np.ndarray], n_boot: int = 1000,
                     seed: int = 0) -> np.ndarray:
    """(n_boot, n_points) point values on paired resamples of the examples.

    `points(counts)` gets (rows, n_examples) counts, row r saying how often each example occurs
    in resample r (the same row for every model: paired), and returns (rows, n_points). An
    aggregate metric (Brier, ECE) supplies its own `points` through
    `harness.metrics.Metric.weighted`, one column per model.
    """
    if n_examples <= 0 or n_boot <= 0:
        return np.empty((0, 0))
    return np.concatenate([np.asarray(points(counts), dtype=np.float64)
                           for counts in _count_chunks(n_examples, n_boot, seed)])


def _as_scores(scores: np.ndarray | Sequence[Sequence[float]], n_points: int) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] != n_points:
        raise HarnessError(f"scores must be (n_points, n_examples) = ({n_points}, ...), got {scores.shape}")
    return scores


def resampled_point_means(scores: np.ndarray, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """(n_boot, n_points) nan-means of per-example `scores` (n_points, n_examples), paired resamples.

    A resample that holds no scorable example for a model gives that model NaN.
    """
    scores = np.asarray(scores, dtype=np.float64)
    scorable = ~np.isnan(scores)
    filled = np.where(scorable, scores, 0.0).T  # (n_examples, n_points)
    weights = scorable.T.astype(np.float64)

    def means(counts: np.ndarray) -> np.ndarray:
        counts = counts.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (counts @ filled) / (counts @ weights)

    return resampled_points(scores.shape[1], means, n_boot, seed)


def _sorted_series(x: np.ndarray | Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size < 2:
        raise HarnessError(f"a series needs at least 2 points on a 1-D x, got shape {x.shape}")
    order = np.argsort(x, kind="stable")
    if np.any(np.diff(x[order]) <= 0) or np.isnan(x).any():
        raise HarnessError(f"x must be distinct numbers (one model per scale), got {x.tolist()}")
    return x[order], order


def _nanmean_rows(scores: np.ndarray) -> np.ndarray:
    scorable = ~np.isnan(scores)
    counts = scorable.sum(axis=1)
    sums = np.where(scorable, scores, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts  # NaN for a model with no scorable example, without a warning


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
    x_sorted, order = _sorted_series(x)
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
    x_sorted, _ = _sorted_series(x)
    scores = _as_scores(scores, x_sorted.size)
    return bootstrap_from_replicates(x, _nanmean_rows(scores), resampled_point_means(scores, n_boot, seed),
                                     statistic, higher_is_better, alpha)


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


# --------------------------------------------------------------------------------------
# One series, everything


@dataclass(frozen=True)
class SeriesAnalysis:
    """One (task, metric) series over scale, sorted by x, with every emergence statistic.

    `point_values` are in the metric's own units; `breakthrough`, `b`, `tau` on oriented
    values (improvement positive). `b` and `linearity` / `tau` CIs come from the same paired
    resamples. `change` = max - min of the point values.
    """

    metric: str
    family: str
    higher_is_better: bool
    x: tuple[float, ...]
    labels: tuple[str, ...] | None
    point_values: tuple[float, ...]
    n_examples: int
    n_boot: int
    breakthrough: Breakthrough
    b: Estimate
    linearity: Estimate
    tau: Estimate
    # J = largest step / (max - min), oriented; the gain from the worst to the best point and
    # across the largest step (oriented units, fixed points, resampled examples)
    share: Estimate = Estimate(math.nan, math.nan, math.nan)
    gain: Estimate = Estimate(math.nan, math.nan, math.nan)
    step_gain: Estimate = Estimate(math.nan, math.nan, math.nan)

    @property
    def change(self) -> float:
        """max - min of the point values (NaN if any point is NaN)."""
        return float(np.max(self.point_values) - np.min(self.point_values))

    def summary(self) -> str:
        """'B = 5 [4.8, 5.3], tau = 1.00 [1.00, 1.00], R^2 = 0.99 [0.98, 1.00]'."""
        return (f"B = {self.b.format()}, J = {self.share.format(2)}, tau = {self.tau.format(2)}, "
                f"R^2 = {self.linearity.format(2)}")


def analyze_series(x: np.ndarray | Sequence[float], scores: np.ndarray, higher_is_better: bool = True,
                   n_boot: int = 1000, seed: int = 0, *, metric: str = "", family: str = "",
                   labels: Sequence[str] | None = None, replicates: np.ndarray | None = None,
                   log_x: bool = True) -> SeriesAnalysis:
    """Point values, B, linearity and tau, each with a paired bootstrap CI, for one series.

    `scores` is per-example (n_points, n_examples), or point values (n_points,) for an
    aggregate metric; then `replicates` (n_boot, n_points), e.g. from `resampled_points`, give
    the CIs, and without them the CIs are NaN. `labels` name the points (model names) in the
    order of `x`. `log_x`: linearity on log10(x) (default) or on x (training steps from 0).
    """
    x_sorted, order = _sorted_series(x)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        if scores.shape != (x_sorted.size,):
            raise HarnessError(f"point values must be ({x_sorted.size},), got {scores.shape}")
        points, n_examples = scores, 0
    else:
        if replicates is not None:
            raise HarnessError("replicates go with point values; per-example scores are resampled here")
        scores = _as_scores(scores, x_sorted.size)
        points, n_examples = _nanmean_rows(scores), scores.shape[1]
        replicates = resampled_point_means(scores, n_boot, seed)
    if labels is not None and len(labels) != x_sorted.size:
        raise HarnessError(f"{len(labels)} labels for {x_sorted.size} points")
    sorted_labels = tuple(str(labels[i]) for i in order) if labels is not None else None

    def linear_fit(xs: np.ndarray, ys: np.ndarray) -> float:
        return linearity(xs, ys, log_x)

    def linear_fit_rows(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        return linearity_rows(xs, ys, log_x)

    def estimate(statistic: SeriesStatistic, rows: RowStatistic | None = None) -> Estimate:
        return bootstrap_from_replicates(x, points, replicates, statistic, higher_is_better, rows=rows)

    oriented = orient(points, higher_is_better)[order]
    if np.isnan(oriented).any() or oriented.size < 2:
        worst = best = step_from = 0
    else:
        worst, best = int(np.argmin(oriented)), int(np.argmax(oriented))
        step_from = int(np.argmax(np.diff(oriented)))

    def between(i: int, j: int) -> Estimate:
        return estimate(lambda xs, ys: float(ys[j] - ys[i]), lambda xs, ys: ys[:, j] - ys[:, i])

    return SeriesAnalysis(
        metric=metric, family=family, higher_is_better=higher_is_better,
        x=tuple(float(v) for v in x_sorted), labels=sorted_labels,
        point_values=tuple(float(v) for v in points[order]), n_examples=n_examples,
        n_boot=0 if replicates is None else int(np.shape(replicates)[0]),
        breakthrough=breakthroughness(orient(points, higher_is_better)[order], sorted_labels),
        b=estimate(b_statistic), linearity=estimate(linear_fit, linear_fit_rows), tau=estimate(tau_statistic),
        share=estimate(jump_share_statistic), gain=between(worst, best),
        step_gain=between(step_from, step_from + 1))


def compare_series(x: np.ndarray | Sequence[float], series: Mapping[str, tuple[np.ndarray, bool]],
                   n_boot: int = 1000, seed: int = 0, labels: Sequence[str] | None = None,
                   families: Mapping[str, str] | None = None) -> dict[str, SeriesAnalysis]:
    """Several metrics of one task side by side: name -> (scores, higher_is_better) -> analyses.

    With the same seed and the same examples, every metric sees the same resamples, so the
    metrics' CIs are paired with each other too. E.g. Schaeffer et al. 2023's contrast:
    `{"exact_str_match": (em, True), "token_edit_distance": (ted, False)}`: B and tau side by
    side, edit distance oriented so that fewer edits is improvement.
    """
    families = families or {}
    return {name: analyze_series(x, scores, higher, n_boot, seed, metric=name,
                                 family=families.get(name, ""), labels=labels)
            for name, (scores, higher) in series.items()}


# --------------------------------------------------------------------------------------
# The mirage check (Schaeffer et al. 2023)


def mirage_prediction(p_tok_means: np.ndarray | Sequence[float],
                      target_lengths: np.ndarray | Sequence[float]) -> np.ndarray:
    """Predicted exact match = p_tok ** L, per model.

    Schaeffer, Miranda & Koyejo 2023, "Are Emergent Abilities of Large Language Models a
    Mirage?": if each of L target tokens is right with probability p_tok independently, the
    whole answer is right with p_tok ** L, so a smooth rise of p_tok looks like a jump. `p_tok`
    is the mean per-token probability of the target (exp of the per-token log-prob), `L` the
    mean number of target tokens. Model-level approximation: mean(p ** L) over examples is not
    mean(p) ** mean(L) (Jensen); the per-example version is `metrics.predicted_exact_match`.
    """
    p = np.asarray(p_tok_means, dtype=np.float64)
    length = np.asarray(target_lengths, dtype=np.float64)
    if ((p < 0) | (p > 1)).any() or (length < 0).any():
        raise HarnessError(f"p_tok must be in [0, 1] and L >= 0, got p_tok={p.tolist()}, L={length.tolist()}")
    return p**length


@dataclass(frozen=True)
class MirageCheck:
    """Observed exact match against p_tok ** L, per model, sorted by x.

    `gap` = observed - predicted; `correlation` is Pearson's r over models (NaN with a
    constant series); `observed_b` / `predicted_b` show whether the prediction jumps where
    the observation does.
    """

    x: tuple[float, ...]
    observed: tuple[float, ...]
    predicted: tuple[float, ...]
    gap: tuple[float, ...]
    correlation: float
    mean_abs_gap: float
    observed_b: Breakthrough
    predicted_b: Breakthrough

    @property
    def description(self) -> str:
        return (f"observed exact match vs p_tok^L: r = {_fmt(self.correlation, 2)}, mean |gap| = "
                f"{self.mean_abs_gap:.3g}; observed {self.observed_b.description}; predicted "
                f"{self.predicted_b.description}")


def mirage_check(x: np.ndarray | Sequence[float], observed_exact_match: np.ndarray | Sequence[float],
                 p_tok: np.ndarray | Sequence[float], target_length: np.ndarray | Sequence[float],
                 labels: Sequence[str] | None = None) -> MirageCheck:
    """Does exact match follow p_tok ** L across models? Arrays (n_points,), in x's order."""
    x_sorted, order = _sorted_series(x)
    observed = np.asarray(observed_exact_match, dtype=np.float64)[order]
    lengths = np.broadcast_to(np.asarray(target_length, dtype=np.float64), x_sorted.shape)
    predicted = mirage_prediction(np.asarray(p_tok, dtype=np.float64)[order], lengths[order])
    sorted_labels = [str(labels[i]) for i in order] if labels is not None else None
    gap = observed - predicted
    ok = ~np.isnan(gap)
    correlation = math.nan
    if ok.sum() >= 2 and np.std(observed[ok]) > 0 and np.std(predicted[ok]) > 0:
        correlation = float(np.corrcoef(observed[ok], predicted[ok])[0, 1])
    return MirageCheck(
        x=tuple(float(v) for v in x_sorted), observed=tuple(float(v) for v in observed),
        predicted=tuple(float(v) for v in predicted), gap=tuple(float(v) for v in gap),
        correlation=correlation, mean_abs_gap=float(np.mean(np.abs(gap[ok]))) if ok.any() else math.nan,
        observed_b=breakthroughness(observed, sorted_labels),
        predicted_b=breakthroughness(predicted, sorted_labels))


# --------------------------------------------------------------------------------------
# Verdicts


_PHRASES: dict[str, str] = {
    "flat": "is flat", "jump": "jumps", "drop": "drops abruptly", "smooth": "improves smoothly",
    "smooth decline": "worsens smoothly", "unclear": "shows no clear trend",
}


@dataclass(frozen=True)
class MetricVerdict:
    """How one metric's curve behaves, with the numbers the rule used (see module docstring)."""

    metric: str
    family: str
    shape: Shape
    b: Estimate
    tau: Estimate
    change: float
    jump_threshold: float
    breakthrough: Breakthrough
    share: Estimate = Estimate(math.nan, math.nan, math.nan)
    gain: Estimate = Estimate(math.nan, math.nan, math.nan)

    @property
    def phrase(self) -> str:
        """'exact_str_match jumps (largest step between 224k and 595k: J = 0.89 [0.8, 0.97], ...)'."""
        if self.shape == "steady":
            direction = "improves" if self.tau.estimate > 0 else "worsens"
            words = f"{direction} steadily, jump or smooth unresolved"
        else:
            words = _PHRASES[self.shape]
        if self.shape == "flat":
            return f"{self.metric} {words} (best - worst = {self.gain.format(3)})"
        numbers = f"J = {self.share.format(2)}, B = {self.b.format()}, tau = {self.tau.format(2)}"
        if self.shape in ("jump", "drop"):
            description = self.breakthrough.description
            where = description if self.breakthrough.degenerate else description.split("; ", 1)[-1]
            numbers = f"{where}; {numbers}"
        return f"{self.metric} {words} ({numbers})"


def _bounds(estimate: Estimate) -> tuple[float, float]:
    """The CI, or the estimate twice when there is none."""
    if estimate.has_ci:
        return estimate.ci_low, estimate.ci_high
    return estimate.estimate, estimate.estimate


@dataclass(frozen=True)
class _Bounds:
    """The numbers a shape rule reads: CI bounds (the estimate twice without a CI) and the change."""

    threshold: float  # B* = JUMP_FACTOR * (n_points - 1)
    b_low: float
    b_high: float
    tau: float
    tau_low: float
    tau_high: float
    share: float
    share_low: float
    gain_low: float
    step_low: float
    change: float
    no_ci: bool


@dataclass(frozen=True)
class ShapeRule:
    """One row of the rule table: `classify` takes the first rule whose test holds, and the
    report's method section prints `text` (so the page describes the rule that was applied)."""

    shape: Shape
    test: Callable[[_Bounds], bool]
    text: str


SHAPE_RULES: tuple[ShapeRule, ...] = (
    ShapeRule("unclear", lambda v: math.isnan(v.change), "a point is missing (never called flat)"),
    ShapeRule("flat", lambda v: v.change == 0 or (v.no_ci and v.change < FLAT_TOL)
              or (not v.no_ci and not v.gain_low > 0),
              f"the CI of the gain from the worst to the best point reaches 0 (without a CI: best − worst "
              f"< {FLAT_TOL:g})"),
    ShapeRule("jump", lambda v: (v.share_low >= JUMP_SHARE and v.step_low > 0 and v.tau >= JUMP_TAU)
              or (v.b_low > v.threshold and v.tau >= JUMP_TAU),
              f"the jump share J (largest step / (max − min)) has its lower CI bound ≥ {JUMP_SHARE:g} and "
              f"that step's gain is above 0 beyond noise, or B's lower CI bound exceeds "
              f"{JUMP_FACTOR:g}·(n − 1); either way with Kendall τ ≥ {JUMP_TAU:g}"),
    ShapeRule("drop", lambda v: v.b_high < -v.threshold
              or (v.tau_high <= -SMOOTH_TAU and v.share_low >= JUMP_SHARE),
              f"the same for a worsening: B's upper bound below −{JUMP_FACTOR:g}·(n − 1), or τ's upper "
              f"bound ≤ −{SMOOTH_TAU:g} with J's lower bound ≥ {JUMP_SHARE:g}"),
    ShapeRule("smooth", lambda v: v.tau_low >= SMOOTH_TAU and v.share < JUMP_SHARE,
              f"τ's lower CI bound ≥ {SMOOTH_TAU:g} and J < {JUMP_SHARE:g}"),
    ShapeRule("smooth decline", lambda v: v.tau_high <= -SMOOTH_TAU, f"τ's upper CI bound ≤ −{SMOOTH_TAU:g}"),
    ShapeRule("steady", lambda v: v.tau_low >= SMOOTH_TAU,
              f"τ's lower CI bound ≥ {SMOOTH_TAU:g} but J's CI straddles {JUMP_SHARE:g}: monotone, jump or "
              "smooth unresolved"),
    ShapeRule("unclear", lambda v: True, "anything else"),
)


def classify(analysis: SeriesAnalysis) -> MetricVerdict:
    """The first rule of `SHAPE_RULES` that holds: flat, jump, drop, smooth, smooth decline, steady,
    unclear."""
    threshold = JUMP_FACTOR * (len(analysis.x) - 1)
    b_low, b_high = _bounds(analysis.b)
    tau_low, tau_high = _bounds(analysis.tau)
    share_low, _ = _bounds(analysis.share)
    gain_low, _ = _bounds(analysis.gain)
    step_low, _ = _bounds(analysis.step_gain)
    numbers = _Bounds(threshold, b_low, b_high, analysis.tau.estimate, tau_low, tau_high,
                      analysis.share.estimate, share_low, gain_low, step_low, analysis.change,
                      not analysis.gain.has_ci)
    shape = next(rule.shape for rule in SHAPE_RULES if rule.test(numbers))
    return MetricVerdict(analysis.metric, analysis.family, shape, analysis.b, analysis.tau, analysis.change,
                         threshold, analysis.breakthrough, analysis.share, analysis.gain)


@dataclass(frozen=True)
class TaskVerdict:
    """One task's verdict: each metric's shape, the conclusion, and the sentence saying both."""

    task: str
    metrics: tuple[MetricVerdict, ...]
    conclusion: Conclusion
    sentence: str


def _families(verdicts: Sequence[MetricVerdict]) -> str:
    names = [v.family or v.metric for v in verdicts]
    return ", ".join(dict.fromkeys(names))


def verdict(task: str, analyses: Mapping[str, SeriesAnalysis]) -> TaskVerdict:
    """'task: m1 jumps (B = ...), m2 improves smoothly (B = ..., tau = ...): the jump comes from the metric.'

    Conclusions: a jump under some metric and smooth improvement under another is a
    "metric artefact" (Schaeffer et al. 2023); jumps under every non-flat metric (two or more)
    is "jump under every metric"; a jump with nothing smooth beside it is "jump unexplained";
    no jump and something smooth is "smooth"; everything flat is "flat"; else "unclear".
    """
    if not analyses:
        raise HarnessError(f"{task}: no metrics to give a verdict on")
    verdicts = tuple(classify(a if a.metric == name else replace(a, metric=name))
                     for name, a in analyses.items())
    jumps = [v for v in verdicts if v.shape == "jump"]
    smooth = [v for v in verdicts if v.shape == "smooth"]
    moving = [v for v in verdicts if v.shape != "flat"]
    conclusion: Conclusion
    if jumps and smooth:
        conclusion = "metric artefact"
        text = (f"the jump comes from the metric (emergent under {_families(jumps)}, smooth under "
                f"{_families(smooth)})")
    elif jumps and len(jumps) == len(moving) and len(jumps) >= 2:
        conclusion = "jump under every metric"
        text = "every metric that moves jumps: no smooth metric explains the jump"
    elif jumps:
        conclusion = "jump unexplained"
        text = "no metric improves smoothly beside the jump"
    elif smooth:
        conclusion = "smooth"
        text = "no metric jumps: improvement is smooth"
    elif not moving:
        conclusion = "flat"
        text = "flat under every metric at these scales"
    else:
        conclusion = "unclear"
        text = "no clear pattern"
    sentence = f"{task}: {', '.join(v.phrase for v in verdicts)}: {text}."
    return TaskVerdict(task, verdicts, conclusion, sentence)

