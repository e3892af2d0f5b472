"""Does a metric's curve over scale jump, rise smoothly, fall, or bend? Pure numpy, no plotting.

A *series* is one (task, metric) over models: `x` (non-embedding parameters, or training steps),
one value per model, and usually the per-example scores behind those values, shape
(n_points, n_examples), the same examples for every model, NaN for an unscorable example. A
point's value is the nan-mean over its examples. Everything here sorts by `x` first.

Orientation: B, Kendall tau, jumps, bends and verdicts are computed on *oriented* values, `y` for
a higher-is-better metric and `-y` for a lower-is-better one (`token_edit_distance`, Brier), so
"improvement" is always positive. Point values are stored in the metric's own units.

Intervals are 95% percentile bootstraps over examples, *paired*: one resample of example indices
is used for every model (and, with the same seed and examples, for every metric), as the models
answered the same examples.

One module per job:
  bootstrap      paired resamples of point values, `Estimate` and its interval
  statistics     B (BIG-bench's breakthroughness), linearity, Kendall tau, jump share J, and their
                 forms on many resamples at once
  shapes         slope per decade of x; U-shaped and inverted-U bends
  extrapolation  Wei et al. 2022's predictability: fit the smaller points, predict the largest
  mirage         Schaeffer et al. 2023: exact match against p_tok ** L, and how much of the rise
                 p_tok ** L explains
  seeds          seed bands (PolyPythias 2025): a jump must clear the spread across seeds
  series         `analyze_series`: every statistic of one series on the same resamples
  rules          `SHAPE_RULES`, the table the classifier applies and the report prints
  verdicts       `classify` (one metric) and `verdict` (one task, `CONCLUSION_RULES`)

With 5-10 points BIG-bench's B hinges on the median of a handful of squared steps, so the shape
rules rest on quantities with paired bootstrap CIs: the gain between the worst and the best point,
the jump share J = largest step / (max - min) (1/(n-1) for a straight line, 1 for a step), the
largest step's own gain, the slope, and the two sides of a bend. B is always reported beside them.
Without a CI (n_boot = 0, or point values only) the estimate stands in for both bounds, and the
sentence says "no CI".
"""

from harness.emergence.bootstrap import (
    ALPHA,
    Estimate,
    interval,
    resampled_point_means,
    resampled_points,
)
from harness.emergence.extrapolation import Extrapolation, extrapolate, fit_kind, predict_rows
from harness.emergence.mirage import (
    MirageCheck,
    MirageExplained,
    mirage_check,
    mirage_explained,
    mirage_prediction,
)
from harness.emergence.rules import (
    FLAT_TOL,
    JUMP_FACTOR,
    JUMP_SHARE,
    JUMP_TAU,
    MIRAGE_EXPLAINS,
    SHAPE_RULES,
    SMOOTH_TAU,
    Evidence,
    Shape,
    ShapeRule,
    Trend,
)
from harness.emergence.seeds import SeedBand, seed_band, split_seed
from harness.emergence.series import SeriesAnalysis, analyze_series, compare_series, with_seed_band
from harness.emergence.shapes import BEND_SHARE, Bend, find_bend, log_slope, slope_rows
from harness.emergence.statistics import (
    DEGENERATE_RTOL,
    ROW_FORMS,
    Breakthrough,
    RowStatistic,
    SeriesStatistic,
    b_rows,
    b_statistic,
    bootstrap_from_replicates,
    bootstrap_series,
    breakthroughness,
    jump_share,
    jump_share_statistic,
    linearity,
    linearity_rows,
    monotonicity,
    orient,
    share_rows,
    tau_rows,
    tau_statistic,
)
from harness.emergence.verdicts import (
    CONCLUSION_RULES,
    Conclusion,
    ConclusionRule,
    MetricVerdict,
    TaskVerdict,
    classify,
    verdict,
)

__all__ = [
    "ALPHA", "BEND_SHARE", "CONCLUSION_RULES", "DEGENERATE_RTOL", "FLAT_TOL", "JUMP_FACTOR", "JUMP_SHARE",
    "JUMP_TAU", "MIRAGE_EXPLAINS", "ROW_FORMS", "SHAPE_RULES", "SMOOTH_TAU", "Bend", "Breakthrough",
    "Conclusion", "ConclusionRule", "Estimate", "Evidence", "Extrapolation", "MetricVerdict", "MirageCheck",
    "MirageExplained", "RowStatistic", "SeedBand", "SeriesAnalysis", "SeriesStatistic", "Shape", "ShapeRule",
    "TaskVerdict", "Trend", "analyze_series", "b_rows", "b_statistic", "bootstrap_from_replicates",
    "bootstrap_series", "breakthroughness", "classify", "compare_series", "extrapolate", "find_bend",
    "fit_kind", "interval", "jump_share", "jump_share_statistic", "linearity", "linearity_rows", "log_slope",
    "mirage_check", "mirage_explained", "mirage_prediction", "monotonicity", "orient", "predict_rows",
    "resampled_point_means", "resampled_points", "seed_band", "share_rows", "slope_rows", "split_seed",
    "tau_rows", "tau_statistic", "verdict", "with_seed_band",
]
