"""Percentile bootstrap confidence intervals over examples.

Every function draws its resamples the same way (`resample_indices`, also behind
harness.emergence's paired resamples): `numpy.random.default_rng(seed)`
and `integers(0, n, size=(rows, n))`, chunk after chunk, so for one (n, n_boot, seed) the three
functions below see the same resamples, and a metric's interval is reproducible from its seed.
Resamples are drawn in chunks of at most ~4M indices, so 1,000 resamples of 15,000 examples
never hold more than a few tens of MB.

The interval is the percentile bootstrap (Efron & Tibshirani, "An Introduction to the Bootstrap",
1993, ch. 13): the alpha/2 and 1 - alpha/2 quantiles (NumPy's default linear interpolation) of
the statistic over `n_boot` resamples of the examples with replacement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

_MAX_CELLS = 1 << 22  # indices per chunk of resamples


def resample_indices(n: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Resample indices, shape (rows, n), `n_boot` rows in all."""
    rng = np.random.default_rng(seed)
    rows_per_chunk = max(1, min(n_boot, _MAX_CELLS // max(n, 1)))
    done = 0
    while done < n_boot:
        rows = min(rows_per_chunk, n_boot - done)
        yield rng.integers(0, n, size=(rows, n))
        done += rows


def resample_counts(indices: np.ndarray, n: int) -> np.ndarray:
    """How often each of `n` examples occurs in each resample: (rows, n) indices -> (rows, n) counts."""
    rows = indices.shape[0]
    flat = (indices + (np.arange(rows) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=rows * n).reshape(rows, n)


def _interval(stats: np.ndarray, alpha: float) -> tuple[float, float]:
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def bootstrap_mean_ci(values: Sequence[float] | np.ndarray, n_boot: int = 1000, seed: int = 0,
                      alpha: float = 0.05) -> tuple[float, float, float]:
    """(mean, ci_low, ci_high) of the non-NaN `values`, percentile bootstrap, vectorised.

    NaNs (unscorable examples) are dropped first; the caller counts them. No values: all NaN.
    One value: every resample is that value, so (v, v, v). `n_boot` 0: (mean, nan, nan).
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[~np.isnan(x)]
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if n_boot <= 0:
        return mean, float("nan"), float("nan")
    means = np.concatenate([x[idx].mean(axis=1) for idx in resample_indices(x.size, n_boot, seed)])
    return (mean, *_interval(means, alpha))


def bootstrap_ci(n: int, statistic: Callable[[np.ndarray], float], n_boot: int = 1000, seed: int = 0,
                 alpha: float = 0.05) -> tuple[float, float, float]:
    """(statistic(all), ci_low, ci_high) for any statistic of example indices.

    `statistic(indices)` gets an int array of length `n` (a resample, with repeats) and
    returns a float. Calls it once per resample: the general but slow path; metrics that
    can be written on resampling counts use `bootstrap_weighted_ci`.
    """
    if n <= 0:
        return float("nan"), float("nan"), float("nan")
    estimate = float(statistic(np.arange(n)))
    if n_boot <= 0:
        return estimate, float("nan"), float("nan")
    stats = np.array([statistic(row) for idx in resample_indices(n, n_boot, seed) for row in idx],
                     dtype=np.float64)
    return (estimate, *_interval(stats, alpha))


def bootstrap_weighted_ci(n: int, statistic: Callable[[np.ndarray], np.ndarray], n_boot: int = 1000,
                          seed: int = 0, alpha: float = 0.05) -> tuple[float, float, float]:
    """(statistic(all), ci_low, ci_high) for a statistic of resampling counts, vectorised.

    `statistic(counts)` gets a (rows, n) array, row r holding how often each example occurs
    in resample r (all ones is the original sample), and returns one value per row. A mean
    is `counts @ x / counts.sum(1)`; ratios and binned sums are as easy, so aggregate
    metrics (Brier score, ECE) bootstrap without a Python loop per resample. Same resamples
    as `bootstrap_ci` for the same (n, n_boot, seed).
    """
    if n <= 0:
        return float("nan"), float("nan"), float("nan")
    estimate = float(statistic(np.ones((1, n)))[0])
    if n_boot <= 0:
        return estimate, float("nan"), float("nan")
    stats = np.concatenate([np.asarray(statistic(resample_counts(idx, n)), dtype=np.float64)
                            for idx in resample_indices(n, n_boot, seed)])
    return (estimate, *_interval(stats, alpha))
