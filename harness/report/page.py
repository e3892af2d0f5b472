"""The report page and summary.md, assembled from the sections (`harness.report.sections`).

One static HTML file: inline CSS, figures by relative path, one JSON block of every run and
summary value (`page_data`) and one small script that draws the value tables, the list of
every run and the explorer from it (`script`). Order: the answer first (headline panels with
the verdict matrix beside them), the explorer, every task setting (`sizes`), the axis sections
(shots, calibration, scratchpad, relabelled demonstrations), provenance, the method.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from harness import __version__
from harness.emergence import ALPHA, CONCLUSION_RULES, SHAPE_RULES
from harness.emergence.extrapolation import LINEAR_FIT, LOGISTIC_FIT, PREDICT_SHARE
from harness.metrics import METRICS
from harness.report.axes import ScaleAxis
from harness.report.data import Block, Run
from harness.report.html import table
from harness.report.page_data import packed_section, page_data, render_data
from harness.report.script import PAGE_SCRIPT
from harness.report.section import Figures, Inputs, PageSection
from harness.report.sections import (
    calibration,
    explorer,
    headline,
    relabel,
    scratchpad,
    shots,
    sidebyside,
    sizes,
)
from harness.report.text import anchor, esc, format_count

# The sections after "every task setting", in page order (every metric side by side first): each
# gathers, draws, renders and writes its summary.md lines through the same four functions
# (`harness.report.section`).
AXIS_SECTIONS = (sidebyside, shots, calibration, scratchpad, relabel)

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
th { background: #f4f6f8; text-align: center; }
td:first-child, th:first-child, table.n2 td:nth-child(2), table.n2 th:nth-child(2) {
  text-align: left; white-space: nowrap; }
td i { display: block; color: #666; font-size: 11px; white-space: nowrap; font-style: normal; }
.verdict { background: #f7f9fc; border-left: 4px solid #0072B2; padding: 6px 10px; margin: 6px 0; }
.tag { display: inline-block; padding: 0 6px; border-radius: 3px; font-size: 12px; color: #fff;
       background: #555; margin-right: 6px; }
.tag.artefact { background: #0072B2; } .tag.jump { background: #D55E00; } .tag.smooth { background: #009E73; }
.tag.inverse { background: #CC79A7; }
.note { color: #8a4b00; } .muted { color: #666; } nav li { margin: 1px 0; }
details summary { cursor: pointer; color: #0b5394; }
nav details { margin: 2px 0; } nav ul { margin: 2px 0 2px 0; padding-left: 22px; }
"""


@dataclass(frozen=True)
class Gathered:
    """Every section's items, gathered once: what the figures and the page are made of."""

    top: headline.Top
    sizes: tuple[sizes.TaskGroup, ...]
    axes: tuple[tuple[object, object], ...]  # (section module, its items), AXIS_SECTIONS order


def gather(inputs: Inputs) -> Gathered:
    return Gathered(headline.gather(inputs), sizes.gather(inputs),
                    tuple((section, section.gather(inputs)) for section in AXIS_SECTIONS))


def draw(gathered: Gathered, writer, inputs: Inputs) -> list:
    """Every figure of the page, scheduled with `writer`, in page order."""
    drawn = headline.draw(gathered.top, writer, inputs) + sizes.draw(gathered.sizes, writer, inputs)
    for section, items in gathered.axes:
        drawn += section.draw(items, writer, inputs)  # type: ignore[attr-defined]
    return drawn


def _modelstable(runs: Sequence[Run]) -> str:
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
    return "<h3>Models</h3>" + table(header, rows, name_cols=2)


def _provenance(runs: Sequence[Run]) -> str:
    """Models, harness commits, library versions and commands (counted), then every run (drawn by
    the page's script from the JSON block)."""
    parts = [_modelstable(runs)]
    commits = Counter()
    versions = Counter()
    commands = Counter()
    for run in runs:
        provenance = run.summary.get("provenance", {})
        git = provenance.get("git", {})
        commits[f"{git.get('commit')}{' (dirty)' if git.get('dirty') else ''}"] += 1
        versions[json.dumps(provenance.get("versions", {}), sort_keys=True)] += 1
        commands[provenance.get("command", "–")] += 1
    parts.append("<h3>Harness commits</h3>" + table(["commit", "runs"], [
        [f"<code>{esc(c)}</code>", str(n)] for c, n in commits.most_common()]))
    parts.append("<h3>Library versions</h3>" + table(["versions", "runs"], [
        [esc(", ".join(f"{name} {version}" for name, version in json.loads(text).items())), str(n)]
        for text, n in versions.most_common()]))
    parts.append("<h3>Commands</h3>" + table(["command", "runs"], [
        [f"<code>{esc(c)}</code>", str(n)] for c, n in commands.most_common()]))
    parts.append(f'<details><summary>Every run ({len(runs)})</summary><div class="scroll" id="every-run">'
                 "</div></details>")
    return "\n".join(parts)


def _shape_rules() -> str:
    return "".join(f"<li><i>{esc(rule.shape)}</i>: {esc(rule.text)}</li>" for rule in SHAPE_RULES)


def _conclusion_rules() -> str:
    return "".join(f"<li><i>{esc(rule.conclusion)}</i>: {esc(rule.text)}</li>" for rule in CONCLUSION_RULES)


def _method(n_boot: int, seed: int, axis: ScaleAxis) -> str:
    return (
        "<h2 id=\"method\">How to read this</h2><ul>"
        "<li><b>B</b> (breakthroughness, BIG-bench appendix): overall change divided by the root median "
        "squared step between successive models; a straight line over n points has B = n − 1. "
        "<code>inf</code>: the curve sits still, then jumps (most successive steps are exactly 0).</li>"
        f"<li><b>R²</b>: straight-line fit of the value against {esc(axis.statistic)} for size series, "
        "or log10(step + 1) for training steps. <b>τ</b>: Kendall's tau-b between scale order and value "
        "(1: always improving).</li>"
        f"<li>Intervals: {1 - ALPHA:.0%} percentile bootstrap over examples, {n_boot} resamples (seed "
        f"{seed}), <i>paired</i>: one resample of the examples for every model and metric. "
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
        f"<li>Series: a family's sizes at their final checkpoint (against {esc(axis.label)}; a model "
        "without a value on that axis is left out and named), and each size over its training "
        "checkpoints. Models without a family form the group <i>other</i>. Figures: metrics bounded "
        "in [0, 1] keep the full range; dashed grey lines are chance levels.</li></ul>")


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


def _data_block(gathered: Gathered, inputs: Inputs) -> str:
    """Every run and value, and what a section adds for its script-drawn tables."""
    present = {name for block in inputs.blocks for name in block.metrics()}
    metrics = [name for name in METRICS if name in present] + sorted(present - set(METRICS))
    data = page_data(inputs.runs, metrics, inputs.axis)
    data.update(sizes.data(gathered.sizes, inputs))
    data.update(headline.data(gathered.top))
    return render_data(data)


@dataclass(frozen=True)
class PageInfo:
    """What the page's head says: its title, the results folder, the newest scoring time."""

    title: str
    results_label: str
    latest_scored: str  # the newest summary's scoring time (not now: the page is reproducible)


def render_page(info: PageInfo, gathered: Gathered, figures: Figures, inputs: Inputs,
                extra: Sequence[PageSection] = ()) -> str:
    """The page; `extra` sections (built outside the gather -> draw flow, e.g. the scale
    section read from the index) follow the axis sections."""
    explored = explorer.render_explorer(inputs.runs)
    axis_sections = [section.render(items, figures, inputs)  # type: ignore[attr-defined]
                     for section, items in gathered.axes]
    shown: list[PageSection] = [s for s in axis_sections if s is not None] + list(extra)
    nav = render_nav(inputs.blocks, [("answer", "Answer: headline per task"), ("matrix", "Verdict matrix"),
                                     ("explorer-section", "Explorer"), *[(s.anchor, s.title) for s in shown],
                                     ("provenance", "Provenance"), ("method", "How to read this")])
    runs = inputs.runs
    n_models = len({(r.model, r.revision, r.dtype, r.boundary) for r in runs})
    caveat = f" {esc(inputs.axis.caveat)}" if inputs.axis.caveat else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(info.title)}</title><style>{CSS}{headline.HEADLINE_CSS}</style></head><body>
<h1>{esc(info.title)}</h1>
<p class="muted">Results <code>{esc(info.results_label)}</code>: {len(runs)} runs, {n_models} model
checkpoint(s), {len(inputs.blocks)} task setting(s); x axis: {esc(inputs.axis.label)}.{caveat}
Latest run scored {esc(info.latest_scored)}; page by harness {esc(__version__)}
(<code>harness report</code>).</p>
{nav}
{headline.render(gathered.top, figures)}
<h2 id="explorer-section">Explorer: every task, metric and setting</h2>{explored.html}
{sizes.render(gathered.sizes, figures, inputs).html}
{"".join(packed_section(section.html, f"packed-{section.anchor}") for section in shown)}
<h2 id="provenance">Provenance</h2>
{_provenance(runs)}
{_method(inputs.n_boot, inputs.seed, inputs.axis)}
{_data_block(gathered, inputs)}{explored.scripts}<script>{PAGE_SCRIPT}</script>
</body></html>
"""


def render_summary(results_label: str, gathered: Gathered, figures: Figures, link_prefix: str,
                   inputs: Inputs) -> str:
    """summary.md: the verdicts, one compact table per task, the axis sections' lines.

    `link_prefix` is prepended to figure file names: 'results/report/' (repo root) or ''.
    """
    lines = ["# Emergence report", "",
             f"From `harness report {results_label}`: size series and each family's largest model over "
             "training steps; every series, number, CI and provenance is on the full page "
             f"[index.html]({link_prefix}index.html).", ""]
    lines += sizes.markdown(gathered.sizes, figures, link_prefix, inputs)
    for section, items in gathered.axes:
        lines += section.markdown(items, figures, link_prefix)  # type: ignore[attr-defined]
    return "\n".join(lines) + "\n"
