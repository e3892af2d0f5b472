"""Figures of the axes beyond size and metric (harness.report.axes, .compare): PNG and SVG.

* shots: per task and group, the key metrics against size, one line per shot count (shades of
  one blue, a marker and dash per count), and below them the paired few-shot gain with its CI;
  an overview of exact match per subtask when a task has several;
* calibration: per block, a reliability diagram per model (accuracy per confidence bin as bars,
  the bin's mean confidence as a point, the diagonal, and the count per bin in a small bar panel
  below), and per task ECE and Brier against size with CIs, one panel per subtask;
* scratchpad: exact match and final-answer log-prob, direct vs scratchpad, against size and
  against step for the largest size;
* relabelled demonstrations: the share that follows the relabelled demonstrations against size,
  one line per label mode, beside accuracy (true labels solid, relabelled dashed).
Error bars are the summaries' 95% CIs (the gains': paired bootstrap over examples).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from harness.emergence import Estimate
from harness.report.axes import CalibrationBlock, ReliabilityPanel, ShotsComparison, summary_value
from harness.report.compare import (
    EM_THRESHOLD,
    FOLLOW_METRICS,
    AxesReport,
    RelabelComparison,
    ScratchpadComparison,
)
from harness.report.data import X_AXES, FigureFile, Series, XAxis
from harness.report.figures import (
    CHANCE_COLOR,
    MARKERS,
    OKABE_ITO,
    ROW_IN,
    STYLE,
    WIDTH_IN,
    _chance,
    _legend_entries,
    _set_x,
    _set_y,
    _subtask_title,
    _title,
    small_multiples,
)
from harness.report.html import format_value

if TYPE_CHECKING:
    from harness.report.figure_writer import FigureWriter

LINESTYLES = ("-", "--", "-.", ":")
MODE_COLORS = {"true": OKABE_ITO[0], "flipped": OKABE_ITO[1], "unrelated": OKABE_ITO[2]}
DIRECT, SCRATCH = OKABE_ITO[0], OKABE_ITO[4]
MAX_COLS = 6
MIN_WIDTH_IN = 6.4


def _blues(n: int) -> list[tuple[float, ...]]:
    """n shades of one blue, light (fewest shots) to dark; never too pale to read on white."""
    cmap = matplotlib.colormaps["Blues"]
    return [cmap(v) for v in np.linspace(0.5, 1.0, n)] if n > 1 else [OKABE_ITO[0]]


def _line(ax, xs: Sequence[float], values: Sequence[Estimate], label: str, **style) -> None:
    points = [(x, v) for x, v in zip(xs, values) if not math.isnan(v.estimate)]
    if not points:
        return
    x = np.array([p[0] for p in points])
    y = np.array([p[1].estimate for p in points])
    low = np.nan_to_num(np.clip(y - np.array([p[1].ci_low for p in points]), 0, None))
    high = np.nan_to_num(np.clip(np.array([p[1].ci_high for p in points]) - y, 0, None))
    style.setdefault("linestyle", "-")
    if len(points) == 1:
        style["linestyle"] = "none"
    ax.errorbar(x, y, yerr=[low, high], label=label, linewidth=1.6, markersize=5, capsize=2.5, elinewidth=1,
                **style)


def _series_line(ax, series: Series, metric: str, label: str, **style) -> None:
    _line(ax, series.x, [summary_value(run, metric) for run in series.runs], label, **style)


def _legend(fig: Figure, grid, chance_drawn: bool = False) -> None:
    handles, labels = _legend_entries(grid, chance_drawn)
    if labels:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 5), frameon=False)


def _width(n_cols: int, per_col: float = 3.4) -> float:
    """Figure width: `per_col` inches a panel, at least MIN_WIDTH_IN (room for title and legend)."""
    return max(MIN_WIDTH_IN, min(WIDTH_IN, per_col * n_cols + 0.8))


def _suptitle(fig: Figure, text: str) -> None:
    """A title wrapped to the figure's width (about 10 characters an inch at 12 pt)."""
    fig.suptitle(textwrap.fill(text, int(fig.get_figwidth() * 10)))


def _dodge(xs: Sequence[float], index: int, count: int, decades: float = 0.012) -> list[float]:
    """x shifted by a hair on the log axis so that lines at the same sizes do not hide each other."""
    factor = 10 ** (decades * (index - (count - 1) / 2))
    return [x * factor for x in xs]


# --------------------------------------------------------------------------------------
# Shots


def shots_figure(comparison: ShotsComparison, x_axis: XAxis) -> Figure | None:
    metrics = comparison.metrics
    if not metrics:
        return None
    colors = _blues(len(comparison.series))
    fig = Figure(figsize=(_width(len(metrics)), 2 * ROW_IN + 1.2), layout="constrained")
    grid = fig.subplots(2, len(metrics), squeeze=False, sharex="col")
    runs = [run for series in comparison.series for run in series.runs]
    count = len(comparison.series)
    chance_drawn = False
    for col, metric in enumerate(metrics):
        top, bottom = grid[0][col], grid[1][col]
        for index, series in enumerate(comparison.series):
            style = {"color": colors[index], "marker": MARKERS[index % len(MARKERS)],
                     "linestyle": LINESTYLES[index % len(LINESTYLES)]}
            shots = series.runs[0].shots
            _line(top, _dodge(series.x, index, count), [summary_value(run, metric) for run in series.runs],
                  f"{shots}-shot", **style)
            for gains in comparison.gains:
                if gains.metric == metric and gains.shots == shots:
                    values = [g.gain for g in gains.gains]
                    _line(bottom, _dodge(gains.x, index, count), values, f"{shots}-shot", **style)
        chance = _chance(runs, metric)
        if chance is not None:
            top.axhline(chance, linestyle="--", color=CHANCE_COLOR, linewidth=1.2, label="chance", zorder=1)
            chance_drawn = True
        bottom.axhline(0, color=CHANCE_COLOR, linewidth=1, zorder=1)
        xs = [x for series in comparison.series for x in series.x]
        for ax in (top, bottom):
            _set_x(ax, "params", xs)
        _set_y(top, metric)
        bottom.yaxis.set_major_locator(MaxNLocator(5))
        top.set_title(_title(metric))
        bottom.set_title(f"gain in {metric}")
        bottom.set_xlabel(X_AXES[x_axis])
    grid[0][0].set_ylabel("metric")
    grid[1][0].set_ylabel(f"k-shot − {comparison.shots[0]}-shot")
    _legend(fig, grid, chance_drawn)
    _suptitle(fig, f"{comparison.task}, {comparison.group}: shot counts against {X_AXES[x_axis]} "
              "(bottom: paired gain per model, 95% CI)")
    return fig


def shots_overview(comparisons: Sequence[ShotsComparison], x_axis: XAxis, metric: str = "exact_str_match"
                   ) -> Figure | None:
    """`metric` per subtask (one panel each), a line per shot count: a task with several subtasks."""
    cells = [c for c in comparisons if metric in c.metrics]
    if len(cells) < 2:
        return None
    fig, grid, n_cols = small_multiples(len(cells))
    for cell, (ax, comparison) in enumerate(zip(grid.ravel(), cells)):
        colors = _blues(len(comparison.series))
        count = len(comparison.series)
        for index, series in enumerate(comparison.series):
            _line(ax, _dodge(series.x, index, count), [summary_value(run, metric) for run in series.runs],
                  f"{series.runs[0].shots}-shot", color=colors[index], marker=MARKERS[index % len(MARKERS)],
                  linestyle=LINESTYLES[index % len(LINESTYLES)])
        _set_x(ax, "params", [x for series in comparison.series for x in series.x])
        _set_y(ax, metric)
        ax.set_title(_subtask_title(comparison.task))
        if cell % n_cols == 0:
            ax.set_ylabel(metric)
        if cell >= len(cells) - n_cols:
            ax.set_xlabel(X_AXES[x_axis])
    _legend(fig, grid)
    _suptitle(fig, f"{cells[0].task.split('/')[0]}, {cells[0].group}: {metric} per subtask and shot count "
              f"against {X_AXES[x_axis]}")
    return fig


# --------------------------------------------------------------------------------------
# Calibration


def _reliability(ax, counts_ax, panel: ReliabilityPanel) -> None:
    width = panel.bins[0].hi - panel.bins[0].lo
    centres = [(b.lo + b.hi) / 2 for b in panel.bins]
    used = [b for b in panel.bins if b.count]  # an empty bin has no accuracy: no bar
    ax.bar([(b.lo + b.hi) / 2 for b in used], [b.accuracy for b in used], width=width * 0.92,
           color=OKABE_ITO[5], edgecolor=OKABE_ITO[0], linewidth=0.6, label="accuracy per bin")
    ax.plot([b.mean_confidence for b in used], [b.accuracy for b in used], linestyle="none", marker="o",
            markersize=4, color=OKABE_ITO[1], label="(mean confidence, accuracy)")
    ax.plot([0, 1], [0, 1], linestyle="--", color=CHANCE_COLOR, linewidth=1.1, label="perfect calibration")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.03, 1.05)
    ax.xaxis.set_major_locator(MaxNLocator(3))
    ax.yaxis.set_major_locator(MaxNLocator(3))
    ax.tick_params(labelbottom=False)
    ece = panel.run.mean("expected_calibration_error")
    ax.set_title(f"{panel.run.label}\nn = {panel.n}, ECE = {format_value(ece)}", fontsize=9)
    counts_ax.bar(centres, [b.count for b in panel.bins], width=width * 0.92, color="0.45")
    counts_ax.set_xlim(-0.02, 1.02)
    counts_ax.xaxis.set_major_locator(MaxNLocator(3))
    counts_ax.yaxis.set_major_locator(MaxNLocator(2, integer=True))
    counts_ax.set_xlabel("confidence")


def reliability_figure(calibration: CalibrationBlock) -> Figure | None:
    panels = calibration.panels
    if not panels:
        return None
    n_cols = min(MAX_COLS, len(panels))
    n_pairs = math.ceil(len(panels) / n_cols)
    fig = Figure(figsize=(_width(n_cols, 2.3), 3.4 * n_pairs + 0.9), layout="constrained")
    grid = fig.subplots(2 * n_pairs, n_cols, squeeze=False, gridspec_kw={"height_ratios": [3, 1] * n_pairs})
    for index in range(n_pairs * n_cols):
        pair, col = divmod(index, n_cols)
        ax, counts_ax = grid[2 * pair][col], grid[2 * pair + 1][col]
        if index >= len(panels):
            ax.set_visible(False)
            counts_ax.set_visible(False)
            continue
        _reliability(ax, counts_ax, panels[index])
        if col == 0:
            ax.set_ylabel("accuracy")
            counts_ax.set_ylabel("count")
    _legend(fig, grid)
    block = calibration.block
    _suptitle(fig, f"{block.task} ({block.setting}), {calibration.series.title}: reliability diagrams "
              "(15 bins of max choice probability), models by size")
    return fig


def calibration_trend_figure(calibrations: Sequence[CalibrationBlock], x_axis: XAxis) -> Figure | None:
    """ECE and Brier with CIs against size, one panel per block (subtask)."""
    cells = [c for c in calibrations if len(c.series.runs) > 1]
    if not cells:
        return None
    fig, grid, n_cols = small_multiples(len(cells), _width(min(5, len(cells)), 2.6))
    for cell, (ax, calibration) in enumerate(zip(grid.ravel(), cells)):
        series = calibration.series
        ece, brier = "expected_calibration_error", "brier_score"
        _series_line(ax, series, ece, ece, color=OKABE_ITO[0], marker="o")
        _series_line(ax, series, brier, brier, color=OKABE_ITO[1], marker="s", linestyle="--")
        _set_x(ax, "params", series.x)
        _set_y(ax, "brier_score")
        block = calibration.block
        ax.set_title(f"{_subtask_title(block.task) if len(cells) > 1 else block.task}, {block.setting}",
                     fontsize=9)
        if cell % n_cols == 0:
            ax.set_ylabel("lower = better")
        if cell >= len(cells) - n_cols:
            ax.set_xlabel(X_AXES[x_axis])
    _legend(fig, grid)
    first = cells[0]
    _suptitle(fig, f"{first.block.top_task}, {first.series.group}: ECE and Brier against {X_AXES[x_axis]}, "
              "per subtask and setting")
    return fig


# --------------------------------------------------------------------------------------
# Scratchpad vs direct, relabelled demonstrations


def scratchpad_figure(comparison: ScratchpadComparison, x_axis: XAxis) -> Figure:
    rows = [("params", comparison.direct, comparison.scratchpad)]
    if comparison.direct_steps is not None and comparison.scratchpad_steps is not None:
        rows.append(("steps", comparison.direct_steps, comparison.scratchpad_steps))
    fig = Figure(figsize=(_width(2, 4.4), ROW_IN * len(rows) + 1.1), layout="constrained")
    grid = fig.subplots(len(rows), 2, squeeze=False)
    for (axis, direct, scratch), row in zip(rows, grid):
        for ax, metric in zip(row, ("exact_str_match", "target_logprob")):
            _series_line(ax, direct, metric, "direct", color=DIRECT, marker="o")
            _series_line(ax, scratch, metric, "scratchpad", color=SCRATCH, marker="s", linestyle="--")
            if metric == "exact_str_match":
                ax.axhline(EM_THRESHOLD, linestyle=":", color=CHANCE_COLOR, linewidth=1.1,
                           label=f"{EM_THRESHOLD:g} (where the jump is read)")
            _set_x(ax, axis, [*direct.x, *scratch.x])
            _set_y(ax, metric)
            where = "sizes" if axis == "params" else f"steps of {direct.runs[0].model}"
            ax.set_title(f"{_title(metric)}, {where}")
            ax.set_xlabel(X_AXES[x_axis] if axis == "params" else "training step")
    _legend(fig, grid)
    _suptitle(fig, f"{comparison.task} ({comparison.setting}): direct ({comparison.direct.group}) vs "
              f"scratchpad ({comparison.scratchpad.group})")
    return fig


def relabel_figure(comparison: RelabelComparison, x_axis: XAxis) -> Figure:
    metrics = comparison.follow_metrics
    fig = Figure(figsize=(_width(2, 4.4), ROW_IN * len(metrics) + 1.1), layout="constrained")
    grid = fig.subplots(len(metrics), 2, squeeze=False)
    for metric, (left, right) in zip(metrics, grid):
        accuracy = FOLLOW_METRICS[metric]
        xs = []
        for index, (mode, series) in enumerate(comparison.series):
            style = {"color": MODE_COLORS.get(mode, OKABE_ITO[index]),
                     "marker": MARKERS[index % len(MARKERS)]}
            xs.extend(series.x)
            if mode != "true":
                _series_line(left, series, metric, f"{mode} labels", **style)
            _series_line(right, series, accuracy, f"{mode} labels", linestyle="-" if mode == "true" else "--",
                         **style)
        for ax, name in ((left, metric), (right, accuracy)):
            _set_x(ax, "params", xs)
            _set_y(ax, name)
            ax.set_xlabel(X_AXES[x_axis])
        left.set_title(f"{metric}: follows the relabelled demonstrations")
        right.set_title(f"{accuracy} (accuracy), {comparison.shots}-shot")
    _legend(fig, grid)
    _suptitle(fig, f"{comparison.task} ({comparison.shots}-shot), {comparison.group}: relabelled "
              "demonstrations")
    return fig


# --------------------------------------------------------------------------------------


def _write(writer: FigureWriter, stem: str, caption: str, section: str, key: str,
           written: list[FigureFile], draw: Callable[..., Figure | None], *args: Any) -> None:
    if writer.write(stem, draw, *args):
        written.append(FigureFile(stem, "params", caption, section=section, key=key))


def write_axes_figures(axes: AxesReport, writer: FigureWriter, x_axis: XAxis,
                       detail: set[str] | None = None) -> list[FigureFile]:
    """Every axis figure, written by `writer`; what was written, in page order.

    `detail` (block slugs, `data.detail_blocks`): reliability diagrams are drawn for these
    blocks only (None: all); a model alone in its group gets its shot counts in the task's
    overview, not a figure per subtask.
    """
    written: list[FigureFile] = []
    with matplotlib.rc_context(STYLE):
        by_top: dict[str, list[ShotsComparison]] = {}
        for comparison in axes.shots:
            by_top.setdefault(comparison.overview_key, []).append(comparison)
        for key, members in by_top.items():
            top, group = members[0].task.split("/")[0].split("@")[0], members[0].group
            _write(writer, f"fig-shots-overview-{key}",
                   f"{top}, {group}: exact match per subtask, one line per shot count", "shots", key, written,
                   shots_overview, members, x_axis)
            for comparison in members:
                if len(members) > 1 and max(len(series.runs) for series in comparison.series) < 2:
                    continue
                _write(writer, f"fig-shots-{comparison.slug}",
                       f"{comparison.task}, {comparison.group}: metrics and paired few-shot gains against "
                       "size",
                       "shots", comparison.slug, written, shots_figure, comparison, x_axis)
        trends: dict[str, list[CalibrationBlock]] = {}
        for calibration in axes.calibration:
            trends.setdefault(calibration.trend_key, []).append(calibration)
        for key, members in trends.items():
            first = members[0]
            what = f"{first.block.top_task}, {first.series.group}"
            _write(writer, f"fig-calibration-{key}",
                   f"{what}: ECE and Brier score against size, per subtask and setting", "calibration", key,
                   written, calibration_trend_figure, members, x_axis)
            for calibration in members:
                if detail is not None and calibration.block.slug not in detail:
                    continue
                _write(writer, f"fig-reliability-{calibration.slug}",
                       f"{calibration.block.task} ({calibration.block.setting}), {calibration.series.group}: "
                       "reliability diagram per model", "calibration", calibration.slug, written,
                       reliability_figure, calibration)
        for comparison in axes.scratchpad:
            _write(writer, f"fig-scratchpad-{comparison.slug}",
                   f"{comparison.task} ({comparison.setting}): direct vs scratchpad", "scratchpad",
                   comparison.slug, written, scratchpad_figure, comparison, x_axis)
        for comparison in axes.relabel:
            _write(writer, f"fig-relabel-{comparison.slug}",
                   f"{comparison.task} ({comparison.shots}-shot), {comparison.group}: relabelled "
                   "demonstrations",
                   "relabel", comparison.slug, written, relabel_figure, comparison, x_axis)
    return written

