"""The mirage check (Schaeffer et al. 2023): exact match against p_tok ** L.

If each of L answer tokens is right with probability p_tok, exact match is about p_tok ** L, so a
smooth rise of p_tok looks like a jump. `mirage_check` compares the two per model;
`mirage_explained` says how much of exact match's rise from the smallest to the largest model
p_tok ** L accounts for, with a paired bootstrap CI.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.emergence.bootstrap import (
    Estimate,
    fmt,
    interval,
    nanmean_rows,
    resampled_point_means,
    sorted_series,
)
from harness.emergence.statistics import Breakthrough, breakthroughness
from harness.errors import HarnessError


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
        return (f"observed exact match vs p_tok^L: r = {fmt(self.correlation, 2)}, mean |gap| = "
                f"{self.mean_abs_gap:.3g}; observed {self.observed_b.description}; predicted "
                f"{self.predicted_b.description}")


def mirage_check(x: np.ndarray | Sequence[float], observed_exact_match: np.ndarray | Sequence[float],
                 p_tok: np.ndarray | Sequence[float], target_length: np.ndarray | Sequence[float],
                 labels: Sequence[str] | None = None) -> MirageCheck:
    """Does exact match follow p_tok ** L across models? Arrays (n_points,), in x's order."""
    x_sorted, order = sorted_series(x)
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



@dataclass(frozen=True)
class MirageExplained:
    """Exact match's rise from the smallest to the largest model, p_tok ** L's rise over the same
    models, and their ratio (`fraction`: 1 when the predictor accounts for the whole rise)."""

    observed_rise: Estimate
    predicted_rise: Estimate
    fraction: Estimate

    @property
    def description(self) -> str:
        if not self.observed_rise.estimate > 0:
            return (f"exact match does not rise ({self.observed_rise.format(3)}): nothing for p_tok^L "
                    "to explain")
        return (f"p_tok^L explains {self.fraction.format(2)} of exact match's rise "
                f"({self.predicted_rise.format(3)} of {self.observed_rise.format(3)})")


def mirage_explained(x: np.ndarray | Sequence[float], observed: np.ndarray, p_tok: np.ndarray,
                     lengths: np.ndarray, n_boot: int = 1000, seed: int = 0) -> MirageExplained:
    """(predicted rise) / (observed rise), smallest to largest x, from per-example matrices.

    `observed` (exact match), `p_tok` and `lengths` (target tokens) are (n_points, n_examples),
    rows in x's order; a point's prediction is mean(p_tok) ** mean(L) over its scorable examples
    (the model-level approximation of `mirage_prediction`). Every matrix sees the same resamples
    (one seed), so the ratio's CI is paired. A resample whose observed rise is not positive gives
    no ratio (counted as undefined).
    """
    x_sorted, order = sorted_series(x)
    first, last = int(order[0]), int(order[-1])
    matrices = [np.asarray(m, dtype=np.float64) for m in (observed, p_tok, lengths)]
    if any(m.ndim != 2 or m.shape[0] != x_sorted.size for m in matrices):
        raise HarnessError(f"mirage matrices must be ({x_sorted.size}, n_examples), got "
                           f"{[m.shape for m in matrices]}")
    points = [nanmean_rows(m)[None, :] for m in matrices]
    reps = [resampled_point_means(m, n_boot, seed) for m in matrices]

    def rises(em: np.ndarray, p: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        predicted = np.clip(p, 0.0, 1.0) ** length
        seen, expected = em[:, last] - em[:, first], predicted[:, last] - predicted[:, first]
        with np.errstate(invalid="ignore", divide="ignore"):
            return seen, expected, np.where(seen > 0, expected / seen, np.nan)

    estimates = rises(*points)
    if reps[0].size == 0:
        return MirageExplained(*(Estimate(float(e[0]), math.nan, math.nan) for e in estimates))
    resampled = rises(*reps)
    return MirageExplained(*(interval(float(e[0]), r) for e, r in zip(estimates, resampled, strict=True)))
