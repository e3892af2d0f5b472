"""The explorer: one interactive Vega-Lite chart (through Altair) for everything the headlines omit.

The reader picks task, metric, x axis (parameters, or training step), shots and demonstration
labels from drop-downs; each line is a family's sizes at one checkpoint (x = parameters) or
one model over its checkpoints (x = step), with 95% CI bars, the chance level as a dashed
rule, and tooltips with model, n, mean and CI. Data are the summaries' means and CIs (the
numbers of the tables), inlined with Vega's scripts, so the page works offline from a file.

Altair and vl-convert-python (which carries Vega's scripts for inlining) are imported only
here, when a report is built; without them the page says how to get the explorer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from harness.report.data import Run, XAxis

# The explorer's metrics: a headline per family and the partial-credit ones (the tables hold
# every metric); more would multiply the inlined data.
EXPLORER_METRICS = ("exact_str_match", "multiple_choice_grade", "target_logprob", "correct_choice_prob",
                    "digit_accuracy", "token_edit_distance")
X_CHOICES = {"parameters": "x_params", "training step": "x_step"}
INSTALL_HINT = 'pip install -e ".[report]"'


def _round(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(f"{float(value):.4g}")


def explorer_data(runs: Sequence[Run], x_axis: XAxis) -> list[dict[str, Any]]:
    """One row per run with a mean of some explorer metric; each metric as [mean, CI low, CI high,
    n, chance] (one row per run, not per metric: a run's names are inlined once)."""
    rows = []
    for run in runs:
        row: dict[str, Any] = {"task": run.task, "shots": run.shots, "labels": run.demo_labels,
                               "model": run.label, "size_line": f"{run.group} @ {run.revision}",
                               "step_line": run.model, "x_params": run.params(x_axis),
                               "x_step": (run.step or 0) + 1}
        for metric in EXPLORER_METRICS:
            entry = run.metrics.get(metric) or {}
            if entry.get("mean") is not None:
                low, high = _round(entry.get("ci_low")), _round(entry.get("ci_high"))
                row[metric] = [_round(entry["mean"]), low, high, entry.get("n", run.n),
                               _round(entry.get("chance"))]
        if any(metric in row for metric in EXPLORER_METRICS):
            rows.append(row)
    return rows


def _select(name: str, options: Sequence[Any], label: str):
    import altair as alt

    return alt.param(name=name, value=options[0], bind=alt.binding_select(options=list(options), name=label))


def explorer_chart(runs: Sequence[Run], x_axis: XAxis):
    """The Altair chart, or None when there is nothing to explore."""
    import altair as alt

    rows = explorer_data(runs, x_axis)
    if not rows:
        return None
    tasks = sorted({r["task"] for r in rows})
    metrics = [m for m in EXPLORER_METRICS if any(m in r for r in rows)]
    task = _select("task", tasks, "task ")
    metric = _select("metric", metrics, "metric ")
    x_choice = _select("xaxis", list(X_CHOICES), "x axis ")
    shots = _select("shots", sorted({r["shots"] for r in rows}), "shots ")
    labels = _select("labels", sorted({r["labels"] for r in rows}, key=lambda v: (v != "true", v)),
                     "demonstration labels ")
    import pandas as pd

    # a DataFrame, so that Altair inlines the table once (top-level "datasets"), not once per layer
    base = alt.Chart(pd.DataFrame(rows)).transform_filter(
        "datum.task == task && datum.shots == shots && datum.labels == labels && isArray(datum[metric])"
    ).transform_calculate(
        x="xaxis == 'parameters' ? datum.x_params : datum.x_step",
        line="xaxis == 'parameters' ? datum.size_line : datum.step_line",
        mean="datum[metric][0]", lo="datum[metric][1]", hi="datum[metric][2]", n="datum[metric][3]",
        chance="datum[metric][4]")
    x = alt.X("x:Q", scale=alt.Scale(type="log"), title="parameters, or training step + 1 (log)")
    tooltip = [alt.Tooltip("model:N"), alt.Tooltip("n:Q"), alt.Tooltip("mean:Q"),
               alt.Tooltip("lo:Q", title="CI low"), alt.Tooltip("hi:Q", title="CI high")]
    lines = base.mark_line(point=True).encode(x=x, y=alt.Y("mean:Q", title="mean (95% CI)"),
                                              color=alt.Color("line:N", title="line"), tooltip=tooltip)
    bars = base.mark_errorbar().encode(x=x, y="lo:Q", y2="hi:Q", color="line:N")
    chance = base.mark_rule(strokeDash=[4, 4], color="#666").encode(y="mean(chance):Q")
    return alt.layer(lines, bars, chance).add_params(task, metric, x_choice, shots, labels).properties(
        width=760, height=340)


def render_explorer(runs: Sequence[Run], x_axis: XAxis) -> str:
    """The explorer as an HTML fragment with its data and Vega's scripts inline."""
    try:
        import altair  # noqa: F401
        import vl_convert  # noqa: F401
    except ImportError:
        return (f'<p class="muted">The interactive explorer needs Altair and vl-convert-python '
                f"(<code>{INSTALL_HINT}</code>); the tables below hold every number.</p>")
    chart = explorer_chart(runs, x_axis)
    if chart is None:
        return '<p class="muted">Nothing to explore.</p>'
    page = chart.to_html(inline=True, output_div="explorer-chart")
    # Altair writes a whole document; the page needs its style, div and scripts only
    body = re.sub(r"</?(html|head|body)>|<!DOCTYPE html>|<meta charset=\"UTF-8\">", "", page)
    return f'<div id="explorer">{body}</div>'
