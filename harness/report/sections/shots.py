"""Shots as an axis: a task with true-label runs at two or more shot counts in one group (family).

The few-shot gain of a model is (metric at k shots) - (metric at the fewest shots, usually 0),
per example, paired over the examples both runs answered, mean with a bootstrap CI. Whether the
gain appears suddenly or gradually with size is harness.emergence on the gain series
(per-example gains of every model, paired over the examples all of them answered): B, J,
Kendall tau with CIs, `classify` and `verdict`, exactly as for a metric. Runs without stored
per-example scores fall back to their summaries' means, and the sentences say "no CI".

Drawn: per task and group, the key metrics against size, one line per shot count (shades of one
blue, a marker and dash per count), and below them the paired gain with its CI; per top task
and group with several subtasks, an overview of exact match per subtask.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from harness.emergence import (
    ALPHA,
    Estimate,
    MetricVerdict,
    SeriesAnalysis,
    TaskVerdict,
    analyze_series,
    classify,
)
from harness.emergence import verdict as task_verdict
from harness.errors import HarnessError
from harness.metrics import METRICS
from harness.report.axes import ScaleAxis
from harness.report.data import (
    Block,
    Run,
    ScoreCache,
    Series,
    common_examples,
    has_values,
    score_matrix,
    slugify,
    summary_value,
)
from harness.report.html import figures_html, metric_header, sentences_html, table, value_cell, verdict_box
from harness.report.section import Drawn, FigureFile, Figures, Inputs, PageSection
from harness.report.text import esc, value_text, wrap
from harness.stats import bootstrap_mean_ci

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from harness.report.figure_writer import FigureWriter

SHOT_METRICS = ("exact_str_match", "multiple_choice_grade", "target_logprob")
BRIEF = 4  # more one-model tasks than this: counted, not listed, in summary.md


@dataclass(frozen=True)
class PairedGain:
    """One model's few-shot gain: metric at `shot_run`'s shots minus at `base_run`'s, per example."""

    base_run: Run
    shot_run: Run
    metric: str
    gain: Estimate  # mean over the examples both runs scored, with its bootstrap CI
    n_examples: int  # 0: no records, the difference of the summaries' means


@dataclass(frozen=True)
class GainSeries:
    """The gain of one metric at one shot count over the models of a group, ordered by size."""

    metric: str
    base_shots: int
    shots: int
    gains: tuple[PairedGain, ...]
    x: tuple[float, ...]
    analysis: SeriesAnalysis | None  # None for a single model
    shape: MetricVerdict | None
    n_examples: int  # examples every run of the series answered (0: point values, no CI)
    sentence: str

    @property
    def name(self) -> str:
        return f"{self.shots}-shot gain in {self.metric}"


@dataclass(frozen=True)
class ShotsComparison:
    """One task and group at several shot counts: a size series per count, gains over the fewest."""

    task: str
    group: str
    series: tuple[Series, ...]  # one per shot count, fewest shots first
    gains: tuple[GainSeries, ...]
    verdicts: tuple[TaskVerdict, ...]  # one per shot count above the fewest, over its gain metrics

    @property
    def shots(self) -> tuple[int, ...]:
        return tuple(series.runs[0].shots for series in self.series)

    @property
    def slug(self) -> str:
        return f"{slugify(self.task)}-{slugify(self.group)}"

    @property
    def metrics(self) -> tuple[str, ...]:
        runs = [run for series in self.series for run in series.runs]
        return tuple(m for m in SHOT_METRICS if has_values(runs, m))


@dataclass(frozen=True)
class ShotsTask:
    """The comparisons of one top task and group (every subtask): what one overview figure shows."""

    top_task: str
    group: str
    comparisons: tuple[ShotsComparison, ...]

    @property
    def slug(self) -> str:
        return f"{slugify(self.top_task)}-{slugify(self.group)}"


# --------------------------------------------------------------------------------------
# Gathering


def paired_gain(cache: ScoreCache, base: Run, shot: Run, metric: str, n_boot: int, seed: int) -> PairedGain:
    """Mean over common examples of score(shot) - score(base), bootstrap CI; summaries without records."""
    idxs = sorted(cache.idxs(base) & cache.idxs(shot))
    if not idxs or METRICS[metric].kind != "example":
        difference = shot.mean(metric) - base.mean(metric)
        return PairedGain(base, shot, metric, Estimate(difference, math.nan, math.nan), 0)
    diff = cache.column(shot, metric, idxs) - cache.column(base, metric, idxs)
    mean, low, high = bootstrap_mean_ci(diff, n_boot, seed)
    return PairedGain(base, shot, metric, Estimate(mean, low, high), int(np.sum(~np.isnan(diff))))


_GAIN_WORDS = {
    "jump": "it appears suddenly with size", "drop": "it vanishes suddenly with size",
    "smooth": "it grows gradually with size", "smooth decline": "it shrinks gradually with size",
    "steady": "it changes steadily with size, sudden or gradual unresolved",
    "flat": "it does not change with size beyond noise", "unclear": "it shows no clear trend with size",
    "U-shaped": "it shrinks, then grows with size", "inverted-U": "it grows, then shrinks with size",
    "rising": "it grows with size overall, not monotonically",
    "declining": "it shrinks with size overall, not monotonically",
}


def _gain_sentence(task: str, group: str, series: GainSeries) -> str:
    first, last = series.gains[0], series.gains[-1]
    where = (f"paired over {series.n_examples} examples" if series.n_examples else
             "no CI: per-example scores not kept")
    head = (f"{task}, {group}: the {series.shots}-shot gain in {series.metric} over "
            f"{series.base_shots} shots ({where})")
    if series.shape is None:
        return f"{head} is {value_text(first.gain, True)} at {first.shot_run.label} (one model: no trend)."
    return (f"{head} goes from {value_text(first.gain, True)} at {first.shot_run.label} to "
            f"{value_text(last.gain, True)} at {last.shot_run.label}: {_GAIN_WORDS[series.shape.shape]} "
            f"({series.shape.phrase}).")


def _gain_analysis(pairs: Sequence[tuple[float, Run, Run]], gains: Sequence[PairedGain], metric: str,
                   inputs: Inputs) -> tuple[SeriesAnalysis | None, int]:
    """harness.emergence on the gains of two or more models (per example where every run has
    scores, else the point values); (None, 0) when the sizes are not distinct or a gain is NaN."""
    x = [p[0] for p in pairs]
    if len(pairs) < 2 or len(set(x)) < len(x):
        return None, gains[0].n_examples if len(pairs) == 1 else 0
    cache, n_examples = inputs.cache, 0
    idxs = common_examples(cache, [r for _, b, s in pairs for r in (b, s)])
    scores = np.array([g.gain.estimate for g in gains])  # no aligned examples: point values
    if idxs:
        per_example = (score_matrix(cache, [s for _, _, s in pairs], metric, idxs)
                       - score_matrix(cache, [b for _, b, _ in pairs], metric, idxs))
        if not np.isnan(per_example).all(axis=1).any():
            scores, n_examples = per_example, len(idxs)
    info = METRICS[metric]
    try:
        return analyze_series(x, scores, info.higher_is_better, inputs.n_boot, inputs.seed,
                              metric=f"{pairs[0][2].shots}-shot gain in {metric}", family=info.group,
                              labels=[s.label for _, _, s in pairs]), n_examples
    except HarnessError:  # e.g. a NaN gain: the table still shows every number
        return None, n_examples


def gain_series(task: str, group: str, base_runs: Sequence[Run], shot: Series, metric: str,
                inputs: Inputs) -> GainSeries | None:
    """The gain of each model of `shot` over its own checkpoint (same model and revision) in
    `base_runs` (the fewest-shot runs of the group); None when no checkpoint is in both."""
    by_checkpoint = {(run.model, run.revision): run for run in base_runs}
    pairs = []
    for index, run in enumerate(shot.runs):
        match = by_checkpoint.get((run.model, run.revision))
        if match is not None and not (math.isnan(run.mean(metric)) or math.isnan(match.mean(metric))):
            pairs.append((shot.x[index], match, run))
    if not pairs:
        return None
    gains = tuple(paired_gain(inputs.cache, b, s, metric, inputs.n_boot, inputs.seed) for _, b, s in pairs)
    analysis, n_examples = _gain_analysis(pairs, gains, metric, inputs)
    shape = classify(analysis) if analysis is not None else None
    result = GainSeries(metric, base_runs[0].shots, shot.runs[0].shots, gains, tuple(p[0] for p in pairs),
                        analysis, shape, n_examples, "")
    return replace(result, sentence=_gain_sentence(task, group, result))


def _comparison(task: str, group: str, members: Sequence[Block], inputs: Inputs) -> ShotsComparison | None:
    by_shots = {block.shots: series for block in members for series in block.size_series
                if series.group == group}
    if len(by_shots) < 2:
        return None
    ordered = tuple(by_shots[k] for k in sorted(by_shots))
    base, gains, verdicts = ordered[0], [], []
    base_block = next(block for block in members if block.shots == base.runs[0].shots)
    base_runs = [run for run in base_block.runs if run.group == group]
    for shot in ordered[1:]:
        found = [g for g in (gain_series(task, group, base_runs, shot, metric, inputs)
                             for metric in SHOT_METRICS) if g is not None]
        gains.extend(found)
        analysed = {g.name: g.analysis for g in found if g.analysis is not None}
        if analysed:
            verdicts.append(task_verdict(f"{task}, {group}, {shot.runs[0].shots}-shot gain over "
                                         f"{base.runs[0].shots} shots", analysed))
    return ShotsComparison(task, group, ordered, tuple(gains), tuple(verdicts))


def comparisons(inputs: Inputs) -> list[ShotsComparison]:
    """Every (task, group) with true-label size series at two or more shot counts."""
    by_task: dict[str, list[Block]] = {}
    for block in inputs.blocks:
        if block.demo_labels == "true":
            by_task.setdefault(block.task, []).append(block)
    found = []
    for task, members in by_task.items():
        if len({block.shots for block in members}) < 2:
            continue
        for group in dict.fromkeys(series.group for block in members for series in block.size_series):
            comparison = _comparison(task, group, members, inputs)
            if comparison is not None:
                found.append(comparison)
    return found


def gather(inputs: Inputs) -> tuple[ShotsTask, ...]:
    """The comparisons, grouped by top task and group (in order of first appearance)."""
    by_top: dict[tuple[str, str], list[ShotsComparison]] = {}
    for comparison in comparisons(inputs):
        top = comparison.task.split("/")[0].split("@")[0]
        by_top.setdefault((top, comparison.group), []).append(comparison)
    return tuple(ShotsTask(top, group, tuple(members)) for (top, group), members in by_top.items())


# --------------------------------------------------------------------------------------
# Figures


def _shot_lines(plot, ax, comparison: ShotsComparison, values_of, metric: str) -> None:
    """One line per shot count (shades of one blue, a marker and dash each), dodged a hair."""
    colors, count = plot.blues(len(comparison.series)), len(comparison.series)
    for index, series in enumerate(comparison.series):
        xs, values = values_of(series)
        if xs:
            plot.draw_estimates(ax, plot.dodge(xs, index, count), values, f"{series.runs[0].shots}-shot",
                                color=colors[index], marker=plot.MARKERS[index % len(plot.MARKERS)],
                                linestyle=plot.LINESTYLES[index % len(plot.LINESTYLES)])


def shots_figure(comparison: ShotsComparison, axis: ScaleAxis) -> Figure | None:
    from harness.report import plotting as plot

    metrics = comparison.metrics
    if not metrics:
        return None
    fig = plot.new_figure(plot.width_for(len(metrics)), 2 * plot.ROW_IN + 1.2)
    grid = fig.subplots(2, len(metrics), squeeze=False, sharex="col")
    runs = [run for series in comparison.series for run in series.runs]
    chance_drawn = False
    for col, metric in enumerate(metrics):
        top, bottom = grid[0][col], grid[1][col]

        def gains_of(series: Series, metric: str = metric):
            shots = series.runs[0].shots
            found = [g for g in comparison.gains if g.metric == metric and g.shots == shots]
            return (list(found[0].x), [g.gain for g in found[0].gains]) if found else ([], [])

        _shot_lines(plot, top, comparison,
                    lambda s, m=metric: (list(s.x), [summary_value(r, m) for r in s.runs]), metric)
        _shot_lines(plot, bottom, comparison, gains_of, metric)
        chance_drawn |= plot.draw_chance(top, runs, metric)
        bottom.axhline(0, color=plot.CHANCE_COLOR, linewidth=1, zorder=1)
        for ax in (top, bottom):
            plot.set_x(ax, "params", [x for series in comparison.series for x in series.x], axis)
        plot.set_y(top, metric)
        bottom.yaxis.set_major_locator(plot.MaxNLocator(5))
        top.set_title(plot.metric_title(metric))
        bottom.set_title(f"gain in {metric}")
        bottom.set_xlabel(axis.label)
    grid[0][0].set_ylabel("metric")
    grid[1][0].set_ylabel(f"k-shot − {comparison.shots[0]}-shot")
    plot.legend_below(fig, grid, chance_drawn)
    plot.wrapped_title(fig, f"{comparison.task}, {comparison.group}: shot counts against {axis.label} "
                       "(bottom: paired gain per model, 95% CI)")
    return fig


def shots_overview(task: ShotsTask, axis: ScaleAxis, metric: str = "exact_str_match") -> Figure | None:
    """`metric` per subtask (one panel each), a line per shot count: a task with several subtasks."""
    from harness.report import plotting as plot

    cells = [c for c in task.comparisons if metric in c.metrics]
    if len(cells) < 2:
        return None
    fig, grid, n_cols = plot.small_multiples(len(cells))
    for cell, (ax, comparison) in enumerate(zip(grid.ravel(), cells)):
        _shot_lines(plot, ax, comparison, lambda s: (list(s.x), [summary_value(r, metric) for r in s.runs]),
                    metric)
        plot.set_x(ax, "params", [x for series in comparison.series for x in series.x], axis)
        plot.set_y(ax, metric)
        ax.set_title(plot.subtask_title(comparison.task))
        if cell % n_cols == 0:
            ax.set_ylabel(metric)
        if cell >= len(cells) - n_cols:
            ax.set_xlabel(axis.label)
    plot.legend_below(fig, grid)
    plot.wrapped_title(fig, f"{task.top_task}, {task.group}: {metric} per subtask and shot count against "
                       f"{axis.label}")
    return fig


def draw(tasks: Sequence[ShotsTask], writer: FigureWriter, inputs: Inputs) -> list[Drawn]:
    """Per task and group its overview; per comparison its figure (a model alone in its group gets
    its shot counts in the overview, not a figure per subtask)."""
    drawn = []
    axis = inputs.axis
    for task in tasks:
        stem = f"fig-shots-overview-{task.slug}"
        writer.write(stem, shots_overview, task, axis)
        drawn.append(Drawn(task, FigureFile(stem, f"{task.top_task}, {task.group}: exact match per subtask, "
                                            "one line per shot count")))
        for comparison in task.comparisons:
            if len(task.comparisons) > 1 and max(len(series.runs) for series in comparison.series) < 2:
                continue
            stem = f"fig-shots-{comparison.slug}"
            writer.write(stem, shots_figure, comparison, axis)
            drawn.append(Drawn(comparison, FigureFile(stem, f"{comparison.task}, {comparison.group}: metrics "
                                                      "and paired few-shot gains against size")))
    return drawn


# --------------------------------------------------------------------------------------
# Page


def _gain_cell(gains: GainSeries, run: Run, inputs: Inputs) -> str:
    gain = next((g for g in gains.gains if g.shot_run.label == run.label), None)
    if gain is None:
        return "<td>–</td>"
    n = f"n = {gain.n_examples}" if gain.n_examples else "summaries, no CI"
    return (f'<td data-gain="{inputs.run_ids[gain.shot_run]}|{esc(gains.metric)}">'
            f'{esc(value_text(gain.gain, True))}<i>{n}</i></td>')


def _table(comparison: ShotsComparison, inputs: Inputs) -> str:
    axis = inputs.axis
    header = ["model", axis.label]
    for metric in comparison.metrics:
        header += [metric_header(metric, f"{wrap(metric)}<br>{k}-shot") for k in comparison.shots]
        header += [f"gain {k} − {comparison.shots[0]}<br>(paired)" for k in comparison.shots[1:]]
    # every checkpoint of a size series, at each shot count; the fewest-shot run a gain was taken from
    runs = {(r.shots, r.label): r for series in comparison.series for r in series.runs}
    runs.update({(g.base_run.shots, g.base_run.label): g.base_run for s in comparison.gains for g in s.gains})
    checkpoints = {run.label: run for run in runs.values()}
    rows = []
    for run in sorted(checkpoints.values(), key=lambda run: (axis.x(run) or 0.0, run.model, run.step or 0)):
        row = [esc(run.label), axis.cell(run)]
        for metric in comparison.metrics:
            row += [value_cell(runs.get((shots, run.label)), metric, inputs.run_ids)
                    for shots in comparison.shots]
            row += [_gain_cell(gains, run, inputs) for gains in comparison.gains if gains.metric == metric]
        rows.append(row)
    return table(header, rows)


def render(tasks: Sequence[ShotsTask], figures: Figures, inputs: Inputs) -> PageSection | None:
    if not tasks:
        return None
    parts = ['<h2 id="axis-shots">Shots as an axis</h2><p class="muted">Each task and family at several '
             "shot counts (true demonstration labels). The few-shot gain of a model is its metric at k shots "
             "minus at the fewest shots, per example, paired over the examples both runs answered (mean, "
             f"{1 - ALPHA:.0%} bootstrap CI). Whether the gain appears suddenly or gradually with size is "
             "read from the gain series with the same statistics as any metric (J, B, Kendall τ with "
             "paired CIs).</p>"]
    for task in tasks:
        parts.append(figures_html(figures.of(task)))
        for comparison in task.comparisons:
            parts.append(f"<h3>{esc(comparison.task)} <span class=\"muted\">({esc(comparison.group)}, shots "
                         f"{', '.join(str(k) for k in comparison.shots)})</span></h3>")
            parts.append(figures_html(figures.of(comparison)))
            parts.extend(verdict_box(v.conclusion, v.sentence) for v in comparison.verdicts)
            parts.append(sentences_html([g.sentence for g in comparison.gains]))
            parts.append(_table(comparison, inputs))
    return PageSection("axis-shots", "Shots as an axis", "\n".join(parts))


# --------------------------------------------------------------------------------------
# summary.md


def _gain_phrase(gains: GainSeries) -> str:
    if gains.shape is None:
        return f"{gains.metric} gain {value_text(gains.gains[0].gain, True)} (one model)"
    return (f"{gains.metric} gain {value_text(gains.gains[0].gain, True)} → "
            f"{value_text(gains.gains[-1].gain, True)}, {gains.shape.shape} "
            f"(J = {gains.shape.share.format(2)}, τ = {gains.shape.tau.format(2)})")


def _lines(comparison: ShotsComparison) -> list[str]:
    lines = []
    for k in comparison.shots[1:]:
        parts = [_gain_phrase(g) for g in comparison.gains if g.shots == k]
        conclusion = next((v.conclusion for v in comparison.verdicts if f"{k}-shot gain" in v.task), "")
        lead = f"**{conclusion}**, " if conclusion else ""
        lines.append(f"- {lead}{comparison.task}, {comparison.group}, {k}-shot gain over "
                     f"{comparison.shots[0]} shots: " + "; ".join(parts) + ".")
    return lines


def markdown(tasks: Sequence[ShotsTask], figures: Figures, link_prefix: str) -> list[str]:
    if not tasks:
        return []
    lines, single = ["", "## Shots as an axis", ""], []
    every = [comparison for task in tasks for comparison in task.comparisons]
    for comparison in every:
        if all(g.shape is None for g in comparison.gains):
            single.append(comparison)
        else:
            lines.extend(_lines(comparison))
    if 0 < len(single) <= BRIEF:
        for comparison in single:
            gains = "; ".join(f"{g.shots}-shot {g.metric} {value_text(g.gains[0].gain, True)}"
                              for g in comparison.gains)
            model = comparison.gains[0].gains[0].shot_run.label
            lines.append(f"- {comparison.task}, {model} (one model), gains over {comparison.shots[0]} shots: "
                         f"{gains}.")
    elif single:
        names = ", ".join(c.task.split("/")[-1] for c in single)
        lines.append(f"- {len(single)} tasks with one model at several shot counts (no trend over size): "
                     f"{names}; the paired gains are on the full page.")
    # per task its overview when one was drawn, else its comparisons' own figures
    shown = [f for task in tasks for f in (figures.of(task) or figures.of_any(task.comparisons))]
    if shown:
        lines.append("")
    lines.extend(f"![{f.caption}]({link_prefix}{f.png})" for f in shown)
    return lines
