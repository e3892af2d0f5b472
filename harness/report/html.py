"""HTML pieces every section uses: tables, figures, value cells, verdict boxes.

Numbers are printed by `harness.report.text`; a value cell names its run by the run's position
in the page's JSON block (`data-run`, `harness.report.page_data`), its column header the metric
(`data-metric`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.report.data import Run
from harness.report.section import FigureFile
from harness.report.text import esc, format_ci, format_value

TAGS = {"metric artefact": "artefact", "jump under every metric": "jump", "jump unexplained": "jump",
        "smooth": "smooth", "inverse scaling": "inverse", "mixed": "inverse", "U-shaped": "inverse",
        "rising": "smooth"}

RunIds = Mapping[Run, int]  # a run's position in the page's JSON block


def figure_html(figure: FigureFile) -> str:
    image = f'<img src="{esc(figure.png)}" alt="{esc(figure.caption)}" loading="lazy">'
    if not figure.with_svg:  # only links to files that exist
        return (f'<figure><a href="{esc(figure.png)}">{image}</a><figcaption>{esc(figure.caption)}'
                "</figcaption></figure>")
    return (f'<figure><a href="{esc(figure.svg)}">{image}</a><figcaption>{esc(figure.caption)} '
            f'(<a href="{esc(figure.svg)}">SVG</a>)</figcaption></figure>')


def figures_html(figures: Sequence[FigureFile]) -> str:
    return "".join(figure_html(figure) for figure in figures)


def table(header: Sequence[str], rows: Sequence[Sequence[str]], name_cols: int = 1,
          row_attrs: Sequence[str] | None = None) -> str:
    """Cells are HTML already; the first `name_cols` (1 or 2) columns are left-aligned names (by the
    CSS, not a class on every cell); `row_attrs` (one attribute string per row) go on the rows' <tr>."""
    head = "".join(h if h.startswith("<th") else f"<th>{h}</th>" for h in header)
    attrs = row_attrs if row_attrs is not None else [""] * len(rows)
    body = "".join(f"<tr{' ' + attr if attr else ''}>" + "".join(
        cell if cell.startswith("<td") else f"<td>{cell}</td>" for cell in row) + "</tr>"
        for row, attr in zip(rows, attrs))
    names = ' class="n2"' if name_cols == 2 else ""
    return (f'<div class="scroll"><table{names}><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
            "</table></div>")


def metric_header(metric: str, label: str) -> str:
    """A column header that names the metric of the value cells below it."""
    return f'<th data-metric="{esc(metric)}">{label}</th>'


def value_cell(run: Run | None, metric: str, run_ids: RunIds) -> str:
    """A summary value with its CI, tagged with its run ('–' where there is none); its column's
    header names the metric (`metric_header`)."""
    if run is None:
        return "<td>–</td>"
    entry = run.metrics.get(metric) or {}
    tag = f'data-run="{run_ids[run]}"'
    if entry.get("mean") is None:
        return f"<td {tag}>–</td>"
    ci = format_ci(entry.get("ci_low"), entry.get("ci_high"))
    return f'<td {tag}>{format_value(entry["mean"])}<i>{ci}</i></td>'


def sentences_html(sentences: Sequence[str]) -> str:
    return "".join(f"<p>{esc(s)}</p>" for s in sentences)


def verdict_box(conclusion: str, sentence: str) -> str:
    return (f'<p class="verdict"><span class="tag {TAGS.get(conclusion, "")}">{esc(conclusion)}</span>'
            f"{esc(sentence)}</p>")
