"""Every metric side by side: what each task shows under each family of metrics, per size series.

Gathered: per task, shot count (true demonstration labels) and group with two or more models in
its size series, one row per model (in the series' order along the x axis) with the summary mean
of each side-by-side metric: the exact-match variants (BIG-bench's `exact_str_match`, the
stripped `exact_match_raw`, `case_insensitive_str_match`), multiple choice, the target's
log-prob, partial credit and the share of generations the task's regex finds no answer in. A
task whose subtasks are integer problems (arithmetic) is one unit: each metric is the mean over
the subtasks every model of the series ran, unweighted, and the table says how many. One
sentence per unit says in numbers how each metric moves from the first model to the last.

Drawn: per unit, one panel per metric against the report's x axis and, below, against held-out
bits per byte when two or more of its models have one on the same text (lower loss to the
right), so a cross-family series reads against loss as well as size.

Every number is a summary's mean (no re-scoring); the per-subtask values, CIs and verdicts are
in the task settings above.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from harness.report.analysis import is_arithmetic_like
from harness.report.axes import ScaleAxis, scale_axis
from harness.report.data import Block, Run, Series, loss_text, slugify
from harness.report.html import figures_html, sentences_html, table
from harness.report.section import Drawn, FigureFile, Figures, Inputs, PageSection
from harness.report.text import esc, format_count, format_value

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from harness.report.figure_writer import FigureWriter

# The metrics side by side, in column order: exact match (three ways), multiple choice,
# log-likelihood, partial credit, the answer regex.
SIDE_METRICS = ("exact_str_match", "exact_match_raw", "case_insensitive_str_match",
                "multiple_choice_grade", "target_logprob", "digit_accuracy", "answer_no_match")


@dataclass(frozen=True)
class Row:
    """One model of a size series: its metric means over the unit's runs (one, or a subtask each)."""

    run: Run  # the first of its runs: model, parameters, held-out loss
    n: int  # examples, summed over the unit's runs
    values: tuple[float, ...]  # per `SideBySide.metrics`, NaN where the runs have none


@dataclass(frozen=True)
class SideBySide:
    """One task (or a task's subtasks as one unit), shot count and group: every model, every metric."""

    unit: str  # "emoji_movie", "periodic_elements/subtask_0", "arithmetic"
    subtasks: tuple[str, ...]  # the tasks averaged over (one: the unit itself)
    shots: int
    group: str
    metrics: tuple[str, ...]
    rows: tuple[Row, ...]
    axis: ScaleAxis  # what orders the rows
    sentence: str

    @property
    def title(self) -> str:
        over = f" (mean over {len(self.subtasks)} subtasks)" if len(self.subtasks) > 1 else ""
        return f"{self.unit}{over}, {self.shots}-shot, {self.group}"

    @property
    def slug(self) -> str:
        return f"side-{slugify(self.unit)}-shots{self.shots}-{slugify(self.group)}"

    def column(self, metric: str) -> list[float]:
        index = self.metrics.index(metric)
        return [row.values[index] for row in self.rows]


def _unit(block: Block) -> str:
    """The task itself, or its top task when its subtasks are integer problems (one unit)."""
    return block.top_task if is_arithmetic_like(block) and block.task != block.top_task else block.task


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if len(finite) == len(values) and finite else math.nan


def _movement(metric: str, values: Sequence[float]) -> str | None:
    """'exact_str_match 0.020 → 0.010 (0.000 to 0.020)'; None without values."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return None
    ends = f"{format_value(values[0])} → {format_value(values[-1])}"
    low, high = min(finite), max(finite)
    inside = {low, high} <= {values[0], values[-1]}
    spread = "" if inside else f" ({format_value(low)} to {format_value(high)})"
    return f"{metric} {ends}{spread}"


def _sentence(item: SideBySide) -> str:
    first, last = item.rows[0].run, item.rows[-1].run
    moves = [m for m in (_movement(metric, item.column(metric)) for metric in item.metrics) if m]
    return (f"{item.title}, {len(item.rows)} models from {first.label} to {last.label} by "
            f"{item.axis.label}: " + "; ".join(moves) + ".")


def _side(unit: str, shots: int, group: str, members: Sequence[tuple[Block, Series]],
          axis: ScaleAxis) -> SideBySide | None:
    """The unit's table over the subtasks that every model ran; while no subtask has every model,
    the model that ran the fewest subtasks is left out (it shows in its subtasks' own settings)."""
    by_task = {block.task: {run.model: run for run in series.runs} for block, series in members}
    runs_of = {model: run for runs in by_task.values() for model, run in runs.items()}
    models = sorted(runs_of, key=lambda m: (axis.x(runs_of[m]) or 0.0, m))  # the series' order
    while models and not any(all(m in runs for m in models) for runs in by_task.values()):
        models.remove(min(models, key=lambda m: (sum(m in runs for runs in by_task.values()), m)))
    by_task = {task: runs for task, runs in by_task.items() if all(m in runs for m in models)}
    if len(models) < 2:
        return None
    present = {name for runs in by_task.values() for run in runs.values()
               for name, entry in run.metrics.items() if entry.get("mean") is not None}
    metrics = tuple(m for m in SIDE_METRICS if m in present)
    if not metrics:
        return None
    rows = []
    for model in models:
        runs = [by_task[task][model] for task in by_task]
        rows.append(Row(runs[0], sum(run.n for run in runs),
                        tuple(_mean([run.mean(metric) for run in runs]) for metric in metrics)))
    item = SideBySide(unit, tuple(by_task), shots, group, metrics, tuple(rows), axis, "")
    return replace(item, sentence=_sentence(item))


def gather(inputs: Inputs) -> tuple[SideBySide, ...]:
    """One table per (unit, shots, group) with two or more models, in the page's task order."""
    units: dict[tuple[str, int, str], list[tuple[Block, Series]]] = {}
    for block in inputs.blocks:
        if block.demo_labels != "true":
            continue
        for series in block.size_series:
            if len(series.runs) >= 2:
                units.setdefault((_unit(block), block.shots, series.group), []).append((block, series))
    found = (_side(unit, shots, group, members, inputs.axis)
             for (unit, shots, group), members in units.items())
    return tuple(item for item in found if item is not None)


def _loss_rows(item: SideBySide) -> list[Row]:
    """The rows with a held-out loss on the text most of them were measured on (two or more)."""
    text = loss_text([row.run for row in item.rows])
    rows = [row for row in item.rows if row.run.heldout_bpb is not None and row.run.heldout_task == text]
    return rows if len(rows) >= 2 else []


def side_figure(item: SideBySide) -> Figure | None:
    """Each metric against the x axis (top) and, where two models have one, held-out loss (bottom)."""
    from harness.report import plotting as plot

    loss = scale_axis("loss")
    lines = [(item.axis, list(item.rows))]
    measured = _loss_rows(item) if item.axis.key != "loss" else []
    if measured:
        lines.append((loss, measured))
    fig = plot.new_figure(plot.width_for(len(item.metrics), 2.6), plot.ROW_IN * len(lines) + 1.0)
    grid = fig.subplots(len(lines), len(item.metrics), squeeze=False)
    for r, (axis, rows) in enumerate(lines):
        xs = [axis.x(row.run) for row in rows]
        for c, metric in enumerate(item.metrics):
            ax = grid[r][c]
            points = sorted((x, row.values[item.metrics.index(metric)]) for x, row in zip(xs, rows)
                            if x is not None and not math.isnan(row.values[item.metrics.index(metric)]))
            if points:
                ax.plot(*zip(*points), color=plot.OKABE_ITO[r], marker=plot.MARKERS[r], linewidth=1.6,
                        markersize=5)
            plot.set_x(ax, "params", [x for x in xs if x is not None], axis)
            plot.set_y(ax, metric)
            if c == 0:  # one label a row: the panels are narrow
                ax.set_xlabel(axis.short_label)
            if r == 0:
                ax.set_title(plot.metric_title(metric), fontsize=8)
    below = (f"; below, against held-out bits per byte on {lines[1][1][0].run.heldout_task} (lower loss to "
             "the right)" if len(lines) > 1 else "")
    plot.wrapped_title(fig, f"{item.title}: every metric against {item.axis.label}{below} "
                       f"({', '.join(row.run.model for row in item.rows)})")
    return fig


def draw(items: Sequence[SideBySide], writer: FigureWriter, inputs: Inputs) -> list[Drawn]:
    drawn = []
    for item in items:
        stem = f"fig-{item.slug}"
        writer.write(stem, side_figure, item)
        with_loss = " and held-out loss" if item.axis.key != "loss" and _loss_rows(item) else ""
        drawn.append(Drawn(item, FigureFile(stem, f"{item.title}: every metric against {item.axis.label}"
                                            f"{with_loss}")))
    return drawn


def _header(item: SideBySide) -> list[str]:
    header = ["model", item.axis.label]
    if item.axis.key != "loss":
        header.append("held-out bits per byte")
    return header + ["examples", *item.metrics]


def _cells(item: SideBySide, row: Row) -> list[str]:
    cells = [row.run.label, item.axis.cell(row.run)]
    if item.axis.key != "loss":
        cells.append(format_value(row.run.heldout_bpb))
    return cells + [format_count(row.n), *(format_value(v) for v in row.values)]


def render(items: Sequence[SideBySide], figures: Figures, inputs: Inputs) -> PageSection | None:
    if not items:
        return None
    parts = ['<h2 id="side-by-side">Every metric side by side</h2><p class="muted">Per task, shot count '
             "and family, every model of the size series with the mean of each metric family: exact match "
             "(BIG-bench's case-sensitive exact_str_match, the stripped generation exact_match_raw, "
             "case_insensitive_str_match), multiple choice, the target's log-prob (nats), partial credit, "
             "and the share of generations the task's regex finds no answer in. Integer-answer subtasks "
             "(arithmetic) are averaged into one row per model, unweighted, over the subtasks every model "
             "ran. Summary means only; intervals and verdicts are in each task setting above.</p>"]
    for item in items:
        parts.append(f'<h3 id="{esc(item.slug)}">{esc(item.title)}</h3>')
        parts.append(sentences_html([item.sentence]))
        parts.append(figures_html(figures.of(item)))
        parts.append(table([esc(h) for h in _header(item)],
                           [[esc(cell) for cell in _cells(item, row)] for row in item.rows]))
    return PageSection("side-by-side", "Every metric side by side", "\n".join(parts))


def markdown(items: Sequence[SideBySide], figures: Figures, link_prefix: str) -> list[str]:
    """Per item its sentence and its table."""
    if not items:
        return []
    lines = ["", "## Every metric side by side"]
    for item in items:
        header = _header(item)
        lines += ["", f"- {item.sentence}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(_cells(item, row)) + " |" for row in item.rows]
        lines += ["", *(f"![{f.caption}]({link_prefix}{f.png})" for f in figures.of(item))]
    return lines
