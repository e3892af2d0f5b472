"""One series over scale: every statistic with its paired bootstrap interval, in one record.

`analyze_series` is the one place that resamples a series; B, tau, J and the gains come from
`statistics`, the trend and bends from `shapes`, the hold-out fit from `extrapolation`, all on the
same paired resamples. A seed band (`seeds`) is attached afterwards with `with_seed_band`, since
the other seeds are other runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from harness.emergence.bootstrap import (
    Estimate,
    as_scores,
    nanmean_rows,
    resampled_point_means,
    sorted_series,
)
from harness.emergence.extrapolation import Extrapolation, extrapolate, fit_kind
from harness.emergence.seeds import SeedBand, seed_band
from harness.emergence.shapes import Bend, find_bend, log_slope, slope_rows
from harness.emergence.statistics import (
    Breakthrough,
    RowStatistic,
    SeriesStatistic,
    b_statistic,
    bootstrap_from_replicates,
    breakthroughness,
    jump_share_statistic,
    linearity,
    linearity_rows,
    orient,
    tau_statistic,
)
from harness.errors import HarnessError

NO_ESTIMATE = Estimate(math.nan, math.nan, math.nan)

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
    # the largest successive fall (oriented, positive for a fall), the least-squares slope per
    # decade of x (oriented), interior bends, the hold-out fit, and the band across seeds
    fall_gain: Estimate = Estimate(math.nan, math.nan, math.nan)
    slope: Estimate = Estimate(math.nan, math.nan, math.nan)
    valley: Bend | None = None
    peak: Bend | None = None
    extrapolation: Extrapolation | None = None
    seed_band: SeedBand | None = None

    @property
    def seed_spread(self) -> float:
        """The seed band's largest width at the two points of the largest step (0 without seeds)."""
        if self.seed_band is None:
            return 0.0
        i, j = self.breakthrough.jump_between
        return self.seed_band.spread_around(i, j)

    @property
    def change(self) -> float:
        """max - min of the point values (NaN if any point is NaN)."""
        return float(np.max(self.point_values) - np.min(self.point_values))

    def summary(self) -> str:
        """'B = 5 [4.8, 5.3], tau = 1.00 [1.00, 1.00], R^2 = 0.99 [0.98, 1.00]'."""
        return (f"B = {self.b.format()}, J = {self.share.format(2)}, tau = {self.tau.format(2)}, "
                f"R^2 = {self.linearity.format(2)}")


def _points_and_replicates(x_sorted: np.ndarray, scores: np.ndarray, replicates: np.ndarray | None,
                           n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Point values (in x's given order), their resamples and the number of examples."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        if scores.shape != (x_sorted.size,):
            raise HarnessError(f"point values must be ({x_sorted.size},), got {scores.shape}")
        return scores, replicates, 0
    if replicates is not None:
        raise HarnessError("replicates go with point values; per-example scores are resampled here")
    scores = as_scores(scores, x_sorted.size)
    return nanmean_rows(scores), resampled_point_means(scores, n_boot, seed), scores.shape[1]


@dataclass(frozen=True)
class _Resampled:
    """A series sorted by x: point values and resamples (metric units), and both oriented."""

    x: np.ndarray
    points: np.ndarray
    replicates: np.ndarray | None
    oriented: np.ndarray
    oriented_replicates: np.ndarray | None

    def estimate(self, statistic: SeriesStatistic, rows: RowStatistic | None = None) -> Estimate:
        # the sorted, oriented series is passed as is: orientation +1, identity order
        return bootstrap_from_replicates(self.x, self.oriented, self.oriented_replicates, statistic, True,
                                         rows=rows)

    def between(self, i: int, j: int) -> Estimate:
        """y[j] - y[i] (oriented) at fixed points, resampled."""
        return self.estimate(lambda xs, ys: float(ys[j] - ys[i]), lambda xs, ys: ys[:, j] - ys[:, i])


def _steps(oriented: np.ndarray) -> tuple[int, int, int, int]:
    """Indices of the worst and best point and of the largest rise's and fall's first point."""
    if np.isnan(oriented).any() or oriented.size < 2:
        return 0, 0, 0, 0
    steps = np.diff(oriented)
    return (int(np.argmin(oriented)), int(np.argmax(oriented)), int(np.argmax(steps)),
            int(np.argmin(steps)))


def _shape_statistics(series: _Resampled, higher_is_better: bool, family: str) -> dict[str, object]:
    """Slope per decade, bends and the hold-out fit (all need x > 0: a log10 axis)."""
    if (series.x <= 0).any():
        return {}
    slope = series.estimate(lambda xs, ys: log_slope(xs, ys), slope_rows)
    kind = fit_kind(family, [float(v) for v in series.points])
    return {"slope": slope,
            "valley": find_bend(series.oriented, series.oriented_replicates, "U-shaped"),
            "peak": find_bend(series.oriented, series.oriented_replicates, "inverted-U"),
            "extrapolation": extrapolate(series.x, series.points, series.replicates, higher_is_better, kind)}


def analyze_series(x: np.ndarray | Sequence[float], scores: np.ndarray, higher_is_better: bool = True,
                   n_boot: int = 1000, seed: int = 0, *, metric: str = "", family: str = "",
                   labels: Sequence[str] | None = None, replicates: np.ndarray | None = None,
                   log_x: bool = True) -> SeriesAnalysis:
    """Every statistic of one series, each with a paired bootstrap CI.

    `scores` is per-example (n_points, n_examples), or point values (n_points,) for an
    aggregate metric; then `replicates` (n_boot, n_points), e.g. from `resampled_points`, give
    the CIs, and without them the CIs are NaN. `labels` name the points (model names) in the
    order of `x`. `log_x`: linearity on log10(x) (default) or on x (training steps from 0);
    the slope, bends' axis and the hold-out fit use log10(x) and are left out when an x is 0.
    """
    x_sorted, order = sorted_series(x)
    points, replicates, n_examples = _points_and_replicates(x_sorted, scores, replicates, n_boot, seed)
    if labels is not None and len(labels) != x_sorted.size:
        raise HarnessError(f"{len(labels)} labels for {x_sorted.size} points")
    sorted_labels = tuple(str(labels[i]) for i in order) if labels is not None else None
    if replicates is not None and np.size(replicates) and np.shape(replicates)[1:] != (x_sorted.size,):
        raise HarnessError(f"replicates must be (n_boot, {x_sorted.size}), got {np.shape(replicates)}")
    reps = None if replicates is None or np.size(replicates) == 0 else np.asarray(replicates)[:, order]
    series = _Resampled(x_sorted, points[order], reps, orient(points[order], higher_is_better),
                        None if reps is None else orient(reps, higher_is_better))
    worst, best, rise_from, fall_from = _steps(series.oriented)
    return SeriesAnalysis(
        metric=metric, family=family, higher_is_better=higher_is_better,
        x=tuple(float(v) for v in x_sorted), labels=sorted_labels,
        point_values=tuple(float(v) for v in series.points), n_examples=n_examples,
        n_boot=0 if reps is None else int(reps.shape[0]),
        breakthrough=breakthroughness(series.oriented, sorted_labels), b=series.estimate(b_statistic),
        linearity=series.estimate(lambda xs, ys: linearity(xs, ys, log_x),
                                  lambda xs, ys: linearity_rows(xs, ys, log_x)),
        tau=series.estimate(tau_statistic), share=series.estimate(jump_share_statistic),
        gain=series.between(worst, best), step_gain=series.between(rise_from, rise_from + 1),
        fall_gain=series.between(fall_from + 1, fall_from),
        **_shape_statistics(series, higher_is_better, family))


def with_seed_band(analysis: SeriesAnalysis, seed_values: np.ndarray) -> SeriesAnalysis:
    """The analysis with the band of (n_seeds, n_points) point values, columns in `analysis.x` order."""
    values = np.asarray(seed_values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(analysis.x):
        raise HarnessError(f"seed values must be (n_seeds, {len(analysis.x)}), got {values.shape}")
    return replace(analysis, seed_band=seed_band(values))

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

