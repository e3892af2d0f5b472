"""Relabelled demonstrations: runs with flipped or unrelated demonstration labels (Wei et al. 2023).

Gathered: per task, shot count and group, the share of answers that follow the relabelled
demonstrations (follows_demonstrations for generations, follows_demonstrations_mc for choices,
whichever has values) against size, beside the same models' accuracy with true labels at the
same shot count. Every number is a summary's mean and CI. Drawn: the share per label mode
against size, beside accuracy (true labels solid, relabelled dashed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.report.axes import ScaleAxis
from harness.report.data import Run, Series, has_values, slugify, summary_value
from harness.report.html import figures_html, metric_header, sentences_html, table, value_cell
from harness.report.section import Drawn, FigureFile, Figures, Inputs, PageSection, sentences_markdown
from harness.report.text import esc, value_text, wrap

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from harness.report.figure_writer import FigureWriter

# follows-the-demonstrations metric -> the accuracy it is read beside
FOLLOW_METRICS = {"follows_demonstrations": "exact_str_match",
                  "follows_demonstrations_mc": "multiple_choice_grade"}
LABEL_MODES = ("flipped", "unrelated")


@dataclass(frozen=True)
class RelabelComparison:
    """One task, shot count and group with relabelled demonstrations; true labels beside them."""

    task: str
    shots: int
    group: str
    series: tuple[tuple[str, Series], ...]  # (label mode, size series): "true" first when present
    follow_metrics: tuple[str, ...]  # those with values, in FOLLOW_METRICS order
    sentences: tuple[str, ...]

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(mode for mode, _ in self.series if mode != "true")

    @property
    def slug(self) -> str:
        return f"{slugify(self.task)}-shots{self.shots}-{slugify(self.group)}"

    def series_for(self, mode: str) -> Series | None:
        return next((series for m, series in self.series if m == mode), None)

    def rows(self) -> list[tuple[Run, dict[str, Run]]]:
        """(first run, label mode -> run) per model and revision, ordered by size."""
        table: dict[tuple[str, str], dict[str, Run]] = {}
        order: list[Run] = []
        for mode, series in self.series:
            for run in series.runs:
                key = (run.model, run.revision)
                if key not in table:
                    order.append(run)
                table.setdefault(key, {})[mode] = run
        order.sort(key=lambda run: run.non_embedding_params)
        return [(run, table[(run.model, run.revision)]) for run in order]


def _range(series: Series, metric: str) -> str:
    runs = [run for run in series.runs if not math.isnan(run.mean(metric))]
    if not runs:
        return "no values"
    if len(runs) == 1:
        return f"{value_text(summary_value(runs[0], metric))} at {runs[0].label}"
    return (f"from {value_text(summary_value(runs[0], metric))} at {runs[0].label} to "
            f"{value_text(summary_value(runs[-1], metric))} at {runs[-1].label}")


def gather(inputs: Inputs) -> tuple[RelabelComparison, ...]:
    """Every (task, shots, group) with flipped or unrelated label runs."""
    blocks = inputs.blocks
    keyed = {(block.task, block.shots, block.demo_labels): block for block in blocks}
    task_order = [block.task for block in blocks]
    tasks = sorted({(task, shots) for task, shots, labels in keyed if labels in LABEL_MODES},
                   key=lambda key: (task_order.index(key[0]), key[1]))
    found = []
    for task, shots in tasks:
        modes = [m for m in ("true", *LABEL_MODES) if (task, shots, m) in keyed]
        groups = list(dict.fromkeys(s.group for m in modes if m != "true"
                                    for s in keyed[(task, shots, m)].size_series))
        for group in groups:
            series = tuple((m, s) for m in modes for s in keyed[(task, shots, m)].size_series
                           if s.group == group)
            relabelled = [s for m, s in series if m != "true"]
            runs = [run for s in relabelled for run in s.runs]
            follow = tuple(m for m in FOLLOW_METRICS if has_values(runs, m))
            if not follow:
                continue
            true_series = next((s for m, s in series if m == "true"), None)
            sentences = []
            for metric in follow:
                accuracy = FOLLOW_METRICS[metric]
                for mode, s in series:
                    if mode == "true":
                        continue
                    text = (f"{task} ({shots}-shot, {mode} labels), {group}: {metric} goes "
                            f"{_range(s, metric)}; {accuracy} under {mode} labels {_range(s, accuracy)}")
                    if true_series is not None:
                        true_range = _range(true_series, accuracy)
                        text += f"; with true labels ({shots}-shot), {accuracy} {true_range}"
                    else:
                        text += f"; no {shots}-shot run with true labels to compare"
                    sentences.append(text + ".")
            found.append(RelabelComparison(task, shots, group, series, follow, tuple(sentences)))
    return tuple(found)


# --------------------------------------------------------------------------------------
# Figures


def relabel_figure(comparison: RelabelComparison, axis: ScaleAxis) -> Figure:
    from harness.report import plotting as plot

    colors = {"true": plot.OKABE_ITO[0], "flipped": plot.OKABE_ITO[1], "unrelated": plot.OKABE_ITO[2]}
    metrics = comparison.follow_metrics
    fig = plot.new_figure(plot.width_for(2, 4.4), plot.ROW_IN * len(metrics) + 1.1)
    grid = fig.subplots(len(metrics), 2, squeeze=False)
    for metric, (left, right) in zip(metrics, grid):
        accuracy = FOLLOW_METRICS[metric]
        xs = []
        for index, (mode, series) in enumerate(comparison.series):
            style = {"color": colors.get(mode, plot.OKABE_ITO[index]),
                     "marker": plot.MARKERS[index % len(plot.MARKERS)]}
            xs.extend(series.x)
            if mode != "true":
                plot.draw_series(left, series, metric, f"{mode} labels", **style)
            plot.draw_series(right, series, accuracy, f"{mode} labels",
                             linestyle="-" if mode == "true" else "--", **style)
        for ax, name in ((left, metric), (right, accuracy)):
            plot.set_x(ax, "params", xs, axis)
            plot.set_y(ax, name)
            ax.set_xlabel(axis.label)
        left.set_title(f"{metric}: follows the relabelled demonstrations")
        right.set_title(f"{accuracy} (accuracy), {comparison.shots}-shot")
    plot.legend_below(fig, grid)
    plot.wrapped_title(fig, f"{comparison.task} ({comparison.shots}-shot), {comparison.group}: relabelled "
                       "demonstrations")
    return fig


def draw(comparisons: Sequence[RelabelComparison], writer: FigureWriter, inputs: Inputs) -> list[Drawn]:
    drawn = []
    for comparison in comparisons:
        stem = f"fig-relabel-{comparison.slug}"
        writer.write(stem, relabel_figure, comparison, inputs.axis)
        drawn.append(Drawn(comparison, FigureFile(stem, f"{comparison.task} ({comparison.shots}-shot), "
                                                  f"{comparison.group}: relabelled demonstrations")))
    return drawn


# --------------------------------------------------------------------------------------
# Page


def _table(comparison: RelabelComparison, inputs: Inputs) -> str:
    modes = [mode for mode, _ in comparison.series]
    header = ["model", inputs.axis.label]
    for metric in comparison.follow_metrics:
        accuracy = FOLLOW_METRICS[metric]
        header += [metric_header(metric, f"{wrap(metric)}<br>{mode} labels") for mode in comparison.modes]
        header += [metric_header(accuracy, f"{wrap(accuracy)}<br>{mode} labels") for mode in modes]
    rows, ids = [], inputs.run_ids
    for run, by_mode in comparison.rows():
        row = [esc(run.label), inputs.axis.cell(run)]
        for metric in comparison.follow_metrics:
            row += [value_cell(by_mode.get(mode), metric, ids) for mode in comparison.modes]
            row += [value_cell(by_mode.get(mode), FOLLOW_METRICS[metric], ids) for mode in modes]
        rows.append(row)
    return table(header, rows)


def render(comparisons: Sequence[RelabelComparison], figures: Figures, inputs: Inputs) -> PageSection | None:
    if not comparisons:
        return None
    parts = ['<h2 id="axis-relabel">Flipped and unrelated demonstration labels</h2><p class="muted">'
             "Few-shot prompts whose demonstrations carry flipped or unrelated labels (Wei et al. 2023): the "
             "share of answers that follow the relabelled demonstrations, beside accuracy with true labels "
             "at the same shot count (and accuracy under the relabelled prompts, dashed).</p>"]
    for comparison in comparisons:
        parts.append(f"<h3>{esc(comparison.task)} <span class=\"muted\">({comparison.shots}-shot, "
                     f"{esc(comparison.group)})</span></h3>")
        parts.append(figures_html(figures.of(comparison)))
        parts.append(sentences_html(comparison.sentences))
        parts.append(_table(comparison, inputs))
    return PageSection("axis-relabel", "Relabelled demonstrations", "\n".join(parts))


def markdown(comparisons: Sequence[RelabelComparison], figures: Figures, link_prefix: str) -> list[str]:
    return sentences_markdown("Relabelled demonstrations", comparisons, figures, link_prefix)
