"""The top of the report: one headline per task and the verdict matrix. Pure (no plotting).

A *headline* answers, for one task (emoji_movie, periodic_elements, arithmetic, ...), whether the
ability jumps and under which metrics: the decisive series (the size series with the most
models, else the longest series over training steps) of the decisive setting (for a task with
subtasks, the one whose exact match gains most), its exact match, multiple-choice and
log-likelihood metrics side by side, and one sentence with the numbers.

A *matrix row* is one (task setting, series): each metric's shape (harness.emergence.classify),
with B, J, tau and their CIs for the cell's tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from harness.emergence import MetricVerdict, SeriesAnalysis
from harness.report.analysis import SeriesResult
from harness.report.data import PANEL_METRICS, Block, Series

# One metric per family, in this order: the headline figure's panels and its sentence.
HEADLINE_METRICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("exact match", ("exact_str_match", "exact_match_raw")),
    ("multiple choice", ("multiple_choice_grade", "multiple_choice_grade_norm")),
    ("log-likelihood", ("target_logprob", "correct_choice_prob", "target_logprob_per_token")),
)
_WORDS = {"jump": "jumps", "drop": "drops", "smooth": "rises smoothly", "smooth decline": "declines smoothly",
          "flat": "stays flat", "steady": "rises steadily", "unclear": "moves without a clear shape",
          "U-shaped": "falls, then recovers", "inverted-U": "rises, then falls", "rising": "rises overall",
          "declining": "declines overall"}


@dataclass(frozen=True)
class Headline:
    """One task's decisive series and what it says."""

    task: str  # top task: "arithmetic"
    block: Block
    result: SeriesResult
    metrics: tuple[str, ...]  # the panels, one per family present
    sentence: str

    @property
    def series(self) -> Series:
        return self.result.series


@dataclass(frozen=True)
class MatrixRow:
    """One (block, series) of the verdict matrix: each metric's shape and numbers."""

    block: Block
    result: SeriesResult
    cells: dict[str, MetricVerdict]


def headline_task(block: Block) -> str:
    """'arithmetic', or 'arithmetic@scratchpad' for a variant: each gets its own headline."""
    variant = block.task.partition("@")[2]
    return f"{block.top_task}@{variant}" if variant else block.top_task


def human(value: float) -> str:
    """Parameter counts and steps as 5k, 16k, 1.4M, 12B."""
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def _x_label(series: Series, value: float) -> str:
    if series.kind == "step":
        return f"step {int(value) - 1:,}"  # step series are analysed against step + 1
    return human(value)


def _decisive(results: Sequence[SeriesResult]) -> SeriesResult | None:
    """The size series with the most points, else the longest step series (the largest model last)."""
    analysed = [r for r in results if r.analyses]
    sizes = [r for r in analysed if r.series.kind == "size"]
    pool = sizes or analysed
    if not pool:
        return None
    return max(pool, key=lambda r: (len(r.series.runs), r.series.x[-1]))


def _lone(results: Sequence[SeriesResult]) -> SeriesResult | None:
    """A series of one model (nothing to analyse): its values still answer 'how good is it'."""
    return next((r for r in results if r.series.kind == "size"), None)


def metric_phrase(name: str, analysis: SeriesAnalysis, shape: MetricVerdict, series: Series) -> str:
    """'exact_str_match jumps from 0.00 to 0.47 between 224k and 595k (B = 13 [4.8, inf])'."""
    values = analysis.point_values
    words = _WORDS.get(shape.shape, shape.shape)
    if shape.shape in ("jump", "drop"):
        i, j = shape.breakthrough.jump_between
        return (f"{name} {words} from {values[i]:.2f} to {values[j]:.2f} between "
                f"{_x_label(series, analysis.x[i])} and {_x_label(series, analysis.x[j])}"
                f"{' parameters' if series.kind == 'size' else ''} "
                f"(B = {analysis.b.format()}, J = {analysis.share.format(2)})")
    if shape.shape == "flat":
        return f"{name} {words} ({min(values):.2f} to {max(values):.2f})"
    return f"{name} {words} from {values[0]:.2f} to {values[-1]:.2f} (tau = {analysis.tau.format(2)})"


def _sentence(result: SeriesResult, metrics: Sequence[str]) -> str:
    series = result.series
    if not result.analyses:
        run = series.runs[0]
        values = ", ".join(f"{m} {run.mean(m):.2f}" for m in metrics)
        return f"One model only ({run.label}): {values}; no curve, no verdict."
    phrases = [metric_phrase(m, result.analyses[m], result.shapes[m], series)
               for m in metrics if m in result.analyses]
    what = f"{series.title}, {len(series.runs)} points"
    conclusion = result.verdict.conclusion if result.verdict is not None else "no verdict"
    return f"{'; '.join(phrases)}: {conclusion} ({what})." if phrases else f"{what}: no statistics."


def _panel_metrics(result: SeriesResult) -> tuple[str, ...]:
    chosen = []
    for _, names in HEADLINE_METRICS:
        present = [n for n in names if n in result.analyses
                   or any(not math.isnan(run.mean(n)) for run in result.series.runs)]
        if present:
            chosen.append(present[0])
    return tuple(chosen)


def _rank(result: SeriesResult) -> tuple[bool, bool, float]:
    """Exact match measured, it jumps, and by how much: the most decisive subtask ranks highest."""
    analysis = result.analyses.get("exact_str_match")
    if analysis is None or math.isnan(analysis.change):
        return (False, False, 0.0)
    return (True, result.shapes["exact_str_match"].shape == "jump", analysis.change)


def _rank_pair(pair: tuple[Block, SeriesResult]) -> tuple:
    """Analysed before lone, more points, then the exact-match rank."""
    result = pair[1]
    return (bool(result.analyses), _rank(result), len(result.series.runs))


def headlines(blocks: Sequence[Block], results: dict[str, tuple[SeriesResult, ...]],
              detail: set[str]) -> list[Headline]:
    """One headline per top task, in page order: its detail settings' most decisive series."""
    candidates: dict[str, list[tuple[Block, SeriesResult]]] = {}
    for block in blocks:
        if block.slug not in detail:
            continue
        result = _decisive(results.get(block.slug, ())) or _lone(results.get(block.slug, ()))
        if result is not None:
            candidates.setdefault(headline_task(block), []).append((block, result))
    found = []
    for task, pairs in candidates.items():
        block, result = max(pairs, key=_rank_pair)
        metrics = _panel_metrics(result)
        found.append(Headline(task, block, result, metrics, _sentence(result, metrics)))
    return found


def matrix_rows(blocks: Sequence[Block], results: dict[str, tuple[SeriesResult, ...]]) -> list[MatrixRow]:
    """Every block's decisive series with a verdict, in page order."""
    rows = []
    for block in blocks:
        result = _decisive(results.get(block.slug, ()))
        if result is not None and result.shapes:
            rows.append(MatrixRow(block, result, dict(result.shapes)))
    return rows


def matrix_metrics(rows: Sequence[MatrixRow]) -> list[str]:
    """The matrix's columns: the panel metrics some row has a shape for, in panel order."""
    present = {name for row in rows for name in row.cells}
    return [name for name in PANEL_METRICS if name in present]
