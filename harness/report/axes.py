"""Axes beyond size and metric, gathered from a report's blocks: shots, calibration. No plotting.

Each section exists only when the results hold its data (scratchpad vs direct and relabelled
demonstrations are in `harness.report.compare`):

* shots: a task with true-label runs at two or more shot counts in one group (family). The
  few-shot gain of a model is (metric at k shots) - (metric at the fewest shots, usually 0),
  per example, paired over the examples both runs answered, mean with a bootstrap CI. Whether
  the gain appears suddenly or gradually with size is harness.emergence on the gain series
  (per-example gains of every model, paired over the examples all of them answered): B, J,
  Kendall tau with CIs, `classify` and `verdict`, exactly as for a metric.
* calibration: every block whose runs scored expected_calibration_error (choice log-probs):
  the reliability bins behind ECE per model (`metrics.reliability_bins`), and ECE / Brier
  against size; the trend is the block's own size-series analysis (Kendall tau with its paired
  bootstrap CI), read in ECE's own orientation (negative tau: ECE falls with size).

Runs without stored per-example scores fall back to their summaries' means, and the sentences
say "no CI".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from harness.emergence import (
    Estimate,
    MetricVerdict,
    SeriesAnalysis,
    TaskVerdict,
    analyze_series,
    classify,
    verdict,
)
from harness.errors import HarnessError
from harness.metrics import ECE_BINS, METRICS, PIECES, reliability_bins_from_pieces
from harness.report.analysis import SeriesResult
from harness.report.data import Block, Run, ScoreCache, Series, common_examples, score_matrix, slugify
from harness.report.html import format_value
from harness.stats import bootstrap_mean_ci

SHOT_METRICS = ("exact_str_match", "multiple_choice_grade", "target_logprob")
CALIBRATION_METRICS = ("expected_calibration_error", "brier_score")
NO_ESTIMATE = Estimate(math.nan, math.nan, math.nan)


def summary_value(run: Run, metric: str) -> Estimate:
    """A summary's mean and 95% CI of `metric` (NaN where the run has none)."""
    entry = run.metrics.get(metric) or {}

    def get(key: str) -> float:
        value = entry.get(key)
        return math.nan if value is None else float(value)

    return Estimate(get("mean"), get("ci_low"), get("ci_high"))


def has_values(runs: Sequence[Run], metric: str) -> bool:
    return any(not math.isnan(run.mean(metric)) for run in runs)


def value_text(estimate: Estimate, signed: bool = False) -> str:
    """'0.420 [0.330, 0.520]' with the page's number format; '[no CI]' without an interval."""
    text = format_value(estimate.estimate)
    if signed and not math.isnan(estimate.estimate) and estimate.estimate >= 0:
        text = "+" + text
    if not estimate.has_ci:
        return f"{text} [no CI]"
    return f"{text} [{format_value(estimate.ci_low)}, {format_value(estimate.ci_high)}]"


def size_label(run: Run) -> str:
    """'16k' for pico-16k of family pico (what matches sizes across families); else the model."""
    prefix = f"{run.family}-" if run.family else ""
    return run.model[len(prefix):] if prefix and run.model.startswith(prefix) else run.model


def subseries(series: Series, runs: Sequence[Run], name: str | None = None) -> Series:
    """`series` restricted to `runs` (kept in the series' order)."""
    keep = [i for i, run in enumerate(series.runs) if any(run is other for other in runs)]
    return Series(series.kind, series.group, name or series.name, series.title,
                  tuple(series.runs[i] for i in keep), tuple(series.x[i] for i in keep))


# --------------------------------------------------------------------------------------
# Shots


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
    def overview_key(self) -> str:
        """The key of the overview (all subtasks of the task) this comparison is drawn in."""
        return f"{slugify(self.task.split('/')[0].split('@')[0])}-{slugify(self.group)}"

    @property
    def metrics(self) -> tuple[str, ...]:
        runs = [run for series in self.series for run in series.runs]
        return tuple(m for m in SHOT_METRICS if has_values(runs, m))


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


def gain_series(task: str, group: str, base_runs: Sequence[Run], shot: Series, metric: str,
                cache: ScoreCache, n_boot: int, seed: int) -> GainSeries | None:
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
    gains = tuple(paired_gain(cache, b, s, metric, n_boot, seed) for _, b, s in pairs)
    x = tuple(p[0] for p in pairs)
    labels = [s.label for _, _, s in pairs]
    analysis, n_examples = None, gains[0].n_examples if len(pairs) == 1 else 0
    if len(pairs) >= 2 and len(set(x)) == len(x):
        idxs = common_examples(cache, [r for _, b, s in pairs for r in (b, s)])
        scores = np.array([g.gain.estimate for g in gains])  # no aligned examples: point values
        if idxs:
            per_example = (score_matrix(cache, [s for _, _, s in pairs], metric, idxs)
                           - score_matrix(cache, [b for _, b, _ in pairs], metric, idxs))
            if not np.isnan(per_example).all(axis=1).any():
                scores, n_examples = per_example, len(idxs)
        metric_info = METRICS[metric]
        try:
            analysis = analyze_series(list(x), scores, metric_info.higher_is_better, n_boot, seed,
                                      metric=f"{shot.runs[0].shots}-shot gain in {metric}",
                                      family=metric_info.family, labels=labels)
        except HarnessError:  # e.g. a NaN gain: the table still shows every number
            analysis = None
    shape = classify(analysis) if analysis is not None else None
    result = GainSeries(metric, base_runs[0].shots, shot.runs[0].shots, gains, x, analysis, shape,
                        n_examples, "")
    return replace(result, sentence=_gain_sentence(task, group, result))


def shots_comparisons(blocks: Sequence[Block], cache: ScoreCache, n_boot: int = 1000,
                      seed: int = 0) -> list[ShotsComparison]:
    """Every (task, group) with true-label size series at two or more shot counts."""
    by_task: dict[str, list[Block]] = {}
    for block in blocks:
        if block.demo_labels == "true":
            by_task.setdefault(block.task, []).append(block)
    comparisons = []
    for task, members in by_task.items():
        if len({block.shots for block in members}) < 2:
            continue
        groups = list(dict.fromkeys(series.group for block in members for series in block.size_series))
        for group in groups:
            by_shots = {block.shots: series for block in members for series in block.size_series
                        if series.group == group}
            if len(by_shots) < 2:
                continue
            ordered = tuple(by_shots[k] for k in sorted(by_shots))
            base, gains, verdicts = ordered[0], [], []
            base_block = next(block for block in members if block.shots == base.runs[0].shots)
            base_runs = [run for run in base_block.runs if run.group == group]
            for shot in ordered[1:]:
                found = [gain_series(task, group, base_runs, shot, metric, cache, n_boot, seed)
                         for metric in SHOT_METRICS]
                found = [g for g in found if g is not None]
                gains.extend(found)
                analysed = {g.name: g.analysis for g in found if g.analysis is not None}
                if analysed:
                    verdicts.append(verdict(f"{task}, {group}, {shot.runs[0].shots}-shot gain over "
                                            f"{base.runs[0].shots} shots", analysed))
            comparisons.append(ShotsComparison(task, group, ordered, tuple(gains), tuple(verdicts)))
    return comparisons


# --------------------------------------------------------------------------------------
# Calibration


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of a reliability diagram (`metrics.reliability_bins`); NaN accuracy when empty."""

    lo: float
    hi: float
    count: int
    mean_confidence: float
    accuracy: float


@dataclass(frozen=True)
class ReliabilityPanel:
    run: Run
    bins: tuple[ReliabilityBin, ...]

    @property
    def n(self) -> int:
        """Records with choice log-probs: the bins' counts add up to it."""
        return sum(b.count for b in self.bins)


@dataclass(frozen=True)
class CalibrationBlock:
    """One block's size series of a group with ECE: reliability bins per model, the ECE trend."""

    block: Block
    series: Series
    panels: tuple[ReliabilityPanel, ...]  # models whose records have choice log-probs
    ece_tau: Estimate  # Kendall tau of ECE against size, ECE's own orientation (negative: falls)
    sentence: str
    trend_key: str = ""  # the ECE/Brier figure it is drawn in (`calibration_blocks`)

    @property
    def slug(self) -> str:
        return f"{self.block.slug}-{slugify(self.series.group)}"

    @property
    def trend(self) -> str:
        """'improves', 'worsens', 'no clear trend' or 'no change' (`calibration_trend`); '' for one model."""
        return calibration_trend(self.ece_tau) if len(self.series.runs) > 1 else ""



def reliability_panel(cache: ScoreCache, run: Run, n_bins: int = ECE_BINS) -> ReliabilityPanel | None:
    idxs = sorted(cache.idxs(run))
    pieces = {piece: cache.column(run, piece, idxs) for piece in PIECES}
    bins = tuple(ReliabilityBin(b["lo"], b["hi"], int(b["count"]), b["mean_confidence"], b["accuracy"])
                 for b in reliability_bins_from_pieces(pieces, n_bins)) if idxs else ()
    return ReliabilityPanel(run, bins) if sum(b.count for b in bins) else None


def _flip(estimate: Estimate) -> Estimate:
    """An oriented (improvement-positive) estimate back in a lower-is-better metric's own sign."""
    return Estimate(-estimate.estimate, -estimate.ci_high, -estimate.ci_low, estimate.degenerate_fraction,
                    estimate.undefined_fraction)


TRENDS = ("improves", "worsens", "no clear trend", "no change")


def calibration_trend(tau: Estimate) -> str:
    """One of TRENDS from Kendall tau of ECE against size: the CI below 0 "improves", above "worsens"."""
    if math.isnan(tau.estimate):
        return "no change"
    low, high = (tau.ci_low, tau.ci_high) if tau.has_ci else (tau.estimate, tau.estimate)
    return "improves" if high < 0 else "worsens" if low > 0 else "no clear trend"


def _trend_words(tau: Estimate) -> str:
    trend = calibration_trend(tau)
    suffix = "" if tau.has_ci or trend == "no change" else " (no CI)"
    if trend == "no change":
        return "ECE does not change with size"
    if trend == "no clear trend":
        return "no clear calibration trend with size " + ("(τ's CI includes 0)" if tau.has_ci else "(no CI)")
    return f"calibration {trend} with size{suffix}"


def _calibration_sentence(block: Block, series: Series, tau: Estimate) -> str:
    head = f"{block.task} ({block.setting}), {series.title}"
    ece = [(run, summary_value(run, "expected_calibration_error")) for run in series.runs]
    ece = [(run, value) for run, value in ece if not math.isnan(value.estimate)]
    brier = [summary_value(run, "brier_score") for run, _ in ece]
    if len(ece) == 1:
        return f"{head}: one model, ECE {value_text(ece[0][1])} at {ece[0][0].label}: no trend."
    (first, v0), (last, v1) = ece[0], ece[-1]
    return (f"{head}: ECE goes from {value_text(v0)} at {first.label} to {value_text(v1)} at {last.label} "
            f"(Brier {format_value(brier[0].estimate)} → {format_value(brier[-1].estimate)}); Kendall τ of "
            f"ECE against size = {tau.format(2)}: {_trend_words(tau)}.")


MAX_TREND_CELLS = 20  # panels of one ECE/Brier figure before it is split by setting


def _trend_keys(found: Sequence[CalibrationBlock]) -> list[str]:
    """One ECE/Brier figure per task and group ('arithmetic-tiny'), split by setting when it has more
    than MAX_TREND_CELLS panels ('arithmetic-shots0-tiny')."""
    coarse = [f"{slugify(c.block.top_task)}-{slugify(c.series.group)}" for c in found]
    keys = []
    for key, calibration in zip(coarse, found):
        if coarse.count(key) > MAX_TREND_CELLS:
            block = calibration.block
            labels = "" if block.demo_labels == "true" else f"-{block.demo_labels}"
            key = f"{slugify(block.top_task)}-shots{block.shots}{labels}-{slugify(calibration.series.group)}"
        keys.append(key)
    return keys


def calibration_blocks(blocks: Sequence[Block], results: dict[str, tuple[SeriesResult, ...]],
                       cache: ScoreCache) -> list[CalibrationBlock]:
    """Every size series (of every block) whose runs have an ECE."""
    found = []
    for block in blocks:
        for series in block.size_series:
            if not has_values(series.runs, "expected_calibration_error"):
                continue
            panels = tuple(p for p in (reliability_panel(cache, run) for run in series.runs) if p is not None)
            tau = NO_ESTIMATE
            for result in results.get(block.slug, ()):
                if result.series is series and "expected_calibration_error" in result.analyses:
                    tau = _flip(result.analyses["expected_calibration_error"].tau)
            sentence = _calibration_sentence(block, series, tau)
            found.append(CalibrationBlock(block, series, panels, tau, sentence))
    # a task's settings in reading order: 0-shot, 1-shot, 1-shot flipped, 1-shot unrelated, 3-shot
    task_order: dict[str, int] = {}
    for block in blocks:
        task_order.setdefault(block.task, len(task_order))
    found.sort(key=lambda c: (task_order[c.block.task], c.block.shots, c.block.demo_labels != "true",
                              c.block.demo_labels))
    return [replace(c, trend_key=key) for c, key in zip(found, _trend_keys(found))]
