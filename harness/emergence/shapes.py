"""Shapes beyond "rises": the trend in log-scale, and interior bends (U-shaped, inverted-U).

Wei et al. 2022 ("Inverse scaling can become U-shaped") and the Inverse Scaling Prize (McKenzie
et al. 2023) show performance that falls with scale, and falls then recovers. Everything here is on
*oriented* values (performance: improvement positive), sorted by x, so a *valley* (U-shaped) is
performance that worsens and then recovers, and a *peak* (inverted-U) one that improves and then
worsens, whatever the metric's own direction.

A bend is tested on the paired bootstrap: the extreme point is chosen on the point values (an
interior minimum for a valley), then the change from the best point before it down to it and from
it up to the best point after it are resampled at those fixed points. Both must be above 0 beyond
noise, and each at least BEND_SHARE of the whole range, so a wiggle at one end of a monotone curve
is no bend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from harness.emergence.bootstrap import Estimate, interval

BEND_SHARE = 0.25  # each side of a bend moves at least this share of max - min

BendKind = Literal["U-shaped", "inverted-U"]


def log_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y against log10(x): the change per decade of scale (x > 0)."""
    return float(slope_rows(x, np.asarray(y, dtype=np.float64)[None, :])[0])


def slope_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """`log_slope` of every row of y (rows, n_points); NaN for a row with a NaN."""
    log_x = np.log10(np.asarray(x, dtype=np.float64))
    dx = log_x - log_x.mean()
    y = np.asarray(y, dtype=np.float64)
    slope = (y - y.mean(axis=1, keepdims=True)) @ dx / float(dx @ dx)
    return np.where(np.isnan(y).any(axis=1), np.nan, slope)


@dataclass(frozen=True)
class Bend:
    """An interior extreme of an oriented series and the two changes around it (oriented units,
    both positive for a bend): `before` from the best (valley) or worst (peak) point before the
    extreme, `after` to the best (valley) or worst (peak) point after it. `share` is the smaller
    of the two estimates over max - min."""

    kind: BendKind
    at: int
    before: Estimate
    after: Estimate
    share: float

    @property
    def holds(self) -> bool:
        """Both sides above 0 beyond noise and each >= BEND_SHARE; never without a CI (point values
        alone cannot tell a bend from a zigzag)."""
        sides = (self.before, self.after)
        return all(e.has_ci for e in sides) and min(e.ci_low for e in sides) > 0 and self.share >= BEND_SHARE


def find_bend(y: np.ndarray, replicates: np.ndarray | None, kind: BendKind) -> Bend | None:
    """The valley (kind "U-shaped") or peak ("inverted-U") of oriented `y`, sorted by x, with CIs
    from oriented, sorted `replicates` (rows, n_points); None when the extreme is an end point."""
    y = np.asarray(y, dtype=np.float64)
    if y.size < 3 or np.isnan(y).any():
        return None
    sign = 1.0 if kind == "U-shaped" else -1.0  # a peak is a valley of -y
    flipped = sign * y
    at = int(np.argmin(flipped))
    if at in (0, y.size - 1):
        return None
    first = int(np.argmax(flipped[:at]))
    last = at + 1 + int(np.argmax(flipped[at + 1:]))
    span = float(y.max() - y.min())

    def change(i: int, j: int) -> Estimate:
        estimate = float(flipped[i] - flipped[j])
        if replicates is None or np.size(replicates) == 0:
            return Estimate(estimate, math.nan, math.nan)
        return interval(estimate, sign * (replicates[:, i] - replicates[:, j]))

    before, after = change(first, at), change(last, at)
    share = min(before.estimate, after.estimate) / span if span > 0 else 0.0
    return Bend(kind, at, before, after, share)
