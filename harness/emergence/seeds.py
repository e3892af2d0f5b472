"""Seed spread: a jump counts only beyond the variation between training seeds (PolyPythias, 2025:
9 seeds x 5 Pythia sizes).

A family trained with several seeds names its checkpoints with a seed token, `pico-s2-56k` (or
`pico-56k-s2`): `split_seed` finds it. For each point of a series (a size, or a step), the
seeds' values give a band: min-max and mean +- sd across seeds. The verdict rule reads
`spread_around(i, j)`, the largest min-max width at the two points around a step: a step whose
lower CI bound does not clear it is within seed noise.
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
    """Per point across seeds, in the metric's own units: min, max, mean and sample sd."""

    n_seeds: int
    low: tuple[float, ...]
    high: tuple[float, ...]
    mean: tuple[float, ...]
    sd: tuple[float, ...]

    @property
    def spread(self) -> tuple[float, ...]:
        """max - min across seeds, per point."""
        return tuple(h - lo for lo, h in zip(self.low, self.high, strict=True))

    def spread_around(self, i: int, j: int) -> float:
        """The larger seed spread of points i and j (the two ends of a step)."""
        return max(self.spread[i], self.spread[j])


def seed_band(values: np.ndarray) -> SeedBand:
    """The band of (n_seeds, n_points) point values, one row per seed, columns sorted like the series."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] < 2:
        raise HarnessError(f"a seed band needs (n_seeds >= 2, n_points) values, got shape {values.shape}")
    if np.isnan(values).any():
        raise HarnessError("a seed band needs every seed at every point (a value is missing)")
    sd = values.std(axis=0, ddof=1)
    def floats(row: np.ndarray) -> tuple[float, ...]:
        return tuple(float(v) for v in row)

    return SeedBand(values.shape[0], floats(values.min(axis=0)), floats(values.max(axis=0)),
                    floats(values.mean(axis=0)), floats(sd))
