"""The report's figures (matplotlib, no pyplot, no global backend): PNG at 120 dpi and SVG.

Per (task, shots): every metric as a panel, one row per metric family, against parameters
(log axis, one line per family) and, for step series, against training step (symlog: step 0
stays on the axis; one line per size). Error bars are each summary's 95% CI; a dashed grey
line marks the metric's chance level. Metrics bounded in [0, 1] keep that full range, so a
change of 0.02 does not look like a jump. Per task with several subtasks (arithmetic), one
overview: exact match (left axis) against the target's log-prob (right axis) per subtask.
Colours: Okabe & Ito's colour-blind-safe palette, with a distinct marker per line. Size axes
that span under two decades are ticked at every model's size; when saved, a tick label that
would overlap its neighbour moves to a second line (`stagger_x_labels`), so close sizes
("595k", "928k") stay readable at any panel width.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter, FuncFormatter, MaxNLocator

from harness.emergence import SeedBand
from harness.metrics import METRICS
from harness.report.analysis import seed_view
from harness.report.data import PANELS, X_AXES, Block, FigureFile, Run, Series, XAxis, detail_blocks

if TYPE_CHECKING:
    from harness.report.figure_writer import FigureWriter
    from harness.report.headline import Headline

OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
CHANCE_COLOR = "0.4"
STYLE = {
    "font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "xtick.labelsize": 9,
    "ytick.labelsize": 9, "legend.fontsize": 9, "figure.titlesize": 12, "axes.grid": True,
    "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
    "svg.fonttype": "none", "svg.hashsalt": "harness-report",  # text stays text; stable ids
}
WIDTH_IN = 12.0
ROW_IN = 2.7
DPI = 120  # on screen at full width; the SVG beside each PNG is for print
OVERVIEW_METRICS = ("exact_str_match", "target_logprob")


def human(value: float, _position: object = None) -> str:
    """Parameter counts and steps as 5k, 16k, 1.4M, 12B."""
    if value == 0:
        return "0"
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def _style(index: int) -> dict[str, object]:
    return {"color": OKABE_ITO[index % len(OKABE_ITO)], "marker": MARKERS[index % len(MARKERS)]}


def _x_values(series: Series, axis: str, x_axis: XAxis) -> list[float]:
    if axis == "steps":
        return list(series.x)
    return [float(run.params(x_axis)) for run in series.runs]


def _ci(run: Run, metric: str) -> tuple[float, float]:
    entry = run.metrics.get(metric, {})
    low, high = entry.get("ci_low"), entry.get("ci_high")
    return (math.nan if low is None else float(low)), (math.nan if high is None else float(high))


def _draw_series(ax, series: Series, metric: str, axis: str, x_axis: XAxis, style: dict) -> bool:
    """One line with error bars; a single point is a marker. False when nothing was drawn."""
    points = [(x, run.mean(metric), *_ci(run, metric))
              for x, run in zip(_x_values(series, axis, x_axis), series.runs)]
    points = [p for p in points if not math.isnan(p[1])]
    if not points:
        return False
    xs, ys, lows, highs = (np.array(values, dtype=np.float64) for values in zip(*points))
    below = np.nan_to_num(np.clip(ys - lows, 0, None))
    above = np.nan_to_num(np.clip(highs - ys, 0, None))
    ax.errorbar(xs, ys, yerr=[below, above], label=series.name, linestyle="-" if len(xs) > 1 else "none",
                linewidth=1.6, markersize=5, capsize=2.5, elinewidth=1, **style)
    return True


def draw_seed_band(ax, xs: Sequence[float], band: SeedBand, color: object) -> None:
    """The min-max band across training seeds behind a series' line (PolyPythias' seed spread)."""
    ax.fill_between(xs, band.low, band.high, color=color, alpha=0.2, linewidth=0, zorder=1)


def _chance(runs: Sequence[Run], metric: str) -> float | None:
    values = [run.metrics.get(metric, {}).get("chance") for run in runs]
    values = [float(v) for v in values if v is not None]
    return float(np.median(values)) if values else None


def _set_x(ax, axis: str, xs: Sequence[float] = ()) -> None:
    """Log parameters (ticks at the models' sizes when they span under two decades), symlog steps."""
    if axis == "steps":
        ax.set_xscale("symlog", linthresh=1, linscale=0.5)
        last = max(xs, default=1.0)
        ax.set_xlim(-0.3, last * 1.35 if last >= 1 else last + 0.3)  # the last checkpoint off the edge
    else:
        ax.set_xscale("log")
        sizes = sorted({x for x in xs if x > 0})
        if sizes and math.log10(sizes[-1] / sizes[0]) < 2:
            ax.set_xticks(sizes)  # labels that would collide are staggered when saved (`stagger_x_labels`)
    ax.xaxis.set_major_formatter(FuncFormatter(human))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, p: ""))


def _set_y(ax, metric: str) -> None:
    low, high = METRICS[metric].value_range if metric in METRICS else (-math.inf, math.inf)
    if (low, high) == (0, 1):
        ax.set_ylim(-0.04, 1.04)
    ax.yaxis.set_major_locator(MaxNLocator(5))


def _title(metric: str) -> str:
    known = METRICS.get(metric)
    return metric if known is None or known.higher_is_better else f"{metric} (lower = better)"


def _panels(runs: Sequence[Run]) -> list[tuple[str, list[str]]]:
    """(family, metrics with data) per row, in PANELS order; empty families left out."""
    rows = []
    for family, names in PANELS.items():
        present = [name for name in names if any(not math.isnan(run.mean(name)) for run in runs)]
        if present:
            rows.append((family, present))
    return rows


def metric_figure(block: Block, series_list: Sequence[Series], axis: str, x_axis: XAxis) -> Figure | None:
    """Every panel metric of one block against parameters (`axis` "params") or steps ("steps")."""
    runs = [run for series in series_list for run in series.runs]
    rows = _panels(runs)
    if not rows or not series_list:
        return None
    n_cols = max(len(names) for _, names in rows)
    fig = Figure(figsize=(WIDTH_IN, ROW_IN * len(rows) + 0.9), layout="constrained")
    grid = fig.subplots(len(rows), n_cols, squeeze=False)
    chance_drawn = False
    all_x = [x for series in series_list for x in _x_values(series, axis, x_axis)]
    for (family, names), row in zip(rows, grid):
        for col, ax in enumerate(row):
            if col >= len(names):
                ax.set_visible(False)
                continue
            metric = names[col]
            for index, series in enumerate(series_list):
                view = seed_view(block, series)  # seed variants fold into one point and a band
                _draw_series(ax, view.series, metric, axis, x_axis, _style(index))
                band = view.band(metric)
                if band is not None:
                    draw_seed_band(ax, _x_values(view.series, axis, x_axis), band, _style(index)["color"])
            chance = _chance(runs, metric)
            if chance is not None:
                ax.axhline(chance, linestyle="--", color=CHANCE_COLOR, linewidth=1.2, label="chance",
                           zorder=1)
                chance_drawn = True
            _set_x(ax, axis, all_x)
            _set_y(ax, metric)
            ax.set_title(_title(metric))
            if col == 0:
                ax.set_ylabel(family)
    for ax in grid[-1]:
        ax.set_xlabel("training step" if axis == "steps" else X_AXES[x_axis])
    handles, labels = _legend_entries(grid, chance_drawn)
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 6), frameon=False)
    against = "training step" if axis == "steps" else X_AXES[x_axis]
    fig.suptitle(f"{block.task} ({block.setting}): every metric against {against}")
    return fig


HEADLINE_WIDTH_IN = 2.4  # per panel: two headlines of three panels fit side by side


def headline_figure(block: Block, series: Series, metrics: Sequence[str], x_axis: XAxis) -> Figure | None:
    """The decisive figure of a task: one panel per metric family, side by side, CIs and chance."""
    if not metrics:
        return None
    axis = "steps" if series.kind == "step" else "params"
    fig = Figure(figsize=(HEADLINE_WIDTH_IN * len(metrics), 2.3), layout="constrained")
    grid = fig.subplots(1, len(metrics), squeeze=False)[0]
    xs = _x_values(series, axis, x_axis)
    for ax, metric in zip(grid, metrics):
        _draw_series(ax, series, metric, axis, x_axis, _style(0))
        chance = _chance(series.runs, metric)
        if chance is not None:
            ax.axhline(chance, linestyle="--", color=CHANCE_COLOR, linewidth=1.2, zorder=1)
        _set_x(ax, axis, xs)
        _set_y(ax, metric)
        ax.set_title(_title(metric))
        ax.set_xlabel("training step" if axis == "steps" else X_AXES[x_axis])
    fig.suptitle(f"{series.title}" + ("; dashed: chance" if any(
        _chance(series.runs, m) is not None for m in metrics) else ""), fontsize=9)
    return fig


def _legend_entries(axes_grid, chance_drawn: bool) -> tuple[list, list[str]]:
    """Each label once, 'chance' last."""
    seen: dict[str, object] = {}
    for ax in np.ravel(axes_grid):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    labels = [label for label in seen if label != "chance"] + (["chance"] if chance_drawn and "chance" in seen
                                                                else [])
    return [seen[label] for label in labels], labels


def _subtask_title(task: str) -> str:
    """'2-digit addition' for 'arithmetic/2_digit_addition', else the part after the slash."""
    sub = task.partition("/")[2] or task
    return sub.replace("_digit_", "-digit ").replace("_", " ")


def small_multiples(n_cells: int, width_in: float = WIDTH_IN, max_cols: int = 5
                    ) -> tuple[Figure, np.ndarray, int]:
    """A figure of `n_cells` panels, at most `max_cols` a row, spare panels hidden: (fig, grid, n_cols)."""
    n_cols = min(max_cols, n_cells)
    n_rows = math.ceil(n_cells / n_cols)
    fig = Figure(figsize=(width_in, 2.5 * n_rows + 1.1), layout="constrained")
    grid = fig.subplots(n_rows, n_cols, squeeze=False)
    for ax in grid.ravel()[n_cells:]:
        ax.set_visible(False)
    return fig, grid, n_cols


def overview_figure(blocks: Sequence[Block], axis: str, x_axis: XAxis) -> Figure | None:
    """Exact match (left axis, [0, 1]) and target log-prob (right axis) for each subtask of a task.

    Against parameters: each group's size series; against steps: the step series of each
    group's largest model. Nothing to draw (no series of two points): None.
    """
    cells = []
    for block in blocks:
        if axis == "steps":
            largest: dict[str, Series] = {}
            for series in block.step_series:  # ordered by size within a group: keep the last
                largest[series.group] = series
            chosen = list(largest.values())
        else:
            chosen = [series for series in block.size_series if len(series.runs) > 1]
        if chosen and all(any(not math.isnan(run.mean(m)) for s in chosen for run in s.runs)
                          for m in OVERVIEW_METRICS):
            cells.append((block, chosen))
    if len(cells) < 2:
        return None
    fig, grid, n_cols = small_multiples(len(cells))
    left_metric, right_metric = OVERVIEW_METRICS
    colors = {left_metric: OKABE_ITO[0], right_metric: OKABE_ITO[1]}
    handles: dict[str, object] = {}
    for cell, (ax, (block, chosen)) in enumerate(zip(grid.ravel(), cells)):
        right = ax.twinx()
        for index, series in enumerate(chosen):
            for metric, target_ax, line in ((left_metric, ax, "-"), (right_metric, right, "--")):
                marker = MARKERS[(2 * index + (target_ax is right)) % len(MARKERS)]
                xs = _x_values(series, axis, x_axis)
                ys = [run.mean(metric) for run in series.runs]
                (drawn,) = target_ax.plot(xs, ys, linestyle=line, marker=marker, color=colors[metric],
                                          linewidth=1.6, markersize=4.5)
                side = "left" if target_ax is ax else "right"
                handles.setdefault(f"{metric} ({side} axis), {series.name}", drawn)
        _set_x(ax, axis, [x for series in chosen for x in _x_values(series, axis, x_axis)])
        ax.set_ylim(-0.04, 1.04)
        ax.tick_params(axis="y", colors=colors[left_metric])
        right.tick_params(axis="y", colors=colors[right_metric])
        right.yaxis.set_major_locator(MaxNLocator(4))
        right.spines["right"].set_visible(True)
        right.grid(False)
        ax.set_title(_subtask_title(block.task))
        if cell % n_cols == 0:
            ax.set_ylabel(left_metric, color=colors[left_metric])
        if cell % n_cols == n_cols - 1 or cell == len(cells) - 1:
            right.set_ylabel(right_metric, color=colors[right_metric])
        if cell >= len(cells) - n_cols:
            ax.set_xlabel("training step" if axis == "steps" else X_AXES[x_axis])
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=min(len(handles), 4),
               frameon=False)
    first = blocks[0]
    against = "training step" if axis == "steps" else X_AXES[x_axis]
    fig.suptitle(f"{first.top_task} ({first.setting}): exact match vs log-likelihood of the target, "
                 f"per subtask, against {against}")
    return fig


class _Staggered(Formatter):
    """Another formatter's labels, some moved to a second line ("\\n595k") and some blanked."""

    def __init__(self, inner: Formatter, rows: dict[float, int]) -> None:
        self.inner, self.rows = inner, rows

    def _place(self, value: float, text: str) -> str:
        row = next((r for v, r in self.rows.items() if math.isclose(v, value, rel_tol=1e-9, abs_tol=1e-12)),
                   0)
        return "" if row < 0 else "\n" * row + text

    def __call__(self, value, pos=None) -> str:
        return self._place(value, self.inner(value, pos))

    def format_ticks(self, values) -> list[str]:
        return [self._place(v, text) for v, text in zip(values, self.inner.format_ticks(values))]

    def set_locs(self, locs) -> None:
        self.inner.set_locs(locs)

    def get_offset(self) -> str:
        return self.inner.get_offset()


def stagger_x_labels(fig: Figure, gap_px: float = 4.0) -> None:
    """Give x tick labels that would overlap a neighbour a second line; blank one that still would.

    Measured on the laid-out figure, so it holds for any panel width: two close sizes on a log
    axis ("595k" and "928k") print one above the other instead of on top of each other.
    """
    fig.draw_without_rendering()
    for ax in fig.axes:
        if not ax.get_visible() or not ax.xaxis.get_visible():
            continue
        locs = list(ax.xaxis.get_majorticklocs())
        left, right = ax.get_window_extent().intervalx
        placed = []
        for loc, tick in zip(locs, ax.xaxis.get_major_ticks(len(locs))):
            label = tick.label1
            x_px = ax.transData.transform((loc, 0))[0]
            if label.get_visible() and label.get_text() and left - 1 <= x_px <= right + 1:
                start, end = label.get_window_extent().intervalx
                placed.append((float(start), float(end), float(loc)))
        ends = [-math.inf, -math.inf]  # right edge of the last label on each line
        rows: dict[float, int] = {}
        for start, end, loc in sorted(placed):
            row = next((r for r, last in enumerate(ends) if start >= last + gap_px), -1)
            rows[loc] = row
            if row >= 0:
                ends[row] = end
        if any(row != 0 for row in rows.values()):
            ax.xaxis.set_major_formatter(_Staggered(ax.xaxis.get_major_formatter(), rows))


def save(fig: Figure, report_dir: Path, stem: str, svg: bool = False) -> None:
    """`<stem>.png` (120 dpi), and `<stem>.svg` for print when `svg`."""
    with matplotlib.rc_context(STYLE):
        stagger_x_labels(fig)
        fig.savefig(report_dir / f"{stem}.png", dpi=DPI, pil_kwargs={"optimize": True})
        if svg:
            fig.set_layout_engine("none")  # keep the positions just laid out: half the time for the SVG
            fig.savefig(report_dir / f"{stem}.svg", metadata={"Date": None})


def write_headline_figures(headlines: Sequence[Headline], writer: FigureWriter,
                           x_axis: XAxis) -> list[FigureFile]:
    """The decisive figure of every task (`harness.report.headline`), in page order."""
    written = []
    for item in headlines:
        stem = f"fig-headline-{item.block.slug}"
        if writer.write(stem, headline_figure, item.block, item.series, item.metrics, x_axis):
            written.append(FigureFile(stem, "steps" if item.series.kind == "step" else "params",
                                      f"{item.task}: {', '.join(item.metrics)} against scale, 95% CIs",
                                      section="headline", key=item.task))
    return written


def write_figures(blocks: Sequence[Block], writer: FigureWriter, x_axis: XAxis) -> list[FigureFile]:
    """Every figure of the report, written by `writer`; what was written, in page order."""
    written: list[FigureFile] = []
    detail = detail_blocks(blocks)
    with matplotlib.rc_context(STYLE):
        by_top: dict[tuple[str, int, str], list[Block]] = {}
        for block in blocks:
            by_top.setdefault((block.top_task, block.shots, block.demo_labels), []).append(block)
        for (top, shots, labels), members in by_top.items():
            key = f"{top}-shots{shots}" + ("" if labels == "true" else f"-{labels}")
            for axis in ("params", "steps"):
                stem = f"fig-overview-{key}-{axis}"
                if writer.write(stem, overview_figure, members, axis, x_axis):
                    what = "parameters" if axis == "params" else "training step"
                    written.append(FigureFile(stem, axis, f"{top} ({members[0].setting}): exact match and "
                                              f"target log-prob per subtask against {what}",
                                              overview_of=key))
            for block in members:
                if block.slug in detail:
                    written.extend(_block_figures(block, writer, x_axis))
    return written


def _block_figures(block: Block, writer: FigureWriter, x_axis: XAxis) -> list[FigureFile]:
    written = []
    if any(len(series.runs) > 1 for series in block.size_series):
        stem = f"fig-{block.slug}-params"
        if writer.write(stem, metric_figure, block, block.size_series, "params", x_axis):
            written.append(FigureFile(stem, "params", f"{block.task} ({block.setting}) against "
                                      f"{X_AXES[x_axis]}", block_slug=block.slug))
    if block.step_series:
        stem = f"fig-{block.slug}-steps"
        if writer.write(stem, metric_figure, block, block.step_series, "steps", x_axis):
            written.append(FigureFile(stem, "steps", f"{block.task} ({block.setting}) against training step",
                                      block_slug=block.slug))
    return written
