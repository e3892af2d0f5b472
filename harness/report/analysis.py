"""Emergence statistics and mirage checks for each series of a report (harness.emergence on runs).

Every per-example metric is analysed from the (n_models, n_examples) matrix of its
per-example values, examples aligned by idx and restricted to those every model of the series
answered, so the bootstrap is paired over examples (one resample for every model and every
metric). Aggregate metrics (Brier, ECE) are resampled the same way through
the stored pieces (`harness.metrics.aggregate_from_pieces`). Everything comes from the
per-example scores stored at scoring time (`ScoreCache`); nothing is re-scored here. A series
whose runs kept no scores falls back to the summaries' point values, and its statistics say "no CI".

Size series are analysed against their x (`harness.report.axes`: parameters, training compute
in FLOPs, or 1/bits per byte for held-out loss, so that x grows with scale on every axis and the
fit is on log10 x). Step series are analysed against step + 1 (linearity on log10(step + 1));
step 0, the random initialisation, is drawn but left out of the statistics. B and Kendall tau
depend only on the order of the points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from harness.calibration import aggregate_from_pieces, usable_pieces
from harness.emergence import (
    MetricVerdict,
    MirageCheck,
    MirageExplained,
    SeedBand,
    SeriesAnalysis,
    TaskVerdict,
    analyze_series,
    classify,
    mirage_check,
    mirage_explained,
    mirage_prediction,
    resampled_points,
    seed_band,
    split_seed,
    verdict,
)
from harness.errors import HarnessError
from harness.metrics import METRICS, PIECES
from harness.report.data import Block, Run, ScoreCache, Series, common_examples, score_matrix, seed_number


@dataclass(frozen=True)
class MirageRow:
    """Observed exact match of one model against p_tok ** L (Schaeffer et al. 2023).

    `p_tok` is the mean over examples of exp(per-token log-prob of the best target), `n_tokens`
    the mean number of tokens of that target, `predicted` = p_tok ** n_tokens (the model-level
    approximation), `predicted_per_example` the mean of each example's own p ** L.
    """

    run: Run
    observed: float
    p_tok: float
    n_tokens: float
    predicted: float
    predicted_per_example: float


@dataclass(frozen=True)
class SeriesResult:
    """Everything the report says about one series: statistics per metric, shapes, verdict."""

    series: Series
    analyses: dict[str, SeriesAnalysis]
    shapes: dict[str, MetricVerdict]
    verdict: TaskVerdict | None
    mirage: MirageCheck | None
    n_examples: int  # examples every model answered (0: point values only)
    notes: tuple[str, ...]


@dataclass(frozen=True)
class SeededSeries:
    """A series with one run per point (seed variants folded), and each point's runs across seeds
    (`members`, one tuple per point; empty when the family has no seeds at every point)."""

    series: Series
    members: tuple[tuple[Run, ...], ...]

    def band(self, metric: str) -> SeedBand | None:
        """Min-max and mean +- sd of the summaries' means across seeds, per point (None: no seeds
        or not measured; NaN at a point with one seed)."""
        if not self.members:
            return None
        seeds = sorted({seed_number(run.model) for point in self.members for run in point})
        values = np.full((len(seeds), len(self.members)), np.nan)
        for col, point in enumerate(self.members):
            for run in point:
                values[seeds.index(seed_number(run.model)), col] = run.mean(metric)
        counts = (~np.isnan(values)).sum(axis=0)
        # a metric some seed did not measure gives no band at all, never a narrower one
        if len(seeds) < 2 or (counts != [len(p) for p in self.members]).any() or counts.max() < 2:
            return None
        return seed_band(values)


def seed_view(block: Block, series: Series) -> SeededSeries:
    """A series (one model per seed group, `harness.report.data`) with each point's runs across
    the seed variants of its model (`pico-s2-56k`, see `harness.emergence.split_seed`) at its
    step. The band needs two seeds at one point at least; points with one seed have none."""
    members = tuple(tuple(r for r in block.runs if r.group == run.group and r.step == run.step
                          and split_seed(r.model)[0] == split_seed(run.model)[0]) for run in series.runs)
    return SeededSeries(series, members if max(len(point) for point in members) >= 2 else ())


def is_arithmetic_like(block: Block) -> bool:
    """Integer targets with generations and target log-probs: where exact match ~ p_tok ** L."""
    metrics = set(block.metrics())
    return {"exact_str_match", "p_tok", "digit_accuracy"} <= metrics


def mirage_row(cache: ScoreCache, run: Run) -> MirageRow:
    """Observed vs predicted exact match of one run, over all its examples (stored scores)."""
    if not cache.idxs(run):  # summaries only: the summary's means, no token counts
        return MirageRow(run, run.mean("exact_str_match"), run.mean("p_tok"), math.nan, math.nan,
                         run.mean("predicted_exact_match"))
    observed = cache.all_rows(run, "exact_str_match")
    p_values = cache.all_rows(run, "p_tok")
    lengths = cache.all_rows(run, "target_n_tokens")
    per_example = cache.all_rows(run, "predicted_exact_match")
    usable = ~np.isnan(p_values) & ~np.isnan(lengths)

    def mean(values: np.ndarray) -> float:
        return float(np.mean(values)) if values.size else math.nan

    p_mean, length = mean(p_values[usable]), mean(lengths[usable])
    predicted = math.nan
    if 0.0 <= p_mean <= 1.0:  # NaN without usable records; > 1 only from a damaged (positive) log-prob
        predicted = float(mirage_prediction([p_mean], [length])[0])
    return MirageRow(run, mean(observed[~np.isnan(observed)]), p_mean, length, predicted,
                     mean(per_example[~np.isnan(per_example)]))


def _aggregate_replicates(runs: Sequence[Run], cache: ScoreCache, idxs: Sequence[int], name: str,
                          n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Point values of an aggregate metric from stored pieces, and paired resamples when every
    example has its pieces (Brier and ECE need choice log-probs)."""
    pieces = [{piece: cache.column(run, piece, idxs) for piece in PIECES} for run in runs]
    aggregates = [aggregate_from_pieces(name, run_pieces) for run_pieces in pieces]
    points = np.array([math.nan if a is None else a[1](np.ones((1, a[0])))[0] for a in aggregates],
                      dtype=np.float64)
    if any(a is None for a in aggregates) or not all(usable_pieces(p).all() for p in pieces) or not idxs:
        return points, None
    statistics = [a[1] for a in aggregates if a is not None]
    replicates = resampled_points(len(idxs), lambda counts: np.column_stack([s(counts) for s in statistics]),
                                  n_boot, seed)
    return points, replicates


# The verdict sentence names the headline metrics of each family (every metric's numbers
# are in the tables): exact match, multiple choice, log-likelihood, partial credit.
VERDICT_METRICS = ("exact_str_match", "multiple_choice_grade", "target_logprob", "digit_accuracy",
                   "token_edit_distance")


def _headline(analyses: dict[str, SeriesAnalysis]) -> dict[str, SeriesAnalysis]:
    chosen = [m for m in VERDICT_METRICS if m in analyses]
    if "digit_accuracy" in chosen and "token_edit_distance" in chosen:
        chosen.remove("token_edit_distance")  # one partial-credit metric is enough
    return {name: analyses[name] for name in chosen}


@dataclass(frozen=True)
class _Points:
    """What every metric of one series is analysed on: the runs, x, shared examples, resampling."""

    view: SeededSeries
    x: list[float]
    idxs: list[int]
    n_boot: int
    seed: int


def _metric_analysis(points: _Points, cache: ScoreCache, name: str) -> SeriesAnalysis | None:
    """One metric's analysis (None: not measured for every model), with its seed band if any."""
    metric = METRICS.get(name)
    series = points.view.series
    if metric is None:
        return None
    replicates = None
    if not points.idxs:
        scores = np.array([run.mean(name) for run in series.runs])
    elif metric.kind == "example":
        scores = score_matrix(cache, series.runs, name, points.idxs)
        if np.isnan(scores).all(axis=1).any():
            return None
    else:
        scores, replicates = _aggregate_replicates(series.runs, cache, points.idxs, name, points.n_boot,
                                                   points.seed)
    if scores.ndim == 1 and np.isnan(scores).any():
        return None
    analysis = analyze_series(points.x, scores, metric.higher_is_better, points.n_boot, points.seed,
                              metric=name, family=metric.group, labels=series.labels, replicates=replicates)
    band = points.view.band(name)
    if band is None:
        return analysis
    return replace(analysis, seed_band=band)  # a series is sorted by x, like its analysis


def _mirage_explained(points: _Points, cache: ScoreCache) -> MirageExplained | None:
    """How much of exact match's rise p_tok ** L explains (needs per-example scores)."""
    if not points.idxs:
        return None
    runs = points.view.series.runs
    matrices = [score_matrix(cache, runs, name, points.idxs)
                for name in ("exact_str_match", "p_tok", "target_n_tokens")]
    return mirage_explained(points.x, *matrices, n_boot=points.n_boot, seed=points.seed)


def _without_step0(series: Series) -> tuple[Series, list[str]]:
    """A step series without step 0 (when two trained checkpoints remain), and the note saying so."""
    if not (series.kind == "step" and sum(x > 0 for x in series.x) >= 2 and 0 in series.x):
        return series, []
    keep = [i for i, x in enumerate(series.x) if x > 0]
    series = Series(series.kind, series.group, series.name, series.title,
                    tuple(series.runs[i] for i in keep), tuple(series.x[i] for i in keep))
    return series, [f"{series.title}: step0 (random initialisation) is left out of the statistics"]


def analyze(block: Block, series: Series, cache: ScoreCache, n_boot: int = 1000,
            seed: int = 0) -> SeriesResult:
    """Every metric's statistics (paired bootstrap CIs), shapes, the mirage fit and the verdict.

    Over training steps, step 0 (the random initialisation) is drawn but left out of the
    statistics: its drop to the first trained checkpoint is the start of training, not the
    emergence of an ability, and on a log axis it would dominate every curve. Seed variants of a
    family fold into one point each, their spread kept as a seed band (`seed_view`).
    """
    series, notes = _without_step0(series)
    view = seed_view(block, series)
    series = view.series
    if len(series.runs) < 2:
        return SeriesResult(series, {}, {}, None, None, 0, ())
    if len(set(series.x)) < len(series.x):
        note = (f"{series.title}: two models share an x value ({', '.join(series.labels)}); "
                "no emergence statistics")
        return SeriesResult(series, {}, {}, None, None, 0, (*notes, note))
    idxs = common_examples(cache, series.runs)
    if not idxs:
        notes.append(f"{series.title}: no example scored for every model (scores not kept?); "
                     "statistics from summary means, without CIs")
    points = _Points(view, [v + 1 for v in series.x] if series.kind == "step" else list(series.x), idxs,
                     n_boot, seed)
    analyses: dict[str, SeriesAnalysis] = {}
    for name in block.metrics():
        try:
            analysis = _metric_analysis(points, cache, name)
        except HarnessError as exc:  # e.g. a degenerate axis; say so instead of failing the report
            notes.append(f"{series.title}, {name}: {exc}")
            continue
        if analysis is not None:
            analyses[name] = analysis
    mirage, explained = _mirage(block, points, cache, notes)
    headline = _headline(analyses)
    label = f"{block.task} ({block.setting}; {series.title})"
    task_verdict = verdict(label, headline, explained) if headline else None
    shapes = {name: classify(analysis) for name, analysis in analyses.items()}
    return SeriesResult(series, analyses, shapes, task_verdict, mirage, len(idxs), tuple(notes))


def _mirage(block: Block, points: _Points, cache: ScoreCache,
            notes: list[str]) -> tuple[MirageCheck | None, MirageExplained | None]:
    """The per-model mirage check and the explained share of the rise, for arithmetic-like tasks."""
    if not is_arithmetic_like(block):
        return None, None
    series = points.view.series
    rows = [mirage_row(cache, run) for run in series.runs]
    try:
        check = mirage_check(points.x, [r.observed for r in rows], [r.p_tok for r in rows],
                             [r.n_tokens for r in rows], labels=series.labels)
        return check, _mirage_explained(points, cache)
    except HarnessError as exc:
        notes.append(f"{series.title}, mirage check: {exc}")
        return None, None


def headline_results(block: Block, results: Sequence[SeriesResult]) -> list[SeriesResult]:
    """The size series, and each group's largest model over steps: what a README has room for."""
    largest = {}
    for series in block.step_series:  # ordered by size within a group
        largest[series.group] = series.name
    # the analysed series may be a copy (step0 left out), so match by group and name
    return [r for r in results if r.series.kind == "size"
            or largest.get(r.series.group) == r.series.name]
