"""Plotting helpers every section's figures use (matplotlib, no pyplot, no global backend).

Colours: Okabe & Ito's colour-blind-safe palette, with a distinct marker per line. Error bars
are 95% CIs; a dashed grey line marks a metric's chance level. Metrics bounded in [0, 1] keep
that full range, so a change of 0.02 does not look like a jump. Size axes (parameters, FLOPs,
or held-out loss drawn as 1/bits per byte and labelled in bits per byte, lower to the right)
that span under two decades are ticked at every model's position; when saved, a tick label
that would overlap its neighbour moves to a second line (`stagger_x_labels`). Figures are
saved as PNG at 120 dpi and, on demand, SVG. Imported only when a report draws (sections
import it inside their `draw`).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter, FuncFormatter, MaxNLocator

from harness.emergence import Estimate, SeedBand
from harness.metrics import METRICS
from harness.report.axes import ScaleAxis
from harness.report.data import Run, Series, summary_value
from harness.report.text import human

OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")
CHANCE_COLOR = "0.4"
STYLE = {
    "font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "xtick.labelsize": 9,
    "ytick.labelsize": 9, "legend.fontsize": 9, "figure.titlesize": 12, "axes.grid": True,
    "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
    "svg.fonttype": "none", "svg.hashsalt": "harness-report",  # text stays text; stable ids
}
WIDTH_IN = 12.0
ROW_IN = 2.7
MIN_WIDTH_IN = 6.4
DPI = 120  # on screen at full width; the SVG beside each PNG is for print


def style_of(index: int) -> dict[str, object]:
    return {"color": OKABE_ITO[index % len(OKABE_ITO)], "marker": MARKERS[index % len(MARKERS)]}


def blues(n: int) -> list[tuple[float, ...]]:
    """n shades of one blue, light (fewest shots) to dark; never too pale to read on white."""
    cmap = matplotlib.colormaps["Blues"]
    return [cmap(v) for v in np.linspace(0.5, 1.0, n)] if n > 1 else [OKABE_ITO[0]]


def draw_estimates(ax, xs: Sequence[float], values: Sequence[Estimate], label: str, **style) -> bool:
    """One line with error bars through the points with a value; a single point is a marker.
    False when nothing was drawn."""
    points = [(x, v) for x, v in zip(xs, values) if not math.isnan(v.estimate)]
    if not points:
        return False
    x = np.array([p[0] for p in points], dtype=np.float64)
    y = np.array([p[1].estimate for p in points], dtype=np.float64)
    low = np.nan_to_num(np.clip(y - np.array([p[1].ci_low for p in points]), 0, None))
    high = np.nan_to_num(np.clip(np.array([p[1].ci_high for p in points]) - y, 0, None))
    style.setdefault("linestyle", "-")
    if len(points) == 1:
        style["linestyle"] = "none"
    ax.errorbar(x, y, yerr=[low, high], label=label, linewidth=1.6, markersize=5, capsize=2.5, elinewidth=1,
                **style)
    return True


def draw_series(ax, series: Series, metric: str, label: str | None = None, **style) -> bool:
    """A series' summary means and CIs of `metric` against its x."""
    return draw_estimates(ax, series.x, [summary_value(run, metric) for run in series.runs],
                          series.name if label is None else label, **style)


def draw_seed_band(ax, xs: Sequence[float], band: SeedBand, color: object) -> None:
    """The min-max band across training seeds behind a series' line (PolyPythias' seed spread):
    shaded between neighbouring points that both have seeds, a bar at every point that has."""
    measured = np.array(band.measured)
    ax.fill_between(xs, band.low, band.high, where=measured, interpolate=False, color=color,
                    alpha=0.2, linewidth=0, zorder=1)
    at = [i for i, m in enumerate(measured) if m]
    ax.vlines([xs[i] for i in at], [band.low[i] for i in at], [band.high[i] for i in at],
              color=color, alpha=0.45, linewidth=6, zorder=1)


def chance_level(runs: Sequence[Run], metric: str) -> float | None:
    values = [run.metrics.get(metric, {}).get("chance") for run in runs]
    values = [float(v) for v in values if v is not None]
    return float(np.median(values)) if values else None


def draw_chance(ax, runs: Sequence[Run], metric: str) -> bool:
    chance = chance_level(runs, metric)
    if chance is not None:
        ax.axhline(chance, linestyle="--", color=CHANCE_COLOR, linewidth=1.2, label="chance", zorder=1)
    return chance is not None


def set_x(ax, kind: str, xs: Sequence[float] = (), axis: ScaleAxis | None = None) -> None:
    """A log size axis (ticks at the models' positions when they span under two decades),
    labelled as `axis` prints its ticks (default: parameter counts; FLOPs; bits per byte, where
    x = 1/bpb puts lower loss to the right); `kind` "steps": symlog training steps (step 0 stays
    on the axis)."""
    if kind == "steps":
        ax.set_xscale("symlog", linthresh=1, linscale=0.5)
        last = max(xs, default=1.0)
        ax.set_xlim(-0.3, last * 1.35 if last >= 1 else last + 0.3)  # the last checkpoint off the edge
    else:
        ax.set_xscale("log")
        sizes = sorted({x for x in xs if x > 0})
        if sizes and math.log10(sizes[-1] / sizes[0]) < 2:
            ax.set_xticks(sizes)  # labels that would collide are staggered when saved (`stagger_x_labels`)
    tick = axis.tick if axis is not None and kind != "steps" else human
    ax.xaxis.set_major_formatter(FuncFormatter(tick))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, p: ""))


def set_y(ax, metric: str) -> None:
    low, high = METRICS[metric].value_range if metric in METRICS else (-math.inf, math.inf)
    if (low, high) == (0, 1):
        ax.set_ylim(-0.04, 1.04)
    ax.yaxis.set_major_locator(MaxNLocator(5))


def metric_title(metric: str) -> str:
    known = METRICS.get(metric)
    return metric if known is None or known.higher_is_better else f"{metric} (lower = better)"


def subtask_title(task: str) -> str:
    """'2-digit addition' for 'arithmetic/2_digit_addition', else the part after the slash."""
    sub = task.partition("/")[2] or task
    return sub.replace("_digit_", "-digit ").replace("_", " ")


def legend_entries(axes_grid, chance_drawn: bool) -> tuple[list, list[str]]:
    """Each label once, 'chance' last."""
    seen: dict[str, object] = {}
    for ax in np.ravel(axes_grid):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    labels = [label for label in seen if label != "chance"] + (["chance"] if chance_drawn and "chance" in seen
                                                                else [])
    return [seen[label] for label in labels], labels


def legend_below(fig: Figure, grid, chance_drawn: bool = False, max_cols: int = 5) -> None:
    handles, labels = legend_entries(grid, chance_drawn)
    if labels:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), max_cols),
                   frameon=False)


def width_for(n_cols: int, per_col: float = 3.4) -> float:
    """Figure width: `per_col` inches a panel, at least MIN_WIDTH_IN (room for title and legend)."""
    return max(MIN_WIDTH_IN, min(WIDTH_IN, per_col * n_cols + 0.8))


def wrapped_title(fig: Figure, text: str) -> None:
    """A title wrapped to the figure's width (about 10 characters an inch at 12 pt)."""
    fig.suptitle(textwrap.fill(text, int(fig.get_figwidth() * 10)))


def dodge(xs: Sequence[float], index: int, count: int, decades: float = 0.012) -> list[float]:
    """x shifted by a hair on the log axis so that lines at the same sizes do not hide each other."""
    factor = 10 ** (decades * (index - (count - 1) / 2))
    return [x * factor for x in xs]


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


def new_figure(width_in: float, height_in: float) -> Figure:
    return Figure(figsize=(width_in, height_in), layout="constrained")


class StaggeredFormatter(Formatter):
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


def _label_rows(ax, gap_px: float) -> dict[float, int]:
    """Tick location -> line of its label (0, 1; -1: blanked), greedily left to right."""
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
    return rows


def stagger_x_labels(fig: Figure, gap_px: float = 4.0) -> None:
    """Give x tick labels that would overlap a neighbour a second line; blank one that still would.

    Measured on the laid-out figure, so it holds for any panel width: two close sizes on a log
    axis ("595k" and "928k") print one above the other instead of on top of each other.
    """
    fig.draw_without_rendering()
    for ax in fig.axes:
        if not ax.get_visible() or not ax.xaxis.get_visible():
            continue
        rows = _label_rows(ax, gap_px)
        if any(row != 0 for row in rows.values()):
            ax.xaxis.set_major_formatter(StaggeredFormatter(ax.xaxis.get_major_formatter(), rows))


def save(fig: Figure, report_dir: Path, stem: str, svg: bool = False) -> None:
    """`<stem>.png` (120 dpi), and `<stem>.svg` for print when `svg`."""
    with matplotlib.rc_context(STYLE):
        stagger_x_labels(fig)
        fig.savefig(report_dir / f"{stem}.png", dpi=DPI, pil_kwargs={"optimize": True})
        if svg:
            fig.set_layout_engine("none")  # keep the positions just laid out: half the time for the SVG
            fig.savefig(report_dir / f"{stem}.svg", metadata={"Date": None})
