"""Scratchpad vs direct: task T run by a family F (e.g. pico) and T@scratchpad run by F-scratchpad
(or by F itself), at the same shots.

Gathered: the sizes both have (matched by size label, "606k"), and the training steps of the
largest of them. The sentences name, for each, the first size (and step) where exact match
exceeds EM_THRESHOLD, with its CI, and compare the final answer's log-likelihood
(target_logprob: under the scratchpad, of the number after "so ", given the model's own worked
steps). Every number is a summary's mean and CI. Drawn: exact match and final-answer log-prob,
direct vs scratchpad, against size and against step for the largest size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.report.axes import ScaleAxis
from harness.report.data import Block, Run, Series, size_label, slugify, subseries, summary_value
from harness.report.html import figures_html, metric_header, sentences_html, table, value_cell
from harness.report.section import Drawn, FigureFile, Figures, Inputs, PageSection, sentences_markdown
from harness.report.text import esc, format_count, value_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from harness.report.figure_writer import FigureWriter

SCRATCHPAD = "@scratchpad"
EM_THRESHOLD = 0.2  # "the jump": the first size or step where exact match exceeds this
SCRATCHPAD_METRICS = ("exact_str_match", "target_logprob")


@dataclass(frozen=True)
class ScratchpadComparison:
    """Direct and scratchpad runs of one task at the same sizes (and steps of the largest size)."""

    task: str  # the direct task, e.g. arithmetic/2_digit_addition
    setting: str  # '0-shot'
    direct: Series  # size series, matched sizes only, in the same order as `scratchpad`
    scratchpad: Series
    direct_steps: Series | None  # the largest matched size over the steps both have
    scratchpad_steps: Series | None
    sentences: tuple[str, ...]

    @property
    def slug(self) -> str:
        return f"{slugify(self.task)}-{slugify(self.setting)}-{slugify(self.direct.group)}"


def _base_group(group: str) -> str:
    return group.replace("-scratchpad", "", 1)


def first_above(series: Series, metric: str = "exact_str_match",
                threshold: float = EM_THRESHOLD) -> int | None:
    """Index of the first point whose mean exceeds `threshold` (None: never)."""
    for index, run in enumerate(series.runs):
        if run.mean(metric) > threshold:
            return index
    return None


def _shift_sentence(what: str, kind: str, direct: Series, scratch: Series, names: Sequence[str]) -> str:
    """'over sizes, exact match first exceeds 0.2 at 606k directly (...) and at 232k with ...: ...'.

    `kind` "size" or "step" names the direction of a shift.
    """
    i, j = first_above(direct), first_above(scratch)

    def at(series: Series, index: int | None) -> str:
        if index is None:
            return "never"
        return f"at {names[index]} ({value_text(summary_value(series.runs[index], 'exact_str_match'))})"

    head = (f"over {what}, exact match first exceeds {EM_THRESHOLD:g} {at(direct, i)} directly and "
            f"{at(scratch, j)} with the scratchpad")
    earlier, later = ("smaller sizes", "larger sizes") if kind == "size" else ("earlier steps", "later steps")
    if i is None and j is None:
        return f"{head}: no jump past {EM_THRESHOLD:g} in either"
    if i is None:
        return f"{head}: only the scratchpad gets there, so it moves the jump to {earlier}"
    if j is None:
        return f"{head}: only the direct answer gets there, so the scratchpad moves the jump to {later}"
    if i == j:
        return f"{head}: the scratchpad does not move the jump"
    return f"{head}: the scratchpad moves the jump to {earlier if j < i else later}"


def _logprob_sentence(direct: Series, scratch: Series, names: Sequence[str]) -> str:
    pairs = [(d, s) for d, s in zip(direct.runs, scratch.runs)
             if not (math.isnan(d.mean("target_logprob")) or math.isnan(s.mean("target_logprob")))]
    if not pairs:
        return "no final-answer log-likelihood to compare"
    higher = sum(s.mean("target_logprob") > d.mean("target_logprob") for d, s in pairs)
    d, s = direct.runs[-1], scratch.runs[-1]
    n_scored = (s.metrics.get("target_logprob") or {}).get("n")
    scored = f", over the {n_scored} of {s.n} examples with a final answer" if n_scored is not None else ""
    return (f"the final answer's log-likelihood (target_logprob) at {names[-1]} is "
            f"{value_text(summary_value(d, 'target_logprob'))} directly and "
            f"{value_text(summary_value(s, 'target_logprob'))} with the scratchpad{scored}; the "
            f"scratchpad's is higher at {higher} of {len(pairs)} sizes")


def _matched_steps(direct_block: Block, scratch_block: Block, direct_run: Run,
                   scratch_run: Run) -> tuple[Series | None, Series | None]:
    d = next((s for s in direct_block.step_series if s.runs[0].model == direct_run.model
              and s.group == direct_run.group), None)
    s = next((s for s in scratch_block.step_series if s.runs[0].model == scratch_run.model
              and s.group == scratch_run.group), None)
    if d is None or s is None:
        return None, None
    common = set(d.x) & set(s.x)
    if len(common) < 2:
        return None, None
    return (subseries(d, [r for r, x in zip(d.runs, d.x) if x in common], f"direct ({d.name})"),
            subseries(s, [r for r, x in zip(s.runs, s.x) if x in common], f"scratchpad ({s.name})"))


def gather(inputs: Inputs) -> tuple[ScratchpadComparison, ...]:
    """Every (T, shots, labels) with both a direct and a T@scratchpad block of matching groups and sizes."""
    keyed = {(block.task, block.shots, block.demo_labels): block for block in inputs.blocks}
    found = []
    for (task, shots, labels), scratch_block in keyed.items():
        if not task.endswith(SCRATCHPAD):
            continue
        direct_block = keyed.get((task[: -len(SCRATCHPAD)], shots, labels))
        if direct_block is None:
            continue
        for scratch_series in scratch_block.size_series:
            candidates = [s for s in direct_block.size_series if s.group == _base_group(scratch_series.group)]
            if not candidates:
                continue
            direct_series = candidates[0]
            by_size = {size_label(run): run for run in direct_series.runs}
            pairs = [(by_size[size_label(run)], run) for run in scratch_series.runs
                     if size_label(run) in by_size]
            if not pairs:
                continue
            direct = subseries(direct_series, [d for d, _ in pairs], f"direct ({direct_series.group})")
            scratch = subseries(scratch_series, [s for _, s in pairs], f"scratchpad ({scratch_series.group})")
            names = [size_label(s) for _, s in pairs]
            direct_steps, scratch_steps = _matched_steps(direct_block, scratch_block, *pairs[-1])
            head = f"{direct_block.task} ({direct_block.setting}), {direct.group} vs {scratch.group}"
            parts = [_shift_sentence("sizes", "size", direct, scratch, names)]
            if direct_steps is not None and scratch_steps is not None:
                steps = [f"step {int(x)}" for x in direct_steps.x]
                parts.append(_shift_sentence(f"training steps of {names[-1]}", "step", direct_steps,
                                             scratch_steps, steps))
            parts.append(_logprob_sentence(direct, scratch, names))
            sentences = tuple(f"{head}: {part}." for part in parts)
            found.append(ScratchpadComparison(direct_block.task, direct_block.setting, direct, scratch,
                                              direct_steps, scratch_steps, sentences))
    return tuple(sorted(found, key=lambda c: (c.task, c.setting)))


# --------------------------------------------------------------------------------------
# Figures


def scratchpad_figure(comparison: ScratchpadComparison, axis: ScaleAxis) -> Figure:
    from harness.report import plotting as plot

    rows = [("params", comparison.direct, comparison.scratchpad)]
    if comparison.direct_steps is not None and comparison.scratchpad_steps is not None:
        rows.append(("steps", comparison.direct_steps, comparison.scratchpad_steps))
    fig = plot.new_figure(plot.width_for(2, 4.4), plot.ROW_IN * len(rows) + 1.1)
    grid = fig.subplots(len(rows), 2, squeeze=False)
    for (kind, direct, scratch), row in zip(rows, grid):
        for ax, metric in zip(row, SCRATCHPAD_METRICS):
            plot.draw_series(ax, direct, metric, "direct", color=plot.OKABE_ITO[0], marker="o")
            plot.draw_series(ax, scratch, metric, "scratchpad", color=plot.OKABE_ITO[4], marker="s",
                             linestyle="--")
            if metric == "exact_str_match":
                ax.axhline(EM_THRESHOLD, linestyle=":", color=plot.CHANCE_COLOR, linewidth=1.1,
                           label=f"{EM_THRESHOLD:g} (where the jump is read)")
            plot.set_x(ax, kind, [*direct.x, *scratch.x], axis)
            plot.set_y(ax, metric)
            where = "sizes" if kind == "params" else f"steps of {direct.runs[0].model}"
            ax.set_title(f"{plot.metric_title(metric)}, {where}")
            ax.set_xlabel(axis.label if kind == "params" else "training step")
    plot.legend_below(fig, grid)
    plot.wrapped_title(fig, f"{comparison.task} ({comparison.setting}): direct "
                       f"({comparison.direct.group}) vs scratchpad ({comparison.scratchpad.group})")
    return fig


def draw(comparisons: Sequence[ScratchpadComparison], writer: FigureWriter, inputs: Inputs) -> list[Drawn]:
    drawn = []
    for comparison in comparisons:
        stem = f"fig-scratchpad-{comparison.slug}"
        writer.write(stem, scratchpad_figure, comparison, inputs.axis)
        caption = f"{comparison.task} ({comparison.setting}): direct vs scratchpad"
        drawn.append(Drawn(comparison, FigureFile(stem, caption)))
    return drawn


# --------------------------------------------------------------------------------------
# Page


def _table(direct: Series, scratch: Series, names: Sequence[str], what: str, inputs: Inputs) -> str:
    header = [what, *(metric_header(metric, f"{metric} {how}") for metric in SCRATCHPAD_METRICS
                      for how in ("direct", "scratchpad"))]
    ids = inputs.run_ids
    rows = [[esc(name), *(value_cell(run, metric, ids) for metric in SCRATCHPAD_METRICS for run in (d, s))]
            for name, d, s in zip(names, direct.runs, scratch.runs)]
    return table(header, rows)


def render(comparisons: Sequence[ScratchpadComparison], figures: Figures,
           inputs: Inputs) -> PageSection | None:
    if not comparisons:
        return None
    parts = ['<h2 id="axis-scratchpad">Scratchpad vs direct</h2><p class="muted">The same task answered '
             "directly and with a worked scratchpad (<code>@scratchpad</code>: only the number after "
             "\"so \" is scored; its log-likelihood is given the model's own worked steps). The jump is read "
             f"as the first size or step where exact match exceeds {EM_THRESHOLD:g}.</p>"]
    for comparison in comparisons:
        parts.append(f"<h3>{esc(comparison.task)} <span class=\"muted\">({esc(comparison.setting)})"
                     "</span></h3>")
        parts.append(figures_html(figures.of(comparison)))
        parts.append(sentences_html(comparison.sentences))
        names = [size_label(run) for run in comparison.scratchpad.runs]
        parts.append(_table(comparison.direct, comparison.scratchpad, names, "size", inputs))
        if comparison.direct_steps is not None and comparison.scratchpad_steps is not None:
            steps = [format_count(x) for x in comparison.direct_steps.x]
            what = f"step ({esc(size_label(comparison.scratchpad_steps.runs[0]))})"
            parts.append(_table(comparison.direct_steps, comparison.scratchpad_steps, steps, what, inputs))
    return PageSection("axis-scratchpad", "Scratchpad vs direct", "\n".join(parts))


def markdown(comparisons: Sequence[ScratchpadComparison], figures: Figures, link_prefix: str) -> list[str]:
    return sentences_markdown("Scratchpad vs direct", comparisons, figures, link_prefix)
