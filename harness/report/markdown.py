"""summary.md: the verdicts and one compact table per task family, for a README.

Short by design: the size series and, per family, the largest model over training steps
(every series is on the HTML page); each verdict as metrics grouped by shape, with B and tau.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.report.analysis import SeriesResult, headline_results
from harness.report.data import Block, FigureFile
from harness.report.html import format_value

# The metrics whose B a compact table shows, when the task has them.
KEY_METRICS = ("exact_str_match", "multiple_choice_grade", "target_logprob", "correct_choice_prob",
               "digit_accuracy", "token_edit_distance")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


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


def render_summary(results_label: str, blocks: Sequence[Block], results: dict[str, tuple[SeriesResult, ...]],
                   figures: Sequence[FigureFile], link_prefix: str, extra: Sequence[str] = ()) -> str:
    """`link_prefix` is prepended to figure file names: 'results/report/' (repo root) or ''.

    `extra`: lines appended at the end (the axis sections, harness.report.axes_html.render_markdown).
    """
    lines = ["# Emergence report", "",
             f"From `harness report {results_label}`: size series and each family's largest model over "
             "training steps; every series, number, CI and provenance is on the full page "
             f"[index.html]({link_prefix}index.html).", "", "## Verdicts", ""]
    verdicts = [(block, result) for block in blocks for result in headline_results(block, results[block.slug])
                if result.verdict]
    if not verdicts:
        lines.append("No series of two or more models: nothing to give a verdict on.")
    lines.extend(f"- **{result.verdict.conclusion}**, {block.task} ({block.setting}; {result.series.title}): "
                 f"{compact_verdict(result)}." for block, result in verdicts if result.verdict)
    families: dict[str, list[Block]] = {}
    for block in blocks:
        families.setdefault(block.top_task, []).append(block)
    for family, members in families.items():
        lines += ["", f"## {family}", ""]
        analysed = [(block, result) for block in members
                    for result in headline_results(block, results[block.slug]) if result.analyses]
        metrics = [m for m in KEY_METRICS if any(m in result.analyses for _, result in analysed)]
        if analysed:
            lines.append("| task | shots | series | points | conclusion | "
                         + " | ".join(f"B {m}" for m in metrics) + " |")
            lines.append("|" + "---|" * (5 + len(metrics)))
            for block, result in analysed:
                cells = [block.task, block.setting, result.series.title, str(len(result.series.runs)),
                         result.verdict.conclusion if result.verdict else "–"]
                for metric in metrics:
                    shape = result.shapes.get(metric)
                    cells.append("–" if shape is None else f"{shape.b.format()} ({shape.shape})")
                lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        else:
            lines.append("One model per series: values only (see the full page).")
            for block in members:
                for run in block.runs:
                    values = ", ".join(f"{m} {format_value(run.mean(m))}" for m in KEY_METRICS
                                       if m in block.metrics())
                    lines.append(f"- {block.task} ({block.setting}), {run.label}: {values}")
        slugs = {block.slug for block in members}
        keys = {f"{family}-shots{b.shots}" + ("" if b.demo_labels == "true" else f"-{b.demo_labels}")
                for b in members}
        shown = [f for f in figures if f.overview_of in keys]
        if not shown:
            shown = [f for f in figures if f.block_slug in slugs]
        if shown:
            lines.append("")
        lines.extend(f"![{f.caption}]({link_prefix}{f.png})" for f in shown)
    lines.extend(extra)
    return "\n".join(lines) + "\n"
