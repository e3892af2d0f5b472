"""The equal-loss test (Du et al. 2024): at equal held-out loss, or equal training compute, does
a larger model score higher than a smaller one? Pure numpy over stored per-example scores.

A *checkpoint* is one (model size, training step) with its value on the matched scale
(held-out bits per byte, or training compute 6·N·D). Matching: every checkpoint of a smaller
size is paired, for each larger size, with that size's checkpoint nearest on the scale, and the
pair is kept only when the two are within the rule's tolerance (`MatchRule`). A large model
reaches a small one's final loss early in training, so a loss match is typically an
early-stopped large checkpoint against a late small one.

For each pair and metric, the difference larger minus smaller of the mean over the examples
both scored, with a paired percentile bootstrap CI (one resample of the examples for both
checkpoints: `harness.emergence.bootstrap`). A pair *differs* when its CI excludes 0; `tally`
counts, per metric, in how many pairs the larger model scores higher, lower, or neither.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.emergence.bootstrap import Estimate, interval, resampled_point_means
from harness.errors import HarnessError

_SLACK = 1e-12  # a gap exactly at the tolerance counts as within it, whatever the rounding


@dataclass(frozen=True)
class MatchRule:
    """How near two checkpoints must be on one scale to count as matched.

    `by_factor` False: relative gap |b - a| / a within `tolerance` (0.02: 2%); True: ratio
    max(a, b) / min(a, b) within `tolerance` (1.5: a factor of 1.5), for a scale spread over
    decades such as compute.
    """

    axis: str  # "held-out loss"
    column: str  # the index column it reads: "heldout_bpb"
    unit: str  # "bits per byte"
    tolerance: float
    by_factor: bool = False

    def __post_init__(self) -> None:
        if not (self.tolerance > 1 if self.by_factor else self.tolerance >= 0):
            wanted = "a factor > 1" if self.by_factor else ">= 0"
            raise HarnessError(f"{self.axis}: tolerance must be {wanted}, got {self.tolerance}")

    def usable(self, value: float | None) -> bool:
        return value is not None and not math.isnan(value) and (not self.by_factor or value > 0)

    def distance(self, a: float, b: float) -> float:
        """How far b is from a: |log(b / a)| by factor, else |b - a| / |a|."""
        if self.by_factor:
            return abs(math.log(b / a))
        return abs(b - a) / abs(a)

    def within(self, a: float, b: float) -> bool:
        limit = math.log(self.tolerance) if self.by_factor else self.tolerance
        return self.distance(a, b) <= limit + _SLACK

    def gap(self, a: float, b: float) -> float:
        """The reported gap of b against a: the ratio b / a by factor, else (b - a) / a."""
        return b / a if self.by_factor else (b - a) / a

    @property
    def text(self) -> str:
        if self.by_factor:
            return f"{self.axis} within a factor of {self.tolerance:g}"
        return f"{self.axis} within {self.tolerance:.0%} (relative)"


LOSS_RULE = MatchRule("held-out loss", "heldout_bpb", "bits per byte", 0.02)
COMPUTE_RULE = MatchRule("training compute", "training_compute", "FLOPs", 1.5, by_factor=True)


@dataclass(frozen=True)
class Checkpoint:
    """One model at one training step, with its value on the matched scale."""

    label: str  # "pico-232k@step4000"
    params: float  # non-embedding parameters: what makes one checkpoint the larger
    step: int
    value: float  # held-out bits per byte, or training compute


@dataclass(frozen=True)
class Match:
    smaller: Checkpoint
    larger: Checkpoint
    gap: float  # `MatchRule.gap(smaller.value, larger.value)`


def match_checkpoints(checkpoints: Sequence[Checkpoint], rule: MatchRule) -> list[Match]:
    """Each checkpoint of a smaller size with the nearest checkpoint (by `rule.distance`) of each
    larger size, kept when within the tolerance; a tie goes to the earlier step. Checkpoints
    without a usable value (NaN, or not positive by factor) take no part."""
    usable = [c for c in checkpoints if rule.usable(c.value)]
    sizes = sorted({c.params for c in usable})
    matches = []
    for small in sorted(usable, key=lambda c: (c.params, c.step)):
        for size in sizes:
            if size <= small.params:
                continue
            candidates = [c for c in usable if c.params == size]
            near = min(candidates, key=lambda c: (rule.distance(small.value, c.value), c.step))
            if rule.within(small.value, near.value):
                matches.append(Match(small, near, rule.gap(small.value, near.value)))
    return matches


@dataclass(frozen=True)
class Comparison:
    """One metric on one matched pair: larger minus smaller, over the examples both scored."""

    match: Match
    metric: str
    difference: Estimate
    n_examples: int

    @property
    def direction(self) -> str:
        """'larger' (CI above 0), 'smaller' (CI below 0), or 'neither' (CI reaches 0, or no CI)."""
        if not self.difference.has_ci:
            return "neither"
        if self.difference.ci_low > 0:
            return "larger"
        if self.difference.ci_high < 0:
            return "smaller"
        return "neither"


def paired_difference(smaller: np.ndarray, larger: np.ndarray, n_boot: int = 1000, seed: int = 0
                      ) -> tuple[Estimate, int]:
    """(mean of larger - smaller, its percentile bootstrap CI) and the number of examples, over
    the examples scored by both (aligned arrays; NaN = unscored). No common example: NaN."""
    smaller, larger = np.asarray(smaller, dtype=np.float64), np.asarray(larger, dtype=np.float64)
    if smaller.shape != larger.shape or smaller.ndim != 1:
        raise HarnessError(f"paired scores must be two aligned 1-D arrays, got {smaller.shape} and "
                           f"{larger.shape}")
    both = ~(np.isnan(smaller) | np.isnan(larger))
    differences = (larger - smaller)[both]
    if differences.size == 0:
        return Estimate(math.nan, math.nan, math.nan), 0
    replicates = resampled_point_means(differences[None, :], n_boot, seed).ravel()  # (n_boot,)
    return interval(float(differences.mean()), replicates), int(differences.size)


@dataclass(frozen=True)
class Tally:
    """Of `n` matched pairs with a difference on `metric`: how many the larger model wins beyond
    the CI, how many the smaller one does."""

    metric: str
    n: int
    larger: int
    smaller: int

    @property
    def neither(self) -> int:
        return self.n - self.larger - self.smaller

    @property
    def sentence(self) -> str:
        return (f"{self.metric}: the larger model scores higher in {self.larger} of {self.n} "
                f"pairs, lower in {self.smaller}, and neither beyond the 95% CI in {self.neither}")


def tally(comparisons: Sequence[Comparison]) -> list[Tally]:
    """One `Tally` per metric (in order of first appearance); pairs without a difference (no
    common example) are not counted."""
    counted: dict[str, list[int]] = {}
    for comparison in comparisons:
        if math.isnan(comparison.difference.estimate):
            continue
        n, larger, smaller = counted.setdefault(comparison.metric, [0, 0, 0])
        direction = comparison.direction
        counted[comparison.metric] = [n + 1, larger + (direction == "larger"),
                                      smaller + (direction == "smaller")]
    return [Tally(metric, *counts) for metric, counts in counted.items()]
