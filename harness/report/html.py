"""HTML pieces every section uses: the page's CSS, tables, figures, value cells, verdict boxes.

Numbers are printed by `harness.report.text`; a value cell names its run by the run's position
in the page's JSON block (`data-run`, `harness.report.page_data`), its column header the metric
(`data-metric`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.report.data import Run
from harness.report.section import FigureFile
from harness.report.text import esc, format_ci, format_value

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a1a1a;
       max-width: 1240px; margin: 0 auto; padding: 0 20px 60px; }
h1 { margin-top: 28px; } h2 { border-bottom: 2px solid #ddd; padding-bottom: 4px; margin-top: 42px; }
h3 { margin-top: 26px; } h4 { margin: 18px 0 6px; }
code { background: #f3f3f3; padding: 1px 4px; border-radius: 3px; font-size: 90%; }
figure { margin: 14px 0; } figure img { max-width: 100%; border: 1px solid #e3e3e3; }
figcaption { color: #555; font-size: 90%; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 13px; }
th, td { border: 1px solid #d9d9d9; padding: 3px 7px; text-align: right; vertical-align: top; }
th { background: #f4f6f8; text-align: center; } td.name, th.name { text-align: left; white-space: nowrap; }
td .ci, td i { display: block; color: #666; font-size: 11px; white-space: nowrap; font-style: normal; }
.verdict { background: #f7f9fc; border-left: 4px solid #0072B2; padding: 6px 10px; margin: 6px 0; }
.tag { display: inline-block; padding: 0 6px; border-radius: 3px; font-size: 12px; color: #fff;
       background: #555; margin-right: 6px; }
.tag.artefact { background: #0072B2; } .tag.jump { background: #D55E00; } .tag.smooth { background: #009E73; }
.tag.inverse { background: #CC79A7; }
.note { color: #8a4b00; } .muted { color: #666; } nav li { margin: 1px 0; }
details summary { cursor: pointer; color: #0b5394; }
"""

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
