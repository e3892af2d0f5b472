"""The top of the report: one headline per task, and the verdict matrix beside them.

A *headline* answers, for one task (emoji_movie, periodic_elements, arithmetic, ...), whether the
ability jumps and under which metrics: the decisive series (the size series with the most
models, else the longest series over training steps) of the decisive setting (for a task with
subtasks, the one whose exact match gains most), its exact match, multiple-choice and
log-likelihood metrics side by side in one small figure, and one sentence with the numbers.

A *matrix row* is one (task setting, series): each metric's shape (harness.emergence.classify),
with B, J, tau and their CIs in the cell's tooltip. Headlines and matrix share the first screen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.emergence import MetricVerdict, SeriesAnalysis
from harness.report.analysis import SeriesResult
from harness.report.axes import ScaleAxis
from harness.report.data import PANEL_METRICS, Block, Series
from harness.report.html import figures_html
from harness.report.section import Drawn, FigureFile, Figures, Inputs
from harness.report.text import anchor, esc

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from harness.report.figure_writer import FigureWriter

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


def _x_label(series: Series, value: float, axis: ScaleAxis) -> str:
    if series.kind == "step":
        return f"step {int(value) - 1:,}"  # step series are analysed against step + 1
    return axis.phrase(value)


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


def metric_phrase(name: str, analysis: SeriesAnalysis, shape: MetricVerdict, series: Series,
                  axis: ScaleAxis) -> str:
    """'exact_str_match jumps from 0.00 to 0.47 between 224k and 595k parameters (B = 13 [4.8, inf])';
    a size series' points are named on `axis` ('1.2e15 FLOPs', '0.873 bits per byte')."""
    values = analysis.point_values
    words = _WORDS.get(shape.shape, shape.shape)
    if shape.shape in ("jump", "drop"):
        i, j = shape.breakthrough.jump_between
        return (f"{name} {words} from {values[i]:.2f} to {values[j]:.2f} between "
                f"{_x_label(series, analysis.x[i], axis)} and {_x_label(series, analysis.x[j], axis)}"
                f"{' ' + axis.unit if series.kind == 'size' else ''} "
                f"(B = {analysis.b.format()}, J = {analysis.share.format(2)})")
    if shape.shape == "flat":
        return f"{name} {words} ({min(values):.2f} to {max(values):.2f})"
    return f"{name} {words} from {values[0]:.2f} to {values[-1]:.2f} (tau = {analysis.tau.format(2)})"


def _sentence(result: SeriesResult, metrics: Sequence[str], axis: ScaleAxis) -> str:
    series = result.series
    if not result.analyses:
        run = series.runs[0]
        values = ", ".join(f"{m} {run.mean(m):.2f}" for m in metrics)
        return f"One model only ({run.label}): {values}; no curve, no verdict."
    phrases = [metric_phrase(m, result.analyses[m], result.shapes[m], series, axis)
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
              detail: frozenset[str] | set[str], axis: ScaleAxis) -> list[Headline]:
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
        found.append(Headline(task, block, result, metrics, _sentence(result, metrics, axis)))
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


@dataclass(frozen=True)
class Top:
    """What the first screen shows: a headline per task and the matrix rows."""

    headlines: tuple[Headline, ...]
    rows: tuple[MatrixRow, ...]
    off_axis: tuple[Block, ...] = ()  # detail settings of tasks without a headline: no model on the x axis


def off_axis(blocks: Sequence[Block], found: Sequence[Headline], detail: frozenset[str] | set[str]
             ) -> tuple[Block, ...]:
    """Per task without a headline, its first detail setting whose models the x axis left out."""
    named = {item.task for item in found}
    chosen: dict[str, Block] = {}
    for block in blocks:
        if block.slug in detail and block.left_out and headline_task(block) not in named:
            chosen.setdefault(headline_task(block), block)
    return tuple(chosen.values())


def gather(inputs: Inputs) -> Top:
    found = headlines(inputs.blocks, dict(inputs.results), inputs.detail, inputs.axis)
    return Top(tuple(found), tuple(matrix_rows(inputs.blocks, dict(inputs.results))),
               off_axis(inputs.blocks, found, inputs.detail))


# --------------------------------------------------------------------------------------
# Figure

HEADLINE_PANEL_IN = (1.75, 1.9)  # width per panel, height: small enough that four fit the first screen


def headline_figure(series: Series, metrics: Sequence[str], axis: ScaleAxis) -> Figure | None:
    """The decisive figure of a task: one small panel per metric family, side by side, CIs and chance."""
    from harness.report import plotting as plot

    if not metrics:
        return None
    kind = "steps" if series.kind == "step" else "params"
    width, height = HEADLINE_PANEL_IN
    fig = plot.new_figure(width * len(metrics), height)
    grid = fig.subplots(1, len(metrics), squeeze=False)[0]
    chance = False
    for ax, metric in zip(grid, metrics):
        plot.draw_series(ax, series, metric, **plot.style_of(0))
        chance |= plot.draw_chance(ax, series.runs, metric)
        plot.set_x(ax, kind, series.x, axis)
        plot.set_y(ax, metric)
        ax.set_title(plot.metric_title(metric), fontsize=9)
        ax.set_xlabel("training step" if kind == "steps" else axis.short_label, fontsize=8)
        ax.tick_params(labelsize=7.5)
    fig.suptitle(f"{series.title}" + ("; dashed: chance" if chance else ""), fontsize=8.5)
    return fig


def draw(top: Top, writer: FigureWriter, inputs: Inputs) -> list[Drawn]:
    drawn = []
    for item in top.headlines:
        stem = f"fig-headline-{item.block.slug}"
        writer.write(stem, headline_figure, item.series, item.metrics, inputs.axis)
        drawn.append(Drawn(item, FigureFile(stem, f"{item.task}: {', '.join(item.metrics)} against scale, "
                                            "95% CIs")))
    return drawn


# --------------------------------------------------------------------------------------
# Page

HEADLINE_CSS = """
.top { display: grid; grid-template-columns: minmax(0, 1.2fr) minmax(0, 1fr); gap: 14px;
       align-items: start; }
@media (max-width: 1100px) { .top { grid-template-columns: minmax(0, 1fr); } }
.top h2 { margin-top: 8px; font-size: 19px; }
.headlines { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 8px; }
.headline { border: 1px solid #d9d9d9; border-radius: 6px; padding: 3px 8px; background: #fcfcfd; }
.headline h3 { margin: 2px 0; font-size: 14px; } .headline figure { margin: 2px 0; }
.headline figure img { border: 0; } .headline figcaption { display: none; }
.headline p { margin: 2px 0; font-size: 12px; line-height: 1.3; }
.matrix-box .scroll { max-height: calc(100vh - 120px); overflow: auto; }
table.matrix { font-size: 10.5px; margin: 0; }
table.matrix th { position: sticky; top: 0; z-index: 1; writing-mode: vertical-rl; font-weight: normal;
                  padding: 4px 1px; vertical-align: bottom; }
table.matrix th.name { writing-mode: horizontal-tb; }
table.matrix td { text-align: center; padding: 1px 2px; } table.matrix td a { color: inherit; }
table.matrix td.name { text-align: left; white-space: normal; min-width: 140px; }
.shape-jump { background: #D55E00; color: #fff; } .shape-drop { background: #CC79A7; color: #fff; }
.shape-smooth { background: #009E73; color: #fff; } .shape-smooth-decline { background: #56B4E9; }
.shape-steady { background: #b7e4d2; } .shape-flat { background: #eeeeee; color: #555; }
.shape-unclear { background: #fff; color: #777; }
.shape-U-shaped, .shape-inverted-U { background: #F0E442; } .shape-rising { background: #dcefe6; }
.shape-declining { background: #cfe6f5; }
.legend { font-size: 12px; margin: 4px 0; }
.legend span { display: inline-block; padding: 0 5px; margin-right: 3px; border-radius: 3px; }
"""

SHAPE_ORDER = ("jump", "smooth", "steady", "rising", "flat", "unclear", "U-shaped", "inverted-U", "declining",
               "drop", "smooth decline")


def shape_class(shape: str) -> str:
    return "shape-" + shape.replace(" ", "-")


def _off_axis_html(blocks: Sequence[Block]) -> str:
    """The tasks with no model on the x axis, each with the note that says why."""
    if not blocks:
        return ""
    items = "; ".join(f'<a href="#{anchor(block.slug)}">{esc(headline_task(block))}</a> '
                      f'({esc(" ".join(block.left_out))})' for block in blocks)
    return f'<p class="muted">No model on this x axis: {items}.</p>'


def render_headlines(items: Sequence[Headline], figures: Figures, off: Sequence[Block] = ()) -> str:
    """One panel per task: the decisive figure and its sentence, linking to the details; then the
    tasks the x axis has no model of."""
    if not items:
        return '<p class="muted">No task has a series of models yet.</p>' + _off_axis_html(off)
    panels = []
    for item in items:
        link = f'<a href="#{anchor(item.block.slug)}">details</a>'
        panels.append(f'<div class="headline" data-task="{esc(item.task)}"><h3>{esc(item.task)} '
                      f'<span class="muted">({esc(item.block.task)}, {esc(item.block.setting)})</span></h3>'
                      f'{figures_html(figures.of(item))}<p>{esc(item.sentence)} {link}</p></div>')
    return f'<div class="headlines">{"".join(panels)}</div>{_off_axis_html(off)}'


def _tooltip(cell: MetricVerdict) -> str:
    return f"{cell.shape}: {cell.phrase}; best - worst = {cell.gain.format(3)}"


def _row_label(block: Block, row: MatrixRow) -> str:
    series = row.result.series
    return (f'<a href="#{anchor(block.slug)}" title="{esc(series.title)}">{esc(block.task)}</a> '
            f'<span class="muted">({esc(block.setting)})</span>')


def data(top: Top) -> dict[str, Any]:
    """The section's part of the page's JSON block: each matrix cell's evidence (its tooltip),
    in the cells' order; the page script sets them as titles (inline, 700 cells' evidence
    sentences would weigh a tenth of the page)."""
    return {"matrix_tips": [_tooltip(cell) for cell in _shaped_cells(top.rows)]}


def _shaped_cells(rows: Sequence[MatrixRow]) -> list[MetricVerdict]:
    """The matrix cells that have a shape, in page order: their position is their `data-tip`."""
    metrics = matrix_metrics(rows)
    return [row.cells[m] for row in rows for m in metrics if m in row.cells]


def render_matrix(rows: Sequence[MatrixRow]) -> str:
    """Rows: task settings (their decisive series); columns: metrics; cells coloured by shape.
    A cell's evidence is its tooltip, `data-tip` numbering it in the JSON block (`data`)."""
    if not rows:
        return '<p class="muted">No series of two or more models: no shapes to show.</p>'
    metrics = matrix_metrics(rows)
    head = '<th class="name">task setting</th>' + "".join(
        f"<th>{esc(m)}</th>" for m in metrics)
    tip_of = {id(cell): number for number, cell in enumerate(_shaped_cells(rows))}
    body = []
    for row in rows:
        cells = [f'<td class="name">{_row_label(row.block, row)}</td>']
        for metric in metrics:
            cell = row.cells.get(metric)
            if cell is None:
                cells.append('<td class="muted">–</td>')
                continue
            cells.append(f'<td class="{shape_class(cell.shape)}" data-tip="{tip_of[id(cell)]}">'
                         f'<a href="#{anchor(row.block.slug)}">{esc(cell.shape)}</a></td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    legend = "".join(f'<span class="{shape_class(s)}">{esc(s)}</span>' for s in SHAPE_ORDER)
    return (f'<p class="legend">Each metric\'s shape over the setting\'s decisive series (hover a cell '
            "for its evidence: B, J, τ, bends, the hold-out fit, with CIs; "
            f"click for the details): {legend}</p>"
            f'<div class="scroll"><table class="matrix"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def render(top: Top, figures: Figures) -> str:
    """The first screen: the headline panels and, beside them, the verdict matrix."""
    return ('<div class="top"><section class="answer"><h2 id="answer">Answer: does the ability jump, and '
            f"under which metrics?</h2>{render_headlines(top.headlines, figures, top.off_axis)}</section>"
            '<section class="matrix-box"><h2 id="matrix">Verdict matrix</h2>'
            f"{render_matrix(top.rows)}</section></div>")
