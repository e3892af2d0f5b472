"""`harness report`: figures, emergence tables and verdicts for a results folder, as static files.

    from harness.report import build_report
    index_html = build_report("results")            # results/report/index.html
    build_report("results", x_axis="compute")       # x = training compute (or total, loss)

Writes into `<results>/report/`: `index.html` (one page; works offline from a file), `summary.md`
(verdicts and compact tables for a README) and each figure as `fig-*.png` (120 dpi; `--svg`
adds an SVG beside each). Layout of this package:

    axes.py, data.py, analysis.py   shared: the x axis; runs -> blocks and series; their statistics (pure)
    text.py, html.py, plotting.py   shared: number format; HTML pieces; matplotlib helpers
    section.py                      shared: what a section is given (Inputs) and gives (figures, HTML)
    sections/headline.py            the answer first: a headline per task and the verdict matrix
    sections/explorer.py            the interactive explorer (Vega-Lite through Altair, compiled)
    sections/sizes.py               every task setting against parameters and steps
    sections/shots.py, calibration.py, scratchpad.py, relabel.py   the axes beyond size
    page.py, page_data.py, script.py   the page: sections in order, one JSON block, one script
    figure_writer.py                draws only the figures whose content changed

Each section goes gather (pure) -> draw -> render/markdown; sections import the shared modules,
never each other, and the page imports the sections. Stale `fig-*` files from an earlier report
are removed, so the folder holds exactly what the page shows.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from harness.io import atomic_write_text
from harness.report.analysis import SeriesResult, analyze
from harness.report.axes import scale_axis
from harness.report.data import ScoreCache, build_blocks, detail_blocks, load_runs

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


def build_report(results_dir: str | os.PathLike[str], x_axis: str = "params", *, n_boot: int = 1000,
                 seed: int = 0, svg: bool = False, out: str | os.PathLike[str] | None = None,
                 workers: int | None = None, scale_x: Sequence[str] | None = None) -> Path:
    """Write `<results_dir>/report/` (or `out`) and return the path of its index.html.

    `x_axis` of every size series, figure and statistic (`harness.report.axes`): "params"
    (non-embedding parameters, the default; "non_embedding" is an alias), "total" parameters,
    "compute" (6·N·D FLOPs) or "loss" (held-out bits per byte; the statistics use 1/bpb, the
    figures bits per byte with lower loss to the right); a run without a value on it is left out
    of size series, and named. An unknown name is a HarnessError. `n_boot` paired bootstrap
    resamples (with `seed`) for every emergence statistic. `svg`: an SVG beside every PNG (for
    print; off by default, it doubles the drawing time). Unchanged figures are kept, not redrawn
    (`figure_writer`); changed ones are drawn in `workers` processes (default: the usable CPUs,
    at most 4). Raises HarnessError for a missing or
    empty results folder, an unreadable summary, or per-example scores that are damaged or
    missing beside kept examples (`harness rescore` writes them). `scale_x`: the axes of the
    "Scale three ways" figures (params, steps, compute, loss; default: every one with data).
    """
    from harness.report import page
    from harness.report.figure_writer import FigureWriter, default_workers
    from harness.report.scale import scale_section
    from harness.report.section import Figures, Inputs, nonempty
    from harness.report.sections.equal_loss import equal_loss_section

    axis = scale_axis(x_axis)
    results_dir = Path(results_dir)
    runs = load_runs(results_dir)
    blocks = build_blocks(runs, axis)
    cache = ScoreCache()
    for run in runs:  # every run's stored scores are read (and checked) once, analysed or not
        cache.table(run)
    results: dict[str, tuple[SeriesResult, ...]] = {}
    for block in blocks:
        results[block.slug] = tuple(analyze(block, series, cache, n_boot, seed)
                                    for series in (*block.size_series, *block.step_series))
    inputs = Inputs(tuple(runs), tuple(blocks), results, cache, axis, n_boot, seed,
                    frozenset(detail_blocks(blocks)))
    gathered = page.gather(inputs)
    report_dir = Path(out) if out is not None else results_dir / REPORT_DIR
    report_dir.mkdir(parents=True, exist_ok=True)
    writer = FigureWriter(report_dir, svg=svg, workers=default_workers() if workers is None else workers)
    drawn = page.draw(gathered, writer, inputs)
    writer.finish()
    drawn = [d for d in drawn if writer.saved(d.figure.stem)]  # a figure with no data is none
    if svg:
        drawn = [replace(d, figure=replace(d.figure, with_svg=True)) for d in drawn]
    figures = Figures(drawn)
    scored = [str(run.summary.get("provenance", {}).get("scored", "")) for run in runs]
    info = page.PageInfo("Emergence report", str(results_dir), max(scored) if any(scored) else "–")
    index = report_dir / "index.html"
    scale = scale_section(results_dir, report_dir, scale_x)  # every checkpoint on each axis
    equal = equal_loss_section(results_dir, report_dir, runs, cache, n_boot, seed)
    atomic_write_text(index, page.render_page(info, gathered, figures, inputs,
                                              extra=nonempty([scale, equal])))
    atomic_write_text(report_dir / "summary.md", page.render_summary(
        str(results_dir), gathered, figures, _link_prefix(report_dir), inputs))
    return index
