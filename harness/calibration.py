"""Brier score, ECE and reliability bins from per-example calibration pieces. numpy only.

The pieces of one example (`CALIBRATION_PIECES`) are computed from its choice log-probs at
scoring time (`harness.metrics.score_pieces`) and stored in scores.json.gz. The metrics
(`harness.metrics.brier_score`, `expected_calibration_error`) and the report (paired bootstrap
over a series, reliability diagrams) both aggregate them here, so the two cannot disagree and
the report never touches a record.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

ECE_BINS = 15  # BIG-bench's measure_expected_calibration_error
CALIBRATION_PIECES = ("squared_error", "n_choices", "confidence", "correct")

Statistic = Callable[[np.ndarray], np.ndarray]  # resampling counts (rows, n) -> one value per row


@dataclass(frozen=True)
class CalibrationParts:
    """Per-example pieces of the calibration metrics, over examples with choice log-probs."""

    squared_error: np.ndarray  # sum over choices of t*(p-1)^2 + (1-t)*p^2
    n_choices: np.ndarray
    confidence: np.ndarray  # max choice probability
    correct: np.ndarray  # argmax(target_probs) == argmax(probs), as 0/1

    @classmethod
    def of_pieces(cls, pieces: Mapping[str, np.ndarray]) -> CalibrationParts:
        """From stored per-example pieces (`score_table`), keeping the examples that have them."""
        arrays = [np.asarray(pieces[name], dtype=np.float64) for name in CALIBRATION_PIECES]
        usable = ~np.isnan(arrays[0])
        return cls(*(values[usable] for values in arrays))

    def bins(self, n_bins: int) -> np.ndarray:
        """Bucket j is the first j with confidence < (j+1)/n_bins; confidence 1.0 goes last."""
        edges = np.arange(1, n_bins + 1) / n_bins
        return np.minimum(np.searchsorted(edges, self.confidence, side="right"), n_bins - 1)


def brier_statistic(parts: CalibrationParts) -> Statistic:
    """Brier score of each resample: sum of squared errors over the total number of choices."""
    return lambda counts: (counts @ parts.squared_error) / (counts @ parts.n_choices)


def ece_statistic(parts: CalibrationParts, n_bins: int = ECE_BINS) -> Statistic:
    """ECE of each resample: sum_k (n_k/n)|acc_k - conf_k| = sum_k |sum_{i in k} (correct_i - conf_i)| / n."""
    one_hot = np.eye(n_bins)[parts.bins(n_bins)]
    gaps = one_hot * (parts.correct - parts.confidence)[:, None]
    return lambda counts: np.abs(counts @ gaps).sum(axis=1) / counts.sum(axis=1)


FROM_PIECES: dict[str, Callable[[CalibrationParts], Statistic]] = {
    "brier_score": brier_statistic, "expected_calibration_error": ece_statistic}


def aggregate_from_pieces(name: str, pieces: Mapping[str, np.ndarray]) -> tuple[int, Statistic] | None:
    """An aggregate metric from stored pieces: (n usable examples, statistic of resampling counts).

    The statistic takes counts (rows, n usable) like `Metric.weighted`; all ones gives the
    metric itself. None for a metric that is not an aggregate of pieces, or without usable examples.
    """
    if name not in FROM_PIECES:
        return None
    parts = CalibrationParts.of_pieces(pieces)
    n = parts.confidence.size
    return (n, FROM_PIECES[name](parts)) if n else None


def usable_pieces(pieces: Mapping[str, np.ndarray]) -> np.ndarray:
    """Which examples (in the pieces' order) have calibration pieces (choice log-probs)."""
    return ~np.isnan(np.asarray(pieces["squared_error"], dtype=np.float64))


def bins_table(parts: CalibrationParts, n_bins: int = ECE_BINS) -> list[dict[str, float]]:
    """The bins behind ECE: lo, hi (confidence range), count, mean_confidence and accuracy (NaN
    for an empty bin)."""
    bins = parts.bins(n_bins)
    table = []
    for j in range(n_bins):
        members = bins == j
        count = int(members.sum())
        table.append({"lo": j / n_bins, "hi": (j + 1) / n_bins, "count": count,
                      "mean_confidence": float(parts.confidence[members].mean()) if count else math.nan,
                      "accuracy": float(parts.correct[members].mean()) if count else math.nan})
    return table


def reliability_bins_from_pieces(pieces: Mapping[str, np.ndarray], n_bins: int = ECE_BINS
                                 ) -> list[dict[str, float]]:
    """`bins_table` from stored per-example pieces (`score_table`)."""
    return bins_table(CalibrationParts.of_pieces(pieces), n_bins)
