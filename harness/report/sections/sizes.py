"""Sizes and training steps: every task setting against scale, with every metric.

Gathered: the blocks (task, shots, labels) grouped by top task and setting (`TaskGroup`: the
subtasks of arithmetic at 0 shots). Drawn: per group with several subtasks, an overview of exact
match (left axis) against the target's log-prob (right axis) per subtask, against the x axis
(`harness.report.axes`: parameters, compute or held-out loss) and against steps; per detail
block (`data.detail_blocks`), every panel metric against the x axis
(one line per family) and against training step (one line per size). On the page, per block:
its figures, the value table (drawn by the page's script from the JSON block), the verdict and
statistics of each series (B, R², Kendall τ with paired CIs) and, for integer answers, the
mirage check. In summary.md: the verdicts and one compact table per top task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.report.analysis import SeriesResult, headline_results, is_arithmetic_like, mirage_row, seed_view
from harness.report.axes import ScaleAxis
from harness.report.data import PANELS, Block, Series, has_values
from harness.report.html import figures_html, table, verdict_box
from harness.report.page_data import printed
from harness.report.section import Drawn, FigureFile, Figures, Inputs, PageSection
from harness.report.text import anchor, esc, format_value

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from harness.report.figure_writer import FigureWriter

OVERVIEW_METRICS = ("exact_str_match", "target_logprob")
# The metrics whose B a compact table of summary.md shows, when the task has them.
KEY_METRICS = ("exact_str_match", "multiple_choice_grade", "target_logprob", "correct_choice_prob",
               "digit_accuracy", "token_edit_distance")


@dataclass(frozen=True)
class TaskGroup:
    """The blocks of one top task at one setting (shots, labels): its subtasks, in page order."""

    top_task: str
    setting: str
    blocks: tuple[Block, ...]

    @property
    def key(self) -> str:
        """File-name part: 'arithmetic-shots0', 'arithmetic-shots1-flipped'."""
        first = self.blocks[0]
        labels = "" if first.demo_labels == "true" else f"-{first.demo_labels}"
        return f"{first.top_task}-shots{first.shots}{labels}"


def gather(inputs: Inputs) -> tuple[TaskGroup, ...]:
    groups: dict[tuple[str, int, str], list[Block]] = {}
    for block in inputs.blocks:
        groups.setdefault((block.top_task, block.shots, block.demo_labels), []).append(block)
    return tuple(TaskGroup(top, members[0].setting, tuple(members))
                 for (top, _, _), members in groups.items())


# --------------------------------------------------------------------------------------
# Figures


def _panels(runs) -> list[tuple[str, list[str]]]:
    """(family, metrics with data) per row, in PANELS order; empty families left out."""
    rows = []
    for family, names in PANELS.items():
        present = [name for name in names if has_values(runs, name)]
        if present:
            rows.append((family, present))
    return rows


def metric_figure(block: Block, series_list: Sequence[Series], kind: str, axis: ScaleAxis) -> Figure | None:
    """Every panel metric of one block against the x axis (`kind` "params") or steps ("steps")."""
    from harness.report import plotting as plot

    runs = [run for series in series_list for run in series.runs]
    rows = _panels(runs)
    if not rows or not series_list:
        return None
    n_cols = max(len(names) for _, names in rows)
    fig = plot.new_figure(plot.WIDTH_IN, plot.ROW_IN * len(rows) + 0.9)
    grid = fig.subplots(len(rows), n_cols, squeeze=False)
    chance_drawn = False
    all_x = [x for series in series_list for x in series.x]
    for (family, names), row in zip(rows, grid):
        for col, ax in enumerate(row):
            if col >= len(names):
                ax.set_visible(False)
                continue
            for index, series in enumerate(series_list):
                view = seed_view(block, series)  # the seed variants of each point: its band
                plot.draw_series(ax, view.series, names[col], **plot.style_of(index))
                band = view.band(names[col])
                if band is not None:
                    plot.draw_seed_band(ax, view.series.x, band, plot.style_of(index)["color"])
            chance_drawn |= plot.draw_chance(ax, runs, names[col])
            plot.set_x(ax, kind, all_x, axis)
            plot.set_y(ax, names[col])
            ax.set_title(plot.metric_title(names[col]))
            if col == 0:
                ax.set_ylabel(family)
    against = "training step" if kind == "steps" else axis.label
    for ax in grid[-1]:
        ax.set_xlabel(against)
    plot.legend_below(fig, grid, chance_drawn, max_cols=6)
    fig.suptitle(f"{block.task} ({block.setting}): every metric against {against}")
    return fig


def _overview_cells(blocks: Sequence[Block], kind: str) -> list[tuple[Block, list[Series]]]:
    """Per subtask: each group's size series, or the step series of each group's largest model."""
    cells = []
    for block in blocks:
        if kind == "steps":
            largest: dict[str, Series] = {}
            for series in block.step_series:  # ordered by size within a group: keep the last
                largest[series.group] = series
            chosen = list(largest.values())
        else:
            chosen = [series for series in block.size_series if len(series.runs) > 1]
        runs = [run for series in chosen for run in series.runs]
        if chosen and all(has_values(runs, metric) for metric in OVERVIEW_METRICS):
            cells.append((block, chosen))
    return cells


def _overview_cell(plot, ax, chosen: Sequence[Series], handles: dict[str, object]) -> object:
    """Exact match on `ax`, the target's log-prob on a twin axis at its right; returns the twin."""
    left_metric, right_metric = OVERVIEW_METRICS
    colors = {left_metric: plot.OKABE_ITO[0], right_metric: plot.OKABE_ITO[1]}
    right = ax.twinx()
    for index, series in enumerate(chosen):
        for metric, target_ax, line in ((left_metric, ax, "-"), (right_metric, right, "--")):
            marker = plot.MARKERS[(2 * index + (target_ax is right)) % len(plot.MARKERS)]
            (drawn,) = target_ax.plot(series.x, [run.mean(metric) for run in series.runs], linestyle=line,
                                      marker=marker, color=colors[metric], linewidth=1.6, markersize=4.5)
            side = "left" if target_ax is ax else "right"
            handles.setdefault(f"{metric} ({side} axis), {series.name}", drawn)
    ax.set_ylim(-0.04, 1.04)
    ax.tick_params(axis="y", colors=colors[left_metric])
    right.tick_params(axis="y", colors=colors[right_metric])
    right.yaxis.set_major_locator(plot.MaxNLocator(4))
    right.spines["right"].set_visible(True)
    right.grid(False)
    return right


def overview_figure(blocks: Sequence[Block], kind: str, axis: ScaleAxis) -> Figure | None:
    """Exact match (left axis, [0, 1]) and target log-prob (right axis) for each subtask of a task,
    against the x axis (`kind` "params") or steps. Fewer than two subtasks to draw: None."""
    from harness.report import plotting as plot

    cells = _overview_cells(blocks, kind)
    if len(cells) < 2:
        return None
    fig, grid, n_cols = plot.small_multiples(len(cells))
    left_metric, right_metric = OVERVIEW_METRICS
    handles: dict[str, object] = {}
    against = "training step" if kind == "steps" else axis.label
    for cell, (ax, (block, chosen)) in enumerate(zip(grid.ravel(), cells)):
        right = _overview_cell(plot, ax, chosen, handles)
        plot.set_x(ax, kind, [x for series in chosen for x in series.x], axis)
        ax.set_title(plot.subtask_title(block.task))
        if cell % n_cols == 0:
            ax.set_ylabel(left_metric, color=plot.OKABE_ITO[0])
        if cell % n_cols == n_cols - 1 or cell == len(cells) - 1:
            right.set_ylabel(right_metric, color=plot.OKABE_ITO[1])
        if cell >= len(cells) - n_cols:
            ax.set_xlabel(against)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=min(len(handles), 4),
               frameon=False)
    fig.suptitle(f"{blocks[0].top_task} ({blocks[0].setting}): exact match vs log-likelihood of the target, "
                 f"per subtask, against {against}")
    return fig


def _block_figures(block: Block, writer: FigureWriter, axis: ScaleAxis) -> list[Drawn]:
    drawn = []
    if any(len(series.runs) > 1 for series in block.size_series):
        stem = f"fig-{block.slug}-params"
        writer.write(stem, metric_figure, block, block.size_series, "params", axis)
        drawn.append(Drawn(block, FigureFile(stem, f"{block.task} ({block.setting}) against {axis.label}")))
    if block.step_series:
        stem = f"fig-{block.slug}-steps"
        writer.write(stem, metric_figure, block, block.step_series, "steps", axis)
        drawn.append(Drawn(block, FigureFile(stem, f"{block.task} ({block.setting}) against training step")))
    return drawn


def draw(groups: Sequence[TaskGroup], writer: FigureWriter, inputs: Inputs) -> list[Drawn]:
    """Each group's overviews and each detail block's figures, in page order."""
    drawn: list[Drawn] = []
    axis = inputs.axis
    for group in groups:
        for kind, what in (("params", axis.label), ("steps", "training step")):
            stem = f"fig-overview-{group.key}-{kind}"
            writer.write(stem, overview_figure, group.blocks, kind, axis)
            drawn.append(Drawn(group, FigureFile(stem, f"{group.top_task} ({group.setting}): exact match and "
                                                 f"target log-prob per subtask against {what}")))
        for block in group.blocks:
            if inputs.is_detail(block):
                drawn.extend(_block_figures(block, writer, axis))
    return drawn


# --------------------------------------------------------------------------------------
# Page


def _values_table(block: Block, inputs: Inputs) -> str:
    """Every run of the block and every metric, mean [95% CI]: drawn by the page's script from the
    JSON block (the run is named once, each number written once)."""
    ids = ",".join(str(inputs.run_ids[run]) for run in block.runs)
    summary = f"Metric values, mean [95% CI], {len(block.runs)} model(s)"
    return (f"<details{' open' if len(block.runs) <= 40 else ''}><summary>{summary}</summary>"
            f'<div class="scroll" data-values="{ids}" data-metrics="{esc(" ".join(block.metrics()))}"></div>'
            "</details>")


def _emergence_table(result: SeriesResult) -> str:
    header = ["metric", "family", "first → last", "B [95% CI]", "R² [95% CI]", "Kendall τ [95% CI]", "shape",
              "largest step", "last point − fit to the others [95% CI]"]
    rows = []
    for name, analysis in result.analyses.items():
        values = analysis.point_values
        fit = analysis.extrapolation
        rows.append([esc(name), esc(analysis.family),
                     f"{format_value(values[0])} → {format_value(values[-1])}",
                     esc(analysis.b.format()), esc(analysis.linearity.format(2)), esc(analysis.tau.format(2)),
                     esc(result.shapes[name].shape), esc(analysis.breakthrough.description),
                     "–" if fit is None else f"{esc(fit.error.format())} <i>({esc(fit.fit)})</i>"])
    return table(header, rows, name_cols=2)


def _series_html(result: SeriesResult, full: bool = True) -> str:
    """A series' verdict, notes and (when `full`) its table of every metric's statistics."""
    series = result.series
    parts = [f"<h4>{esc(series.title)}</h4>"]
    if len(series.runs) < 2:
        parts.append(f'<p class="muted">One point ({esc(series.runs[0].label)}): values in the table '
                     "above; no curve, no verdict.</p>")
        return "".join(parts)
    if result.verdict is not None:
        parts.append(verdict_box(result.verdict.conclusion, result.verdict.sentence))
    parts.extend(f'<p class="note">{esc(note)}</p>' for note in result.notes)
    if result.analyses and not full:
        parts.append('<p class="muted">Every metric of this series: the explorer above (x axis: '
                     "training step) and the values table.</p>")
    elif result.analyses:
        examples = (f"paired bootstrap over the {result.n_examples} examples every model answered"
                    if result.n_examples else "no per-example records: no CIs")
        order = "points: " + ", ".join(esc(label) for label in series.labels)
        parts.append(f'<p class="muted">{order}; {examples}.</p>')
        parts.append(_emergence_table(result))
    if result.mirage is not None:
        explained = result.verdict.mirage if result.verdict is not None else None
        share = f"; {explained.description}" if explained is not None else ""
        parts.append(f"<p>Mirage check: {esc(result.mirage.description)}{esc(share)}.</p>")
    return "".join(parts)


def _mirage_table(block: Block, inputs: Inputs) -> str:
    """Observed exact match against p_tok ** L per run: drawn by the page's script from the JSON
    block's "mirage" rows (`data`)."""
    ids = ",".join(str(inputs.run_ids[run]) for run in block.runs)
    return ("<h3>Mirage check (Schaeffer et al. 2023)</h3><p>If each of L answer tokens is right with "
            "probability p_tok, exact match is about p_tok<sup>L</sup>: a smooth rise of p_tok then looks "
            f'like a jump.</p><div class="scroll" data-mirage="{ids}"></div>')


def data(groups: Sequence[TaskGroup], inputs: Inputs) -> dict[str, Any]:
    """The section's part of the page's JSON block: per run of an integer-answer block, observed
    exact match, mean p_tok, mean L, predicted p_tok ** L, mean of per-example p ** L and
    observed − predicted, as printed."""
    rows: dict[str, list[Any]] = {}
    for group in groups:
        for block in group.blocks:
            if not is_arithmetic_like(block):
                continue
            for run in block.runs:
                row = mirage_row(inputs.cache, run)
                rows[str(inputs.run_ids[run])] = [printed(value) for value in (
                    row.observed, row.p_tok, row.n_tokens, row.predicted, row.predicted_per_example,
                    row.observed - row.predicted)]
    return {"mirage": rows}


def block_html(block: Block, figures: Figures, inputs: Inputs) -> str:
    parts = [f'<h2 id="{anchor(block.slug)}">{esc(block.task)} <span class="muted">({esc(block.setting)})'
             "</span></h2>"]
    parts.append(figures_html(figures.of(block)))
    parts.extend(f'<p class="note">{esc(note)}</p>' for note in block.left_out)  # not on the x axis
    parts.append(_values_table(block, inputs))
    parts.append("<h3>Emergence</h3>")
    # statistics tables for the size series and each group's largest model over steps (the
    # smaller models' step series keep their verdict sentence: the page stays readable and light)
    results = inputs.results_of(block)
    shown = {id(result) for result in headline_results(block, results)}
    parts.extend(_series_html(result, id(result) in shown) for result in results)
    if is_arithmetic_like(block):
        parts.append(_mirage_table(block, inputs))
    return "\n".join(parts)


def render(groups: Sequence[TaskGroup], figures: Figures, inputs: Inputs) -> PageSection:
    """Per group: its overviews (when drawn), then each of its blocks."""
    parts = []
    for group in groups:
        overviews = figures.of(group)
        if overviews:
            parts.append(f'<h2 id="{anchor("overview-" + group.key)}">{esc(group.top_task)}: overview '
                         f'<span class="muted">({esc(group.setting)})</span></h2>' + figures_html(overviews))
        parts.extend(block_html(block, figures, inputs) for block in group.blocks)
    return PageSection("sizes", "Every task setting", "".join(parts))


# --------------------------------------------------------------------------------------
# summary.md


_SHAPE_WORDS = {"jump": "jumps", "drop": "drops", "smooth": "smooth", "smooth decline": "declines smoothly",
                "steady": "steady (jump or smooth unresolved)", "rising": "rises overall",
                "U-shaped": "U-shaped", "inverted-U": "inverted U", "declining": "declines overall",
                "unclear": "unclear", "flat": "flat"}


def compact_verdict(result: SeriesResult) -> str:
    """'jumps: digit_accuracy (B = inf [inf, inf], tau = ...); smooth: target_logprob (...); flat: ...'.

    The verdict of `harness.emergence.verdict`, metrics grouped by shape, each with its B and
    tau and their CIs (a flat one with its range).
    """
    if result.verdict is None:
        return ""
    grouped: dict[str, list[str]] = {}
    for metric in result.verdict.metrics:
        if metric.shape == "flat":
            numbers = f"range {format_value(metric.change)}"
        else:
            numbers = f"B = {metric.b.format()}, tau = {metric.tau.format(2)}"
        grouped.setdefault(metric.shape, []).append(f"{metric.metric} ({numbers})")
    order = [shape for shape in _SHAPE_WORDS if shape in grouped]
    return "; ".join(f"{_SHAPE_WORDS[shape]}: {', '.join(grouped[shape])}" for shape in order)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _task_table(blocks: Sequence[Block], inputs: Inputs) -> list[str]:
    """A top task's compact table (B of the key metrics per series), or its values for lone models."""
    analysed = [(block, result) for block in blocks
                for result in headline_results(block, inputs.results_of(block)) if result.analyses]
    metrics = [m for m in KEY_METRICS if any(m in result.analyses for _, result in analysed)]
    if not analysed:
        lines = ["One model per series: values only (see the full page)."]
        for block in blocks:
            for run in block.runs:
                values = ", ".join(f"{m} {format_value(run.mean(m))}" for m in KEY_METRICS
                                   if m in block.metrics())
                lines.append(f"- {block.task} ({block.setting}), {run.label}: {values}")
        return lines
    lines = ["| task | shots | series | points | conclusion | " + " | ".join(f"B {m}" for m in metrics)
             + " |", "|" + "---|" * (5 + len(metrics))]
    for block, result in analysed:
        cells = [block.task, block.setting, result.series.title, str(len(result.series.runs)),
                 result.verdict.conclusion if result.verdict else "–"]
        for metric in metrics:
            shape = result.shapes.get(metric)
            cells.append("–" if shape is None else f"{shape.b.format()} ({shape.shape})")
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def markdown(groups: Sequence[TaskGroup], figures: Figures, link_prefix: str, inputs: Inputs) -> list[str]:
    """The verdicts, then per top task its compact table and its overviews (or block figures)."""
    lines = ["## Verdicts", ""]
    verdicts = [(block, result) for block in inputs.blocks
                for result in headline_results(block, inputs.results_of(block)) if result.verdict]
    if not verdicts:
        lines.append("No series of two or more models: nothing to give a verdict on.")
    lines.extend(f"- **{result.verdict.conclusion}**, {block.task} ({block.setting}; {result.series.title}): "
                 f"{compact_verdict(result)}." for block, result in verdicts if result.verdict)
    by_top: dict[str, list[TaskGroup]] = {}
    for group in groups:
        by_top.setdefault(group.top_task, []).append(group)
    for top, members in by_top.items():
        blocks = [block for group in members for block in group.blocks]
        lines += ["", f"## {top}", "", *_task_table(blocks, inputs)]
        left_out = dict.fromkeys(note for block in blocks for note in block.left_out)  # once per group
        lines += [""] + [f"- Not on the x axis: {note}." for note in left_out] if left_out else []
        shown = figures.of_any(members) or figures.of_any(blocks)
        if shown:
            lines.append("")
        lines.extend(f"![{f.caption}]({link_prefix}{f.png})" for f in shown)
    return lines
