"""The rule tables: `SHAPE_RULES` (one metric's curve) and `CONCLUSION_RULES` (one task's metrics
together). The classifier applies them and the report's method section prints their `text`, so the
page describes the rules that were applied (one fact, one place).

Every test reads an `Evidence`: CI bounds of the series' statistics (the estimate twice where there
is no CI), taken from one `SeriesAnalysis`. Oriented units throughout (improvement positive).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from harness.emergence.bootstrap import Estimate
from harness.emergence.series import SeriesAnalysis
from harness.emergence.shapes import BEND_SHARE

JUMP_FACTOR = 3.0  # B* = JUMP_FACTOR * (n_points - 1): three times the B of a straight line
SMOOTH_TAU = 0.7  # Kendall tau bound for "monotone" (6 points: at most 2 of 15 pairs out of order)
FLAT_TOL = 0.01  # without a CI (point values only): max - min below this is "flat"
JUMP_SHARE = 0.6  # a jump: at least this share of the whole change happens in one step
JUMP_TAU = 0.5  # ... and the curve stays up after it (tau >= this): not a zigzag
MIRAGE_EXPLAINS = 0.5  # p_tok^L accounts for at least this share of exact match's rise (lower CI bound)

Shape = Literal["flat", "jump", "drop", "U-shaped", "inverted-U", "smooth", "smooth decline", "steady",
                "rising", "declining", "unclear"]
Trend = Literal["rising", "declining", "flat", "U-shaped", "inverted-U", "unclear"]


def bounds(estimate: Estimate) -> tuple[float, float]:
    """The CI, or the estimate twice when there is none."""
    if estimate.has_ci:
        return estimate.ci_low, estimate.ci_high
    return estimate.estimate, estimate.estimate


@dataclass(frozen=True)
class Evidence:
    """The numbers a shape rule reads (lower / upper CI bounds; oriented units)."""

    threshold: float  # B* = JUMP_FACTOR * (n_points - 1)
    b_low: float
    b_high: float
    tau: float
    tau_low: float
    tau_high: float
    share: float
    share_low: float
    gain_low: float
    step_low: float  # the largest rise
    fall_low: float  # the largest fall (positive for a fall)
    slope_low: float
    slope_high: float
    change: float
    seed_spread: float  # 0 without seeds
    valley: bool  # a U-shape holds (shapes.Bend.holds)
    peak: bool  # an inverted U holds
    no_ci: bool


def evidence(analysis: SeriesAnalysis) -> Evidence:
    """The `Evidence` of one analysed series."""
    b_low, b_high = bounds(analysis.b)
    tau_low, tau_high = bounds(analysis.tau)
    slope_low, slope_high = analysis.slope.ci_low, analysis.slope.ci_high  # NaN without a CI: no call
    return Evidence(
        threshold=JUMP_FACTOR * (len(analysis.x) - 1), b_low=b_low, b_high=b_high, tau=analysis.tau.estimate,
        tau_low=tau_low, tau_high=tau_high, share=analysis.share.estimate,
        share_low=bounds(analysis.share)[0],
        gain_low=bounds(analysis.gain)[0], step_low=bounds(analysis.step_gain)[0],
        fall_low=bounds(analysis.fall_gain)[0], slope_low=slope_low, slope_high=slope_high,
        change=analysis.change, seed_spread=analysis.seed_spread,
        valley=analysis.valley is not None and analysis.valley.holds,
        peak=analysis.peak is not None and analysis.peak.holds, no_ci=not analysis.gain.has_ci)


@dataclass(frozen=True)
class ShapeRule:
    """One row of the shape table: `classify` takes the first rule whose test holds."""

    shape: Shape
    trend: Trend
    test: Callable[[Evidence], bool]
    text: str


def _is_flat(v: Evidence) -> bool:
    return v.change == 0 or (v.no_ci and v.change < FLAT_TOL) or (not v.no_ci and not v.gain_low > 0)


def _is_jump(v: Evidence) -> bool:
    one_step = v.share_low >= JUMP_SHARE or v.b_low > v.threshold
    return one_step and v.step_low > v.seed_spread and v.tau >= JUMP_TAU


def _is_drop(v: Evidence) -> bool:
    one_step = v.fall_low >= JUMP_SHARE * v.change or v.b_high < -v.threshold
    return one_step and v.fall_low > v.seed_spread and v.tau <= -JUMP_TAU


SHAPE_RULES: tuple[ShapeRule, ...] = (
    ShapeRule("unclear", "unclear", lambda v: math.isnan(v.change), "a point is missing (never called flat)"),
    ShapeRule("flat", "flat", _is_flat,
              f"the CI of the gain from the worst to the best point reaches 0 (without a CI: best − worst "
              f"< {FLAT_TOL:g})"),
    ShapeRule("jump", "rising", _is_jump,
              f"one step holds most of the change: the jump share J (largest step / (max − min)) has its "
              f"lower CI bound ≥ {JUMP_SHARE:g}, or B's lower CI bound exceeds {JUMP_FACTOR:g}·(n − 1); "
              "the lower CI bound of that step exceeds the seed spread around it (the largest max − min "
              f"across seeds at its two points; 0 without seeds); and Kendall τ ≥ {JUMP_TAU:g}"),
    ShapeRule("drop", "declining", _is_drop,
              f"the same for a worsening: the largest fall's lower CI bound ≥ {JUMP_SHARE:g}·(max − min) or "
              f"B's upper bound below −{JUMP_FACTOR:g}·(n − 1), beyond the seed spread, with "
              f"τ ≤ −{JUMP_TAU:g}"),
    ShapeRule("U-shaped", "U-shaped", lambda v: v.valley,
              "the worst point is interior, and the fall to it (from the best point before) and the rise "
              f"after it (to the best point after) both have a lower CI bound above 0 and are each ≥ "
              f"{BEND_SHARE:g} of best − worst (needs a CI): performance worsens, then recovers"),
    ShapeRule("inverted-U", "inverted-U", lambda v: v.peak,
              "the same with the best point interior: performance improves, then worsens"),
    ShapeRule("smooth", "rising", lambda v: v.tau_low >= SMOOTH_TAU and v.share < JUMP_SHARE,
              f"τ's lower CI bound ≥ {SMOOTH_TAU:g} and J < {JUMP_SHARE:g}"),
    ShapeRule("smooth decline", "declining", lambda v: v.tau_high <= -SMOOTH_TAU,
              f"τ's upper CI bound ≤ −{SMOOTH_TAU:g}: worsens with scale (inverse scaling)"),
    ShapeRule("steady", "rising", lambda v: v.tau_low >= SMOOTH_TAU,
              f"τ's lower CI bound ≥ {SMOOTH_TAU:g} but J's CI straddles {JUMP_SHARE:g}: monotone, jump or "
              "smooth unresolved"),
    ShapeRule("rising", "rising", lambda v: v.slope_low > 0,
              "not monotone, but the least-squares slope against log10 x has its lower CI bound above 0 "
              "(needs a CI)"),
    ShapeRule("declining", "declining", lambda v: v.slope_high < 0,
              "not monotone, but the slope's upper CI bound is below 0 (inverse scaling)"),
    ShapeRule("unclear", "unclear", lambda v: True, "anything else"),
)
