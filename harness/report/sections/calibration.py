"""Calibration: every block whose runs scored expected_calibration_error (choice log-probs).

Gathered: per size series, the reliability bins behind ECE per model (from the stored
per-example pieces, `harness.calibration`), and the ECE trend: the block's own size-series
analysis (Kendall tau with its paired bootstrap CI), read in ECE's own orientation (negative tau:
ECE falls with size). Blocks are grouped per top task and group into `CalibrationTrend`s, one
ECE/Brier figure each (split by setting past MAX_TREND_CELLS panels). Drawn: the trend figures
and, for detail blocks, a reliability diagram per model (accuracy per confidence bin as bars,
the bin's mean confidence as a point, the diagonal, the count per bin below).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.calibration import ECE_BINS, reliability_bins_from_pieces
from harness.emergence import Estimate
from harness.metrics import PIECES
from harness.report.axes import ScaleAxis
from harness.report.data import Block, Run, ScoreCache, Series, has_values, slugify, summary_value
from harness.report.html import figures_html, metric_header, sentences_html, table, value_cell
from harness.report.section import Drawn, FigureFile, Figures, Inputs, PageSection
from harness.report.text import esc, format_value, value_text, wrap

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from harness.report.figure_writer import FigureWriter

NO_ESTIMATE = Estimate(math.nan, math.nan, math.nan)
MAX_TREND_CELLS = 20  # panels of one ECE/Brier figure before it is split by setting
TRENDS = ("improves", "worsens", "no clear trend", "no change")
BRIEF = 4  # more blocks than this: counted, not listed, in summary.md
TABLE_METRICS = ("expected_calibration_error", "brier_score", "multiple_choice_grade")


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of a reliability diagram; NaN accuracy when empty."""

    lo: float
    hi: float
    count: int
    mean_confidence: float
    accuracy: float


@dataclass(frozen=True)
class ReliabilityPanel:
    run: Run
    bins: tuple[ReliabilityBin, ...]

    @property
    def n(self) -> int:
        """Records with choice log-probs: the bins' counts add up to it."""
        return sum(b.count for b in self.bins)


@dataclass(frozen=True)
class CalibrationBlock:
    """One block's size series of a group with ECE: reliability bins per model, the ECE trend."""

    block: Block
    series: Series
    panels: tuple[ReliabilityPanel, ...]  # models whose records have choice log-probs
    ece_tau: Estimate  # Kendall tau of ECE against size, ECE's own orientation (negative: falls)
    sentence: str

    @property
    def slug(self) -> str:
        return f"{self.block.slug}-{slugify(self.series.group)}"

    @property
    def trend(self) -> str:
        """'improves', 'worsens', 'no clear trend' or 'no change' (`calibration_trend`); '' for one model."""
        return calibration_trend(self.ece_tau) if len(self.series.runs) > 1 else ""


@dataclass(frozen=True)
class CalibrationTrend:
    """The blocks of one top task and group (split by setting when many): one ECE/Brier figure."""

    slug: str  # 'arithmetic-tiny', or 'arithmetic-shots0-tiny' when split
    members: tuple[CalibrationBlock, ...]


# --------------------------------------------------------------------------------------
# Gathering


def reliability_panel(cache: ScoreCache, run: Run, n_bins: int = ECE_BINS) -> ReliabilityPanel | None:
    idxs = sorted(cache.idxs(run))
    pieces = {piece: cache.column(run, piece, idxs) for piece in PIECES}
    bins = tuple(ReliabilityBin(b["lo"], b["hi"], int(b["count"]), b["mean_confidence"], b["accuracy"])
                 for b in reliability_bins_from_pieces(pieces, n_bins)) if idxs else ()
    return ReliabilityPanel(run, bins) if sum(b.count for b in bins) else None


def _flip(estimate: Estimate) -> Estimate:
    """An oriented (improvement-positive) estimate back in a lower-is-better metric's own sign."""
    return Estimate(-estimate.estimate, -estimate.ci_high, -estimate.ci_low, estimate.degenerate_fraction,
                    estimate.undefined_fraction)


def calibration_trend(tau: Estimate) -> str:
    """One of TRENDS from Kendall tau of ECE against size: the CI below 0 "improves", above "worsens"."""
    if math.isnan(tau.estimate):
        return "no change"
    low, high = (tau.ci_low, tau.ci_high) if tau.has_ci else (tau.estimate, tau.estimate)
    return "improves" if high < 0 else "worsens" if low > 0 else "no clear trend"


def _trend_words(tau: Estimate) -> str:
    trend = calibration_trend(tau)
    suffix = "" if tau.has_ci or trend == "no change" else " (no CI)"
    if trend == "no change":
        return "ECE does not change with size"
    if trend == "no clear trend":
        return "no clear calibration trend with size " + ("(τ's CI includes 0)" if tau.has_ci else "(no CI)")
    return f"calibration {trend} with size{suffix}"


def _sentence(block: Block, series: Series, tau: Estimate) -> str:
    head = f"{block.task} ({block.setting}), {series.title}"
    ece = [(run, summary_value(run, "expected_calibration_error")) for run in series.runs]
    ece = [(run, value) for run, value in ece if not math.isnan(value.estimate)]
    brier = [summary_value(run, "brier_score") for run, _ in ece]
    if len(ece) == 1:
        return f"{head}: one model, ECE {value_text(ece[0][1])} at {ece[0][0].label}: no trend."
    (first, v0), (last, v1) = ece[0], ece[-1]
    return (f"{head}: ECE goes from {value_text(v0)} at {first.label} to {value_text(v1)} at {last.label} "
            f"(Brier {format_value(brier[0].estimate)} → {format_value(brier[-1].estimate)}); Kendall τ of "
            f"ECE against size = {tau.format(2)}: {_trend_words(tau)}.")


def calibration_blocks(inputs: Inputs) -> list[CalibrationBlock]:
    """Every size series (of every block) whose runs have an ECE, a task's settings in reading
    order (0-shot, 1-shot, 1-shot flipped, 1-shot unrelated, 3-shot)."""
    found = []
    for block in inputs.blocks:
        for series in block.size_series:
            if not has_values(series.runs, "expected_calibration_error"):
                continue
            panels = tuple(p for p in (reliability_panel(inputs.cache, run) for run in series.runs)
                           if p is not None)
            tau = NO_ESTIMATE
            for result in inputs.results_of(block):
                if result.series is series and "expected_calibration_error" in result.analyses:
                    tau = _flip(result.analyses["expected_calibration_error"].tau)
            found.append(CalibrationBlock(block, series, panels, tau, _sentence(block, series, tau)))
    task_order: dict[str, int] = {}
    for block in inputs.blocks:
        task_order.setdefault(block.task, len(task_order))
    return sorted(found, key=lambda c: (task_order[c.block.task], c.block.shots,
                                        c.block.demo_labels != "true", c.block.demo_labels))


def _trend_slug(calibration: CalibrationBlock, split: bool) -> str:
    block, group = calibration.block, slugify(calibration.series.group)
    if not split:
        return f"{slugify(block.top_task)}-{group}"
    labels = "" if block.demo_labels == "true" else f"-{block.demo_labels}"
    return f"{slugify(block.top_task)}-shots{block.shots}{labels}-{group}"


def gather(inputs: Inputs) -> tuple[CalibrationTrend, ...]:
    """One trend per top task and group, split by setting when it has more than MAX_TREND_CELLS panels."""
    found = calibration_blocks(inputs)
    coarse = [_trend_slug(c, split=False) for c in found]
    trends: dict[str, list[CalibrationBlock]] = {}
    for slug, calibration in zip(coarse, found):
        split = coarse.count(slug) > MAX_TREND_CELLS
        trends.setdefault(_trend_slug(calibration, split), []).append(calibration)
    return tuple(CalibrationTrend(slug, tuple(members)) for slug, members in trends.items())


# --------------------------------------------------------------------------------------
# Figures


def _reliability(plot, ax, counts_ax, panel: ReliabilityPanel) -> None:
    width = panel.bins[0].hi - panel.bins[0].lo
    centres = [(b.lo + b.hi) / 2 for b in panel.bins]
    used = [b for b in panel.bins if b.count]  # an empty bin has no accuracy: no bar
    ax.bar([(b.lo + b.hi) / 2 for b in used], [b.accuracy for b in used], width=width * 0.92,
           color=plot.OKABE_ITO[5], edgecolor=plot.OKABE_ITO[0], linewidth=0.6, label="accuracy per bin")
    ax.plot([b.mean_confidence for b in used], [b.accuracy for b in used], linestyle="none", marker="o",
            markersize=4, color=plot.OKABE_ITO[1], label="(mean confidence, accuracy)")
    ax.plot([0, 1], [0, 1], linestyle="--", color=plot.CHANCE_COLOR, linewidth=1.1,
            label="perfect calibration")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.03, 1.05)
    ax.xaxis.set_major_locator(plot.MaxNLocator(3))
    ax.yaxis.set_major_locator(plot.MaxNLocator(3))
    ax.tick_params(labelbottom=False)
    ece = panel.run.mean("expected_calibration_error")
    ax.set_title(f"{panel.run.label}\nn = {panel.n}, ECE = {format_value(ece)}", fontsize=9)
    counts_ax.bar(centres, [b.count for b in panel.bins], width=width * 0.92, color="0.45")
    counts_ax.set_xlim(-0.02, 1.02)
    counts_ax.xaxis.set_major_locator(plot.MaxNLocator(3))
    counts_ax.yaxis.set_major_locator(plot.MaxNLocator(2, integer=True))
    counts_ax.set_xlabel("confidence")


def reliability_figure(calibration: CalibrationBlock, max_cols: int = 6) -> Figure | None:
    from harness.report import plotting as plot

    panels = calibration.panels
    if not panels:
        return None
    n_cols = min(max_cols, len(panels))
    n_pairs = math.ceil(len(panels) / n_cols)
    fig = plot.new_figure(plot.width_for(n_cols, 2.3), 3.4 * n_pairs + 0.9)
    grid = fig.subplots(2 * n_pairs, n_cols, squeeze=False, gridspec_kw={"height_ratios": [3, 1] * n_pairs})
    for index in range(n_pairs * n_cols):
        pair, col = divmod(index, n_cols)
        ax, counts_ax = grid[2 * pair][col], grid[2 * pair + 1][col]
        if index >= len(panels):
            ax.set_visible(False)
            counts_ax.set_visible(False)
            continue
        _reliability(plot, ax, counts_ax, panels[index])
        if col == 0:
            ax.set_ylabel("accuracy")
            counts_ax.set_ylabel("count")
    plot.legend_below(fig, grid)
    block = calibration.block
    plot.wrapped_title(fig, f"{block.task} ({block.setting}), {calibration.series.title}: reliability "
                       "diagrams (15 bins of max choice probability), models by size")
    return fig


def trend_figure(trend: CalibrationTrend, axis: ScaleAxis) -> Figure | None:
    """ECE and Brier with CIs against size, one panel per block (subtask)."""
    from harness.report import plotting as plot

    cells = [c for c in trend.members if len(c.series.runs) > 1]
    if not cells:
        return None
    fig, grid, n_cols = plot.small_multiples(len(cells), plot.width_for(min(5, len(cells)), 2.6))
    for cell, (ax, calibration) in enumerate(zip(grid.ravel(), cells)):
        series, block = calibration.series, calibration.block
        plot.draw_series(ax, series, "expected_calibration_error", "expected_calibration_error",
                         color=plot.OKABE_ITO[0], marker="o")
        plot.draw_series(ax, series, "brier_score", "brier_score", color=plot.OKABE_ITO[1], marker="s",
                         linestyle="--")
        plot.set_x(ax, "params", series.x, axis)
        plot.set_y(ax, "brier_score")
        ax.set_title(f"{plot.subtask_title(block.task) if len(cells) > 1 else block.task}, {block.setting}",
                     fontsize=9)
        if cell % n_cols == 0:
            ax.set_ylabel("lower = better")
        if cell >= len(cells) - n_cols:
            ax.set_xlabel(axis.label)
    plot.legend_below(fig, grid)
    first = cells[0]
    plot.wrapped_title(fig, f"{first.block.top_task}, {first.series.group}: ECE and Brier against "
                       f"{axis.label}, per subtask and setting")
    return fig


def draw(trends: Sequence[CalibrationTrend], writer: FigureWriter, inputs: Inputs) -> list[Drawn]:
    """Each trend's figure; reliability diagrams for the detail blocks only."""
    drawn = []
    for trend in trends:
        first = trend.members[0]
        stem = f"fig-calibration-{trend.slug}"
        writer.write(stem, trend_figure, trend, inputs.axis)
        caption = f"{first.block.top_task}, {first.series.group}: ECE and Brier score against size, per " \
                  "subtask and setting"
        drawn.append(Drawn(trend, FigureFile(stem, caption)))
        for calibration in trend.members:
            if not inputs.is_detail(calibration.block):
                continue
            stem = f"fig-reliability-{calibration.slug}"
            writer.write(stem, reliability_figure, calibration)
            drawn.append(Drawn(calibration, FigureFile(
                stem, f"{calibration.block.task} ({calibration.block.setting}), {calibration.series.group}: "
                "reliability diagram per model")))
    return drawn


# --------------------------------------------------------------------------------------
# Page


def _table(calibration: CalibrationBlock, inputs: Inputs) -> str:
    counts = {panel.run.label: panel.n for panel in calibration.panels}
    header = ["model", inputs.axis.label, "n in bins", *(metric_header(m, wrap(m)) for m in TABLE_METRICS)]
    series = calibration.series
    rows = [[esc(run.label), inputs.axis.cell(run), str(counts.get(run.label, "–")),
             *(value_cell(run, m, inputs.run_ids) for m in TABLE_METRICS)]
            for run in series.runs]
    return table(header, rows)


def render(trends: Sequence[CalibrationTrend], figures: Figures, inputs: Inputs) -> PageSection | None:
    if not trends:
        return None
    parts = ['<h2 id="axis-calibration">Calibration</h2><p class="muted">Multiple-choice blocks: '
             "confidence is the highest softmax probability over the choices, 15 equal-width bins "
             "(BIG-bench's ECE). Bars: accuracy per bin; points: (mean confidence, accuracy); dashed: "
             "perfect calibration; below: examples per bin. The trend is Kendall's τ between size and ECE "
             "(negative: ECE falls), with its paired bootstrap CI.</p>"]
    many = sum(len(trend.members) for trend in trends) > 4
    for trend in trends:
        parts.append(figures_html(figures.of(trend)))
        parts.append(sentences_html([c.sentence for c in trend.members]))
        for calibration in trend.members:
            block = calibration.block
            title = f"{esc(block.task)} ({esc(block.setting)}), {esc(calibration.series.title)}"
            body = figures_html(figures.of(calibration)) + _table(calibration, inputs)
            parts.append(f"<details{'' if many else ' open'}><summary>{title}: reliability diagrams and table"
                         f"</summary>{body}</details>")
    return PageSection("axis-calibration", "Calibration", "\n".join(parts))


# --------------------------------------------------------------------------------------
# summary.md


def _trend_lines(trend: CalibrationTrend) -> list[str]:
    """A sentence per block, or for many blocks the count of each trend."""
    top, group = trend.members[0].block.top_task, trend.members[0].series.group
    trended = [c for c in trend.members if c.trend]
    single = [c for c in trend.members if not c.trend]
    lines = []
    if len(trended) <= BRIEF:
        lines.extend(f"- {c.sentence}" for c in trended)
    else:
        counts = ", ".join(f"{name} in {sum(c.trend == name for c in trended)}" for name in TRENDS
                           if any(c.trend == name for c in trended))
        lines.append(f"- {top}, {group}: calibration over size (Kendall τ of ECE, paired CI) {counts} "
                     f"of {len(trended)} subtask settings; each sentence and diagram is on the page.")
    if len(single) <= BRIEF:
        lines.extend(f"- {c.sentence}" for c in single)
    else:
        eces = [run.mean("expected_calibration_error") for c in single for run in c.series.runs]
        lines.append(f"- {top}, {group}: {len(single)} settings of one model each (no trend), ECE "
                     f"{format_value(min(eces))} to {format_value(max(eces))}; values on the full page.")
    return lines


def markdown(trends: Sequence[CalibrationTrend], figures: Figures, link_prefix: str) -> list[str]:
    if not trends:
        return []
    lines = ["", "## Calibration", ""]
    for trend in trends:
        lines.extend(_trend_lines(trend))
    shown = figures.of_any(trends)
    if shown:
        lines.append("")
    lines.extend(f"![{f.caption}]({link_prefix}{f.png})" for f in shown)
    return lines
