"""The top of the page: headline panels per task, the verdict matrix, the collapsible contents."""

from __future__ import annotations

from collections.abc import Sequence

from harness.emergence import MetricVerdict
from harness.report.data import Block, FigureFile
from harness.report.headline import Headline, MatrixRow, matrix_metrics
from harness.report.html import anchor, esc, figure_html

HEADLINE_CSS = """
.headlines { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 10px; }
.headline { border: 1px solid #d9d9d9; border-radius: 6px; padding: 8px 12px; background: #fcfcfd; }
.headline h3 { margin: 2px 0 4px; } .headline figure { margin: 4px 0; }
.headline p { margin: 4px 0; font-size: 13.5px; }
.headline figcaption { display: none; }
table.matrix td { text-align: center; padding: 2px 6px; } table.matrix td a { color: inherit; }
table.matrix td.name { text-align: left; }
.shape-jump { background: #D55E00; color: #fff; } .shape-drop { background: #CC79A7; color: #fff; }
.shape-smooth { background: #009E73; color: #fff; } .shape-smooth-decline { background: #56B4E9; }
.shape-steady { background: #b7e4d2; } .shape-flat { background: #eeeeee; color: #555; }
.shape-unclear { background: #fff; color: #777; }
.shape-U-shaped, .shape-inverted-U { background: #F0E442; } .shape-rising { background: #dcefe6; }
.shape-declining { background: #cfe6f5; }
.legend span { display: inline-block; padding: 0 6px; margin-right: 4px; border-radius: 3px;
               font-size: 12px; }
nav details { margin: 2px 0; } nav ul { margin: 2px 0 2px 0; padding-left: 22px; }
"""

SHAPE_ORDER = ("jump", "smooth", "steady", "rising", "flat", "unclear", "U-shaped", "inverted-U", "declining",
               "drop", "smooth decline")


def shape_class(shape: str) -> str:
    return "shape-" + shape.replace(" ", "-")


def _headline_figure(figures: Sequence[FigureFile], task: str) -> str:
    return "".join(figure_html(f) for f in figures if f.section == "headline" and f.key == task)


def render_headlines(items: Sequence[Headline], figures: Sequence[FigureFile]) -> str:
    """One panel per task: the decisive figure and its sentence, linking to the details."""
    if not items:
        return '<p class="muted">No task has a series of models yet.</p>'
    panels = []
    for item in items:
        link = f'<a href="#{anchor(item.block.slug)}">details</a>'
        panels.append(f'<div class="headline" data-task="{esc(item.task)}"><h3>{esc(item.task)} '
                      f'<span class="muted">({esc(item.block.task)}, {esc(item.block.setting)})</span></h3>'
                      f'{_headline_figure(figures, item.task)}<p>{esc(item.sentence)} {link}</p></div>')
    return f'<div class="headlines">{"".join(panels)}</div>'


def _tooltip(cell: MetricVerdict) -> str:
    return f"{cell.shape}: {cell.phrase}; best - worst = {cell.gain.format(3)}"


def _row_label(block: Block, row: MatrixRow) -> str:
    series = row.result.series
    return (f'<a href="#{anchor(block.slug)}">{esc(block.task)}</a> <span class="muted">'
            f"({esc(block.setting)}; {esc(series.name)})</span>")


def render_matrix(rows: Sequence[MatrixRow]) -> str:
    """Rows: task settings (their decisive series); columns: metrics; cells coloured by shape."""
    if not rows:
        return '<p class="muted">No series of two or more models: no shapes to show.</p>'
    metrics = matrix_metrics(rows)
    head = '<th class="name">task setting</th>' + "".join(
        f"<th>{esc(m).replace('_', '_<wbr>')}</th>" for m in metrics)
    body = []
    for row in rows:
        cells = [f'<td class="name">{_row_label(row.block, row)}</td>']
        for metric in metrics:
            cell = row.cells.get(metric)
            if cell is None:
                cells.append('<td class="muted">–</td>')
                continue
            cells.append(f'<td class="{shape_class(cell.shape)}" title="{esc(_tooltip(cell))}" '
                         f'data-column="{esc(metric)}"><a href="#{anchor(row.block.slug)}">'
                         f"{esc(cell.shape)}</a></td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    legend = "".join(f'<span class="{shape_class(s)}">{esc(s)}</span>' for s in SHAPE_ORDER)
    return (f'<p class="legend">Shape of each metric\'s curve (hover a cell for its evidence: B, J, τ, '
            "bends, the hold-out fit, with CIs; "
            f"click for the details): {legend}</p>"
            f'<div class="scroll"><table class="matrix"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def render_nav(blocks: Sequence[Block], sections: Sequence[tuple[str, str]]) -> str:
    """Contents, one collapsed group per task; `sections` are (anchor, title) of the other parts."""
    by_task: dict[str, list[Block]] = {}
    for block in blocks:
        by_task.setdefault(block.top_task, []).append(block)
    groups = []
    for task, members in by_task.items():
        items = "".join(f'<li><a href="#{anchor(b.slug)}">{esc(b.task)} ({esc(b.setting)})</a></li>'
                        for b in members)
        groups.append(f"<li><details><summary>{esc(task)} ({len(members)} settings)</summary>"
                      f"<ul>{items}</ul></details></li>")
    others = "".join(f'<li><a href="#{esc(key)}">{esc(title)}</a></li>' for key, title in sections)
    return (f'<nav><details><summary>Contents</summary><ul>{"".join(groups)}{others}</ul>'
            "</details></nav>")
