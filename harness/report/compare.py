"""Two more axes, gathered from a report's blocks: scratchpad vs direct, relabelled demonstrations.

* scratchpad: task T run by a family F (e.g. pico) and T@scratchpad run by F-scratchpad (or by
  F itself), at the same shots: the sizes both have (matched by size label, "606k"), and the
  training steps of the largest of them. The sentence names, for each, the first size (and step)
  where exact match exceeds EM_THRESHOLD, with its CI, and compares the final answer's
  log-likelihood (target_logprob: under the scratchpad, of the number after "so ", given the
  model's own worked steps).
* relabelled demonstrations: runs with flipped or unrelated demonstration labels (Wei et al.
  2023): the share of answers that follow the relabelled demonstrations (follows_demonstrations
  for generations, follows_demonstrations_mc for choices, whichever has values) against size,
  beside the same models' accuracy with true labels at the same shot count.

Every number is a summary's mean and CI. `gather_axes` collects these and harness.report.axes's
(shots, calibration) into one `AxesReport`. No plotting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from harness.report.analysis import SeriesResult
from harness.report.axes import (
    CalibrationBlock,
    ShotsComparison,
    calibration_blocks,
    has_values,
    shots_comparisons,
    size_label,
    subseries,
    summary_value,
    value_text,
)
from harness.report.data import Block, Run, ScoreCache, Series, slugify

SCRATCHPAD = "@scratchpad"
EM_THRESHOLD = 0.2  # "the jump": the first size or step where exact match exceeds this
SCRATCHPAD_METRICS = ("exact_str_match", "target_logprob")
# follows-the-demonstrations metric -> the accuracy it is read beside
FOLLOW_METRICS = {"follows_demonstrations": "exact_str_match",
                  "follows_demonstrations_mc": "multiple_choice_grade"}
LABEL_MODES = ("flipped", "unrelated")


# --------------------------------------------------------------------------------------
# Scratchpad vs direct


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


def scratchpad_comparisons(blocks: Sequence[Block]) -> list[ScratchpadComparison]:
    """Every (T, shots, labels) with both a direct and a T@scratchpad block of matching groups and sizes."""
    keyed = {(block.task, block.shots, block.demo_labels): block for block in blocks}
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
    return sorted(found, key=lambda c: (c.task, c.setting))


# --------------------------------------------------------------------------------------
# Flipped / unrelated demonstration labels


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


def relabel_comparisons(blocks: Sequence[Block]) -> list[RelabelComparison]:
    """Every (task, shots, group) with flipped or unrelated label runs."""
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
    return found



# --------------------------------------------------------------------------------------
# Every axis of a report


@dataclass(frozen=True)
class AxesReport:
    """What the report shows beyond size and metric; an empty tuple is a section not shown."""

    shots: tuple[ShotsComparison, ...] = ()
    calibration: tuple[CalibrationBlock, ...] = ()
    scratchpad: tuple[ScratchpadComparison, ...] = ()
    relabel: tuple[RelabelComparison, ...] = ()


def gather_axes(blocks: Sequence[Block], results: dict[str, tuple[SeriesResult, ...]], cache: ScoreCache,
                n_boot: int = 1000, seed: int = 0) -> AxesReport:
    """Shots, calibration, scratchpad and relabelled-demonstration sections, where the results have them."""
    return AxesReport(tuple(shots_comparisons(blocks, cache, n_boot, seed)),
                      tuple(calibration_blocks(blocks, results, cache)),
                      tuple(scratchpad_comparisons(blocks)), tuple(relabel_comparisons(blocks)))
