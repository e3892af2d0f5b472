"""`harness report`: figures, emergence tables and verdicts for a results folder, as static files.

    from harness.report import build_report
    index_html = build_report("results")            # results/report/index.html
    build_report("results", x_axis="total")         # x = total parameters instead of non-embedding

Writes into `<results>/report/`: `index.html` (one page, no server or script), `summary.md`
(verdicts and compact tables for a README) and each figure as `fig-*.png` (120 dpi) and
`fig-*.svg`. Flow: `data` gathers runs into blocks and series (pure), `analysis` runs
harness.emergence on them (pure), `figures` draws (matplotlib, imported only when a report is
built), `html` and `markdown` write the text. Axes beyond size and metric (shot counts,
calibration, scratchpad vs direct, relabelled demonstrations) are gathered by `axes` and
`compare` (pure), drawn by `axes_figures` and written by `axes_html`, each section only when the
results hold its data. Stale `fig-*` files from an earlier report are
removed first, so the folder holds exactly what the page shows.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from harness.errors import HarnessError
from harness.io import atomic_write_text
from harness.report.analysis import SeriesResult, analyze
from harness.report.data import X_AXES, ScoreCache, XAxis, build_blocks, detail_blocks, load_runs

REPORT_DIR = "report"
__all__ = ["build_report", "figure_files"]


def figure_files(report_dir: Path) -> list[Path]:
    """The PNG figures in a report folder."""
    return sorted(Path(report_dir).glob("fig-*.png"))


def _link_prefix(report_dir: Path) -> str:
    """Figure links in summary.md: from the repository root when the report lies inside it."""
    from harness.results import REPO

    try:
        relative = report_dir.resolve().relative_to(REPO.resolve())
    except ValueError:
        return ""
    return "" if not (REPO / ".git").exists() else relative.as_posix() + "/"


def _top(headlines, rows, written) -> str:
    from harness.report import headline_html

    return ('<h2 id="answer">Answer: does the ability jump, and under which metrics?</h2>'
            + headline_html.render_headlines(headlines, written)
            + '<h2 id="matrix">Verdict matrix</h2>' + headline_html.render_matrix(rows))


def build_report(results_dir: str | os.PathLike[str], x_axis: XAxis = "non_embedding", *, n_boot: int = 1000,
                 seed: int = 0, svg: bool = False, out: str | os.PathLike[str] | None = None,
                 workers: int | None = None, scale_x: Sequence[str] | None = None) -> Path:
    """Write `<results_dir>/report/` (or `out`) and return the path of its index.html.

    `x_axis`: "non_embedding" (default) or "total" parameters. `n_boot` paired bootstrap
    resamples (with `seed`) for every emergence statistic. `svg`: an SVG beside every PNG (for
    print; off by default, it doubles the drawing time). Unchanged figures are kept, not redrawn
    (`figure_writer`); changed ones are drawn in `workers` processes (default: the usable CPUs,
    at most 4). Raises HarnessError for a missing or
    empty results folder, an unreadable summary, or per-example scores that are damaged or
    missing beside kept examples (`harness rescore` writes them). `scale_x`: the axes of the
    "Scale three ways" figures (params, steps, compute, loss; default: every one with data).
    """
    from harness.report import (
        axes_figures,
        axes_html,
        explorer,
        figures,
        headline,
        headline_html,
        html,
        markdown,
    )
    from harness.report.compare import gather_axes
    from harness.report.figure_writer import FigureWriter, default_workers
    from harness.report.scale import scale_section

    if x_axis not in X_AXES:
        raise HarnessError(f"unknown x axis {x_axis!r}; choose one of {', '.join(X_AXES)}")
    results_dir = Path(results_dir)
    runs = load_runs(results_dir)
    blocks = build_blocks(runs, x_axis)
    cache = ScoreCache()
    for run in runs:  # every run's stored scores are read (and checked) once, analysed or not
        cache.table(run)
    results: dict[str, tuple[SeriesResult, ...]] = {}
    for block in blocks:
        results[block.slug] = tuple(analyze(block, series, cache, n_boot, seed)
                                    for series in (*block.size_series, *block.step_series))
    axes = gather_axes(blocks, results, cache, n_boot, seed)
    report_dir = Path(out) if out is not None else results_dir / REPORT_DIR
    report_dir.mkdir(parents=True, exist_ok=True)
    writer = FigureWriter(report_dir, svg=svg, workers=default_workers() if workers is None else workers)
    top = headline.headlines(blocks, results, detail_blocks(blocks))
    written = figures.write_headline_figures(top, writer, x_axis)
    written += figures.write_figures(blocks, writer, x_axis)
    written += axes_figures.write_axes_figures(axes, writer, x_axis, detail_blocks(blocks))
    writer.finish()
    written = [figure for figure in written if writer.saved(figure.stem)]  # a figure with no data is none
    if svg:
        written = [replace(figure, with_svg=True) for figure in written]
    scored = [str(run.summary.get("provenance", {}).get("scored", "")) for run in runs]
    sections = tuple(axes_html.render_sections(axes, written, x_axis))
    scale = scale_section(results_dir, report_dir, scale_x)  # every checkpoint on each axis
    sections += (scale,) if scale else ()
    page = html.Page(title="Emergence report", results_label=str(results_dir), x_axis=x_axis,
                     runs=tuple(runs), blocks=tuple(blocks), results=results, figures=tuple(written),
                     latest_scored=max(scored) if any(scored) else "–", n_boot=n_boot, seed=seed,
                     sections=sections, css=headline_html.HEADLINE_CSS,
                     top=_top(top, headline.matrix_rows(blocks, results), written)
                     + '<h2 id="explorer-section">Explorer: every task, metric and setting</h2>'
                     + explorer.render_explorer(runs, x_axis),
                     nav=headline_html.render_nav(blocks, [
                         ("answer", "Answer: headline per task"), ("matrix", "Verdict matrix"),
                         ("explorer-section", "Explorer"),
                         *[(key, title) for key, title, _ in sections],
                         ("provenance", "Provenance"), ("method", "How to read this")]))
    index = report_dir / "index.html"
    atomic_write_text(index, html.render_page(page, cache))
    prefix = _link_prefix(report_dir)
    atomic_write_text(report_dir / "summary.md", markdown.render_summary(
        str(results_dir), blocks, results, written, prefix, axes_html.render_markdown(axes, written, prefix)))
    return index
