"""The report page: one static HTML file, inline CSS, no script, figures by relative path.

Numbers are formatted by `format_value` everywhere (page, markdown, tests): a metric mean in
a table is exactly `format_value(summary mean)`.
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from harness import __version__
from harness.emergence import ALPHA, CONCLUSION_RULES, SHAPE_RULES, Estimate
from harness.emergence.extrapolation import LINEAR_FIT, LOGISTIC_FIT, PREDICT_SHARE
from harness.report.analysis import SeriesResult, headline_results, is_arithmetic_like, mirage_row
from harness.report.data import X_AXES, Block, FigureFile, Run, ScoreCache, XAxis

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

_TAGS = {"metric artefact": "artefact", "jump under every metric": "jump", "jump unexplained": "jump",
         "smooth": "smooth", "inverse scaling": "inverse", "mixed": "inverse", "U-shaped": "inverse",
         "rising": "smooth"}


def format_value(value: float | None) -> str:
    """'0.233', '-8.360', '1,234', '5.81e-04'; '–' for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    size = abs(value)
    if 0 < size < 0.001:
        return f"{value:.2e}"
    if size >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3f}"


def format_ci(low: float | None, high: float | None) -> str:
    return f"[{format_value(low)}, {format_value(high)}]"


def format_count(value: int | float | None) -> str:
    """Parameter counts and steps: '12,768'."""
    return "–" if value is None else f"{int(value):,}"


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _wrap(name: str) -> str:
    """A metric name that may break after its underscores in a narrow column header."""
    return esc(name).replace("_", "_<wbr>")


def anchor(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text)


@dataclass(frozen=True)
class Page:
    """What the page shows; `results` per block slug, in page order."""

    title: str
    results_label: str
    x_axis: XAxis
    runs: tuple[Run, ...]
    blocks: tuple[Block, ...]
    results: dict[str, tuple[SeriesResult, ...]]
    figures: tuple[FigureFile, ...]
    latest_scored: str  # the newest summary's scoring time (not now: the page is reproducible)
    n_boot: int
    seed: int
    sections: tuple[tuple[str, str, str], ...] = ()  # (anchor, title, HTML) of the axis sections
    top: str = ""  # HTML of the answer first: headline panels and the verdict matrix
    nav: str = ""  # HTML of the collapsible contents
    css: str = ""  # the top's extra CSS


def figure_html(figure: FigureFile) -> str:
    image = f'<img src="{esc(figure.png)}" alt="{esc(figure.caption)}" loading="lazy">'
    if not figure.with_svg:  # only links to files that exist
        return (f'<figure><a href="{esc(figure.png)}">{image}</a><figcaption>{esc(figure.caption)}'
                "</figcaption></figure>")
    return (f'<figure><a href="{esc(figure.svg)}">{image}</a><figcaption>{esc(figure.caption)} '
            f'(<a href="{esc(figure.svg)}">SVG</a>)</figcaption></figure>')


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], name_cols: int = 1,
           row_attrs: Sequence[str] | None = None) -> str:
    """Cells are HTML already; the first `name_cols` columns are left-aligned names; `row_attrs`
    (one attribute string per row) go on the rows' <tr>."""
    head = "".join(h if h.startswith("<th") else f'<th class="name">{h}</th>' if i < name_cols
                   else f"<th>{h}</th>" for i, h in enumerate(header))
    attrs = row_attrs if row_attrs is not None else [""] * len(rows)
    body = "".join(f"<tr{' ' + attr if attr else ''}>" + "".join(
        cell if cell.startswith("<td") else
        (f'<td class="name">{cell}</td>' if i < name_cols else f"<td>{cell}</td>")
        for i, cell in enumerate(row)) + "</tr>" for row, attr in zip(rows, attrs))
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _values_table(block: Block, x_axis: XAxis) -> str:
    metrics = block.metrics()
    # the run is named once on its row and the metric once on its column: tables of every run
    # and metric were most of the page's bytes
    header = ["model", "family", X_AXES[x_axis], "n"] + [f'<th data-metric="{esc(m)}">{_wrap(m)}</th>'
                                                         for m in metrics]
    rows = []
    for run in block.runs:
        cells = [esc(run.label), esc(run.group), format_count(run.params(x_axis)), str(run.n)]
        for metric in metrics:
            entry = run.metrics.get(metric)
            if entry is None or entry.get("mean") is None:
                cells.append("<td>–</td>")
                continue
            ci = format_ci(entry.get("ci_low"), entry.get("ci_high"))
            cells.append(f"<td>{format_value(entry['mean'])}<i>{ci}</i></td>")
        rows.append(cells)
    table = _table(header, rows, name_cols=2, row_attrs=[f'data-run="{esc(r.rel_dir)}"' for r in block.runs])
    summary = f"Metric values, mean [95% CI], {len(block.runs)} model(s)"
    return f"<details{' open' if len(block.runs) <= 40 else ''}><summary>{summary}</summary>{table}</details>"


def _estimate(estimate: Estimate, decimals: int | None = None) -> str:
    return esc(estimate.format(decimals))


def _emergence_table(result: SeriesResult) -> str:
    header = ["metric", "family", "first → last", "B [95% CI]", "R² [95% CI]", "Kendall τ [95% CI]", "shape",
              "largest step", "last point − fit to the others [95% CI]"]
    rows = []
    for name, analysis in result.analyses.items():
        shape = result.shapes[name]
        values = analysis.point_values
        fit = analysis.extrapolation
        rows.append([esc(name), esc(analysis.family),
                     f"{format_value(values[0])} → {format_value(values[-1])}", _estimate(analysis.b),
                     _estimate(analysis.linearity, 2), _estimate(analysis.tau, 2), esc(shape.shape),
                     esc(analysis.breakthrough.description),
                     "–" if fit is None else f"{_estimate(fit.error)} <i>({esc(fit.fit)})</i>"])
    return _table(header, rows, name_cols=2)


def _verdict(result: SeriesResult) -> str:
    if result.verdict is None:
        return ""
    tag = _TAGS.get(result.verdict.conclusion, "")
    return (f'<p class="verdict"><span class="tag {tag}">{esc(result.verdict.conclusion)}</span>'
            f"{esc(result.verdict.sentence)}</p>")


def _series_section(result: SeriesResult, full: bool = True) -> str:
    """A series' verdict, notes and (when `full`) its table of every metric's statistics."""
    series = result.series
    parts = [f"<h4>{esc(series.title)}</h4>"]
    if len(series.runs) < 2:
        parts.append(f'<p class="muted">One point ({esc(series.runs[0].label)}): values in the table '
                     "above; no curve, no verdict.</p>")
        return "".join(parts)
    parts.append(_verdict(result))
    parts.extend(f'<p class="note">{esc(note)}</p>' for note in result.notes)
    if result.analyses and not full:
        parts.append('<p class="muted">Every metric of this series: the explorer above (x axis: '
                     "training step) and the values table.</p>")
    elif result.analyses:
        examples = (f"paired bootstrap over the {result.n_examples} examples every model answered"
                    if result.n_examples else "no per-example records: no CIs")
        order = ("points: " + ", ".join(esc(label) for label in series.labels))
        parts.append(f'<p class="muted">{order}; {examples}.</p>')
        parts.append(_emergence_table(result))
    if result.mirage is not None:
        explained = result.verdict.mirage if result.verdict is not None else None
        share = f"; {explained.description}" if explained is not None else ""
        parts.append(f"<p>Mirage check: {esc(result.mirage.description)}{esc(share)}.</p>")
    return "".join(parts)


def _mirage_table(block: Block, cache: ScoreCache, x_axis: XAxis) -> str:
    header = ["model", X_AXES[x_axis], "observed exact_str_match", "mean p_tok", "mean L (tokens)",
              "predicted p_tok<sup>L</sup>", "mean of per-example p<sup>L</sup>", "observed − predicted"]
    rows = []
    for run in block.runs:
        row = mirage_row(cache, run)
        rows.append([esc(run.label), format_count(run.params(x_axis)), format_value(row.observed),
                     format_value(row.p_tok), format_value(row.n_tokens), format_value(row.predicted),
                     format_value(row.predicted_per_example), format_value(row.observed - row.predicted)])
    return ("<h3>Mirage check (Schaeffer et al. 2023)</h3><p>If each of L answer tokens is right with "
            "probability p_tok, exact match is about p_tok<sup>L</sup>: a smooth rise of p_tok then looks "
            "like a jump.</p>" + _table(header, rows))


def _block_section(page: Page, block: Block, cache: ScoreCache) -> str:
    parts = [f'<h2 id="{anchor(block.slug)}">{esc(block.task)} <span class="muted">({esc(block.setting)})'
             "</span></h2>"]
    parts.extend(figure_html(f) for f in page.figures if f.block_slug == block.slug)
    parts.append(_values_table(block, page.x_axis))
    parts.append("<h3>Emergence</h3>")
    # statistics tables for the size series and each group's largest model over steps (the
    # smaller models' step series keep their verdict sentence: the page stays readable and light)
    shown = {id(result) for result in headline_results(block, page.results[block.slug])}
    parts.extend(_series_section(result, id(result) in shown) for result in page.results[block.slug])
    if is_arithmetic_like(block):
        parts.append(_mirage_table(block, cache, page.x_axis))
    return "\n".join(parts)


def _provenance(runs: Sequence[Run]) -> str:
    models: dict[tuple, list[Run]] = {}
    for run in runs:
        models.setdefault((run.model, run.revision, run.dtype, run.boundary), []).append(run)
    header = ["model", "revision", "family", "step", "tokens seen", "total parameters",
              "non-embedding parameters", "dtype", "boundary", "shots", "runs", "wall time (s)"]
    rows = []
    for (model, revision, dtype, boundary), model_runs in models.items():
        first = model_runs[0]
        wall = sum(float(r.summary.get("provenance", {}).get("wall_s") or 0) for r in model_runs)
        shots = ", ".join(str(s) for s in sorted({r.shots for r in model_runs}))
        rows.append([esc(model), esc(revision), esc(first.family or "–"), format_count(first.step),
                     format_count(first.tokens_seen), format_count(first.total_params),
                     format_count(first.non_embedding_params), esc(dtype), esc(boundary), shots,
                     str(len(model_runs)), f"{wall:.1f}"])
    parts = ["<h3>Models</h3>", _table(header, rows, name_cols=2)]
    commits = Counter()
    versions = Counter()
    commands = Counter()
    for run in runs:
        provenance = run.summary.get("provenance", {})
        git = provenance.get("git", {})
        commits[f"{git.get('commit')}{' (dirty)' if git.get('dirty') else ''}"] += 1
        versions[json.dumps(provenance.get("versions", {}), sort_keys=True)] += 1
        commands[provenance.get("command", "–")] += 1
    parts.append("<h3>Harness commits</h3>" + _table(["commit", "runs"], [
        [f"<code>{esc(c)}</code>", str(n)] for c, n in commits.most_common()]))
    parts.append("<h3>Library versions</h3>" + _table(["versions", "runs"], [
        [esc(", ".join(f"{name} {version}" for name, version in json.loads(text).items())), str(n)]
        for text, n in versions.most_common()]))
    parts.append("<h3>Commands</h3>" + _table(["command", "runs"], [
        [f"<code>{esc(c)}</code>", str(n)] for c, n in commands.most_common()]))
    run_rows = []
    for run in runs:
        provenance, settings = run.summary.get("provenance", {}), run.summary.get("settings", {})
        git = provenance.get("git", {})
        run_rows.append([esc(run.rel_dir), esc(run.task), str(run.shots), str(run.n),
                         esc(settings.get("limit")), esc(settings.get("device", "–")),
                         esc(provenance.get("wall_s", "–")), esc(str(git.get("commit", ""))[:10]),
                         esc(provenance.get("scored", "–"))])
    parts.append(f"<details><summary>Every run ({len(runs)})</summary>" + _table(
        ["run folder", "task", "shots", "n", "limit", "device", "wall (s)", "commit", "scored"], run_rows)
        + "</details>")
    return "\n".join(parts)


def _shape_rules() -> str:
    return "".join(f"<li><i>{esc(rule.shape)}</i>: {esc(rule.text)}</li>" for rule in SHAPE_RULES)


def _conclusion_rules() -> str:
    return "".join(f"<li><i>{esc(rule.conclusion)}</i>: {esc(rule.text)}</li>" for rule in CONCLUSION_RULES)


def _method(page: Page) -> str:
    return (
        "<h2 id=\"method\">How to read this</h2><ul>"
        "<li><b>B</b> (breakthroughness, BIG-bench appendix): overall change divided by the root median "
        "squared step between successive models; a straight line over n points has B = n − 1. "
        "<code>inf</code>: the curve sits still, then jumps (most successive steps are exactly 0).</li>"
        "<li><b>R²</b>: straight-line fit of the value against log10(parameters), or log10(step + 1) for "
        "training steps. <b>τ</b>: Kendall's tau-b between scale order and value (1: always improving).</li>"
        f"<li>Intervals: {1 - ALPHA:.0%} percentile bootstrap over examples, {page.n_boot} resamples (seed "
        f"{page.seed}), <i>paired</i>: one resample of the examples for every model and metric. "
        "Lower-is-better metrics are negated before B and τ, so improvement is positive.</li>"
        "<li>Shapes (harness.emergence.SHAPE_RULES, the table the classifier applies; the first rule "
        f"that holds names the shape): <ol>{_shape_rules()}</ol>"
        "The verdict weighs the metrics drawn in the figures; diagnostics and mirage quantities are listed "
        "for reference.</li>"
        "<li>Conclusions (harness.emergence.CONCLUSION_RULES, over a series' headline metrics; the first "
        f"that holds): <ol>{_conclusion_rules()}</ol></li>"
        f"<li>Predictability (Wei et al. 2022): each series is fitted on all but its last point "
        f"({esc(LINEAR_FIT)} for log-likelihoods and unbounded metrics, {esc(LOGISTIC_FIT)} for metrics in "
        "[0, 1]) and extrapolated to the last; the error (observed − predicted, oriented) has a paired "
        f"bootstrap CI; the point counts as predicted when the CI reaches 0 or the error is under "
        f"{PREDICT_SHARE:g} of the series' range. Mirage fit: the share of exact match's rise from the "
        "smallest to the largest model that p_tok<sup>L</sup> (mean p_tok to the mean answer length) "
        "predicts, with a paired bootstrap CI.</li>"
        "<li>Series: a family's sizes at their final checkpoint (against parameters), and each size over "
        "its training checkpoints. Models without a family form the group <i>other</i>. Figures: metrics "
        "bounded in [0, 1] keep the full range; dashed grey lines are chance levels.</li></ul>")


def render_page(page: Page, cache: ScoreCache) -> str:
    n_models = len({(r.model, r.revision, r.dtype, r.boundary) for r in page.runs})
    sections = []
    shown_overviews = set()
    for block in page.blocks:
        key = f"{block.top_task}-shots{block.shots}" + ("" if block.demo_labels == "true" else
                                                       f"-{block.demo_labels}")
        overviews = [f for f in page.figures if f.overview_of == key]
        if overviews and key not in shown_overviews:
            shown_overviews.add(key)
            sections.append(f'<h2 id="{anchor("overview-" + key)}">{esc(block.top_task)}: overview '
                            f'<span class="muted">({esc(block.setting)})</span></h2>'
                            + "".join(figure_html(f) for f in overviews))
        sections.append(_block_section(page, block, cache))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(page.title)}</title><style>{CSS}{page.css}</style></head><body>
<h1>{esc(page.title)}</h1>
<p class="muted">Results <code>{esc(page.results_label)}</code>: {len(page.runs)} runs, {n_models} model
checkpoint(s), {len(page.blocks)} task setting(s); x axis: {esc(X_AXES[page.x_axis])}.
Latest run scored {esc(page.latest_scored)}; page by harness {esc(__version__)}
(<code>harness report</code>).</p>
{page.nav}
{page.top}
{"".join(sections)}
{"".join(section for _, _, section in page.sections)}
<h2 id="provenance">Provenance</h2>
{_provenance(page.runs)}
{_method(page)}
</body></html>
"""
