"""Seed spread: a jump counts only beyond the variation between training seeds (PolyPythias, 2025:
9 seeds x 5 Pythia sizes).

A family trained with several seeds names its checkpoints with a seed token, `pico-s2-56k` (or
`pico-56k-s2`): `split_seed` finds it. For each point of a series (a size, or a step), the
seeds' values give a band: min-max and mean +- sd across seeds. The verdict rule reads
`spread_around(i, j)`, the largest min-max width at the two points around a step: a step whose
lower CI bound does not clear it is within seed noise. Where neither end of a step has seeds
(pico trains seed variants of its three smallest sizes), the largest spread measured on the
series stands in, and the evidence says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from harness.errors import HarnessError

_SEED_TOKEN = re.compile(r"-s(\d+)(?=-|$)")


def split_seed(model: str) -> tuple[str, int | None]:
    """('pico-56k', 2) for 'pico-s2-56k' or 'pico-56k-s2'; (model, None) without a seed token."""
    found = _SEED_TOKEN.search(model)
    if found is None:
        return model, None
    return model[:found.start()] + model[found.end():], int(found.group(1))


@dataclass(frozen=True)
class SeedBand:
    """Per point across seeds, in the metric's own units: min, max, mean and sample sd.

    A family may train seed variants of some sizes only (pico: the three smallest); a point
    with fewer than two seeds has NaN in every field (`counts` says how many seeds it has).
    """

    n_seeds: int
    low: tuple[float, ...]
    high: tuple[float, ...]
    mean: tuple[float, ...]
    sd: tuple[float, ...]
    counts: tuple[int, ...] = ()

    @property
    def spread(self) -> tuple[float, ...]:
        """max - min across seeds, per point (NaN where a point has fewer than two seeds)."""
        return tuple(h - lo for lo, h in zip(self.low, self.high, strict=True))

    @property
    def measured(self) -> tuple[bool, ...]:
        """Whether each point has a spread (two seeds or more)."""
        return tuple(not np.isnan(width) for width in self.spread)

    def spread_around(self, i: int, j: int) -> float:
        """The larger seed spread of points i and j (the two ends of a step); where neither
        has seeds, the largest spread measured anywhere on the series stands in for it."""
        known = [self.spread[k] for k in (i, j) if self.measured[k]]
        return max(known) if known else max(w for w, m in zip(self.spread, self.measured) if m)

    def stand_in(self, i: int, j: int) -> bool:
        """Whether `spread_around(i, j)` is the stand-in (neither end has seeds)."""
        return not (self.measured[i] or self.measured[j])


def seed_band(values: np.ndarray) -> SeedBand:
    """The band of (n_seeds, n_points) point values, one row per seed, columns sorted like the
    series; NaN where a seed was not trained at a point (at least one point needs two seeds)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] < 2:
        raise HarnessError(f"a seed band needs (n_seeds >= 2, n_points) values, got shape {values.shape}")
    counts = (~np.isnan(values)).sum(axis=0)
    if counts.max() < 2:
        raise HarnessError("a seed band needs two seeds at one point at least (every point has one)")
    banded = counts >= 2
    low, high, mean, sd = (np.full(values.shape[1], np.nan) for _ in range(4))
    low[banded] = np.nanmin(values[:, banded], axis=0)
    high[banded] = np.nanmax(values[:, banded], axis=0)
    mean[banded] = np.nanmean(values[:, banded], axis=0)
    sd[banded] = np.nanstd(values[:, banded], axis=0, ddof=1)

    def floats(row: np.ndarray) -> tuple[float, ...]:
        return tuple(float(v) for v in row)

    return SeedBand(int(counts.max()), floats(low), floats(high), floats(mean), floats(sd),
                    tuple(int(c) for c in counts))
