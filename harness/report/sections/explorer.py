"""The explorer: one interactive Vega-Lite chart (through Altair) for everything the headlines omit.

The reader picks task, metric, x axis (parameters, training step, training compute or held-out
loss), shots and demonstration labels from drop-downs; each line is a family's sizes at one
checkpoint (x = parameters) or one model over its checkpoints (x = step, compute or loss: on
the last two every checkpoint of every size is a point, so an early checkpoint of a large model
and a late one of a small model meet at equal compute or equal loss), with 95% CI bars, the
chance level as a dashed rule, and tooltips with model, n, mean and CI. Held-out loss is drawn
in bits per byte on a reversed axis (lower loss to the right); a run without a value on the
chosen axis (compute where the training tokens are unknown, loss without a loss run) is not drawn.
The chart is compiled to a Vega spec when the page is built; its data are the page's JSON
block (the summaries' means and CIs, the numbers of the tables), which the page's script hands
to vega-embed: the page works offline from a file.

Altair and vl-convert-python (which carries the Vega bundle) are imported only here, when a
report is built; without them the page says how to get the explorer.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.report.data import Run
from harness.report.page_data import pack

# The explorer's metrics: a headline per family and the partial-credit ones (the tables hold
# every metric); more would multiply the inlined data.
EXPLORER_METRICS = ("exact_str_match", "multiple_choice_grade", "target_logprob", "correct_choice_prob",
                    "digit_accuracy", "token_edit_distance")
# Each x axis: the row field it reads (the page's script fills them) and what joins its points
X_CHOICES = {"parameters": ("x_params", "size_line"), "training step": ("x_step", "step_line"),
             "training compute": ("x_compute", "step_line"),
             "held-out loss (bits per byte)": ("x_bpb", "step_line")}
REVERSED = "held-out loss (bits per byte)"  # lower loss to the right, as in the report's figures
INSTALL_HINT = 'pip install -e ".[report]"'


def explorer_metrics(runs: Sequence[Run]) -> list[str]:
    """The explorer's metrics that some run has a value of."""
    return [m for m in EXPLORER_METRICS
            if any(run.metrics.get(m, {}).get("mean") is not None for run in runs)]


def _select(name: str, options: Sequence[Any], label: str):
    import altair as alt

    return alt.param(name=name, value=options[0], bind=alt.binding_select(options=list(options), name=label))


def _choose(part: int) -> str:
    """A Vega expression: the row field of the chosen x axis (`part` 0) or its line (1)."""
    expression = f"datum.{X_CHOICES['parameters'][part]}"
    for name, fields in reversed(list(X_CHOICES.items())[1:]):
        expression = f"xaxis == '{name}' ? datum.{fields[part]} : {expression}"
    return expression


def explorer_chart(runs: Sequence[Run]):
    """The Altair chart over the page's run table (named data "runs", filled by the page's script),
    or None when there is nothing to explore."""
    import altair as alt

    metrics = explorer_metrics(runs)
    if not metrics:
        return None
    task = _select("task", sorted({run.task for run in runs}), "task ")
    metric = _select("metric", metrics, "metric ")
    x_choice = _select("xaxis", list(X_CHOICES), "x axis ")
    shots = _select("shots", sorted({run.shots for run in runs}), "shots ")
    labels = _select("labels", sorted({run.demo_labels for run in runs}, key=lambda v: (v != "true", v)),
                     "demonstration labels ")
    base = alt.Chart(alt.Data(name="runs")).transform_filter(
        "datum.task == task && datum.shots == shots && datum.labels == labels && isArray(datum[metric])"
    ).transform_calculate(
        x=_choose(0), line=_choose(1),
        mean="datum[metric][0]", lo="datum[metric][1]", hi="datum[metric][2]", n="datum[metric][3]",
        chance="datum[metric][4]").transform_filter("isValid(datum.x) && datum.x > 0")
    x = alt.X("x:Q", scale=alt.Scale(type="log", reverse=alt.ExprRef(f"xaxis == '{REVERSED}'")),
              title="parameters, training step + 1, training compute (FLOPs) or held-out bits per byte "
                    "(log; loss reversed: lower to the right)")
    tooltip = [alt.Tooltip("model:N"), alt.Tooltip("n:Q"), alt.Tooltip("mean:Q"),
               alt.Tooltip("lo:Q", title="CI low"), alt.Tooltip("hi:Q", title="CI high")]
    lines = base.mark_line(point=True).encode(x=x, y=alt.Y("mean:Q", title="mean (95% CI)"),
                                              color=alt.Color("line:N", title="line"), tooltip=tooltip)
    bars = base.mark_errorbar().encode(x=x, y="lo:Q", y2="hi:Q", color="line:N")
    chance = base.mark_rule(strokeDash=[4, 4], color="#666").encode(y="mean(chance):Q")
    return alt.layer(lines, bars, chance).add_params(task, metric, x_choice, shots, labels).properties(
        width=760, height=340)


@functools.cache
def vega_script() -> str:
    """vega-embed with Vega and Vega-Lite, minified, as one script (vl-convert's bundle: the only
    one of its bundles that exposes a working entry point, `window.vegaEmbed`)."""
    import vl_convert

    return vl_convert.javascript_bundle()


@dataclass(frozen=True)
class Explorer:
    """The explorer's HTML (the chart's place) and its scripts (Vega, the compiled spec)."""

    html: str
    scripts: str = ""


def render_explorer(runs: Sequence[Run]) -> Explorer:
    """The explorer's place on the page and its scripts; the data are the page's JSON block."""
    try:
        import altair  # noqa: F401
        import vl_convert
    except ImportError:
        return Explorer(f'<p class="muted">The interactive explorer needs Altair and vl-convert-python '
                        f"(<code>{INSTALL_HINT}</code>); the tables below hold every number.</p>")
    chart = explorer_chart(runs)
    if chart is None:
        return Explorer('<p class="muted">Nothing to explore.</p>')
    spec = json.dumps(vl_convert.vegalite_to_vega(chart.to_dict()), separators=(",", ":"))
    spec = spec.replace("</", "<\\/")
    metrics = " ".join(explorer_metrics(runs))
    return Explorer(f'<div id="explorer"><div id="explorer-chart" data-metrics="{metrics}"></div></div>',
                    pack("vega-runtime", vega_script())
                    + f'<script type="application/json" id="explorer-spec">{spec}</script>')
