"""Paired percentile bootstrap over examples: resampled point values and intervals.

Resamples are drawn like `harness.stats`: `numpy.random.default_rng(seed).integers(0, n, size=(rows, n))`,
chunk after chunk; one resample of example indices serves every model (paired).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from harness.errors import HarnessError
from harness.stats import resample_counts, resample_indices

ALPHA = 0.05  # 95% intervals


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
            return f"{fmt(self.estimate, decimals)} [no CI]"
        low, high = fmt(self.ci_low, decimals), fmt(self.ci_high, decimals)
        return f"{fmt(self.estimate, decimals)} [{low}, {high}]"


def fmt(value: float, decimals: int | None = None) -> str:
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


def as_scores(scores: np.ndarray | Sequence[Sequence[float]], n_points: int) -> np.ndarray:
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


def sorted_series(x: np.ndarray | Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size < 2:
        raise HarnessError(f"a series needs at least 2 points on a 1-D x, got shape {x.shape}")
    order = np.argsort(x, kind="stable")
    if np.any(np.diff(x[order]) <= 0) or np.isnan(x).any():
        raise HarnessError(f"x must be distinct numbers (one model per scale), got {x.tolist()}")
    return x[order], order


def nanmean_rows(scores: np.ndarray) -> np.ndarray:
    scorable = ~np.isnan(scores)
    counts = scorable.sum(axis=1)
    sums = np.where(scorable, scores, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts  # NaN for a model with no scorable example, without a warning

