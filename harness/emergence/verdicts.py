"""Verdicts: each metric's shape (`classify`, through `rules.SHAPE_RULES`) and one task's conclusion
(`verdict`, through `CONCLUSION_RULES`), each naming its evidence: the shape's numbers, the jump
against the seed spread, the hold-out extrapolation error and, for exact match, the mirage fit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from harness.emergence.bootstrap import Estimate
from harness.emergence.mirage import MirageExplained
from harness.emergence.rules import JUMP_FACTOR, MIRAGE_EXPLAINS, SHAPE_RULES, Shape, Trend, evidence
from harness.emergence.series import SeriesAnalysis
from harness.emergence.statistics import Breakthrough
from harness.errors import HarnessError

Conclusion = Literal["metric artefact", "jump under every metric", "jump unexplained", "mixed",
                     "inverse scaling", "U-shaped", "smooth", "rising", "flat", "unclear"]

CONTINUOUS_FAMILIES = ("log-likelihood", "partial credit")

_PHRASES: dict[str, str] = {
    "flat": "is flat", "jump": "jumps", "drop": "drops abruptly", "smooth": "improves smoothly",
    "smooth decline": "worsens smoothly (inverse scaling)",
    "steady": "improves steadily, jump or smooth unresolved",
    "U-shaped": "is U-shaped (worsens, then recovers)",
    "inverted-U": "is an inverted U (improves, then worsens)",
    "rising": "rises, not monotonically", "declining": "declines, not monotonically (inverse scaling)",
    "unclear": "shows no clear trend",
}


def _where(analysis: SeriesAnalysis, i: int) -> str:
    return analysis.labels[i] if analysis.labels is not None else f"point {i}"


@dataclass(frozen=True)
class MetricVerdict:
    """How one metric's curve behaves, with the numbers the rule used (see `rules`)."""

    metric: str
    family: str
    shape: Shape
    b: Estimate
    tau: Estimate
    change: float
    jump_threshold: float
    breakthrough: Breakthrough
    share: Estimate = Estimate(math.nan, math.nan, math.nan)
    gain: Estimate = Estimate(math.nan, math.nan, math.nan)
    trend: Trend = "unclear"
    analysis: SeriesAnalysis | None = None

    def _shape_numbers(self) -> str:
        if self.shape == "flat":
            return f"best - worst = {self.gain.format(3)}"
        analysis = self.analysis
        bends = {} if analysis is None else {"U-shaped": analysis.valley, "inverted-U": analysis.peak}
        bend = bends.get(self.shape)
        if analysis is not None and bend is not None:
            return (f"extreme at {_where(analysis, bend.at)}: {bend.before.format()} before, "
                    f"{bend.after.format()} after")
        if self.shape in ("rising", "declining") and self.analysis is not None:
            return f"slope per decade {self.analysis.slope.format(3)}, tau = {self.tau.format(2)}"
        numbers = f"J = {self.share.format(2)}, B = {self.b.format()}, tau = {self.tau.format(2)}"
        if self.shape in ("jump", "drop"):
            description = self.breakthrough.description
            where = description if self.breakthrough.degenerate else description.split("; ", 1)[-1]
            numbers = f"{where}; {numbers}"
        return numbers

    @property
    def evidence(self) -> str:
        """Seed spread (where there are seeds) and the hold-out extrapolation, in words."""
        parts = []
        analysis = self.analysis
        if analysis is not None and analysis.seed_band is not None and self.shape != "flat":
            step = analysis.fall_gain if self.trend == "declining" else analysis.step_gain
            band = analysis.seed_band
            where = ("; no seeds at either end of the step: the series' largest measured spread"
                     if band.stand_in(*analysis.breakthrough.jump_between) else "")
            parts.append(f"step {step.format(3)} vs seed spread {analysis.seed_spread:.3g} "
                         f"({band.n_seeds} seeds{where})")
        if analysis is not None and analysis.extrapolation is not None and self.shape != "flat":
            last = _where(analysis, len(analysis.x) - 1)
            parts.append(f"largest point {analysis.extrapolation.describe(last)}")
        return "; ".join(parts)

    @property
    def phrase(self) -> str:
        """'exact_str_match jumps (largest step ...: J = 0.89 [0.8, 0.97], ...; largest point ...)'."""
        extra = self.evidence
        extra = f"; {extra}" if extra else ""
        return f"{self.metric} {_PHRASES[self.shape]} ({self._shape_numbers()}{extra})"

    @property
    def predicted(self) -> bool | None:
        """Whether the smaller points predict the largest one (None: no extrapolation)."""
        if self.analysis is None or self.analysis.extrapolation is None:
            return None
        return self.analysis.extrapolation.predicted_well


def classify(analysis: SeriesAnalysis) -> MetricVerdict:
    """The first rule of `rules.SHAPE_RULES` that holds, with its trend and the analysis as evidence."""
    numbers = evidence(analysis)
    rule = next(rule for rule in SHAPE_RULES if rule.test(numbers))
    return MetricVerdict(analysis.metric, analysis.family, rule.shape, analysis.b, analysis.tau,
                         analysis.change, JUMP_FACTOR * (len(analysis.x) - 1), analysis.breakthrough,
                         analysis.share, analysis.gain,
                         rule.trend, analysis)


@dataclass(frozen=True)
class TaskVerdict:
    """One task's verdict: each metric's shape, the conclusion, and the sentence saying both."""

    task: str
    metrics: tuple[MetricVerdict, ...]
    conclusion: Conclusion
    sentence: str
    mirage: MirageExplained | None = None


@dataclass(frozen=True)
class Groups:
    """A task's metric verdicts by what they do, and the mirage fit: what a conclusion rule reads."""

    jumps: tuple[MetricVerdict, ...]
    smooth: tuple[MetricVerdict, ...]
    moving: tuple[MetricVerdict, ...]
    rising: tuple[MetricVerdict, ...]
    declining: tuple[MetricVerdict, ...]
    bends: tuple[MetricVerdict, ...]
    mirage: MirageExplained | None

    @property
    def gradual(self) -> tuple[MetricVerdict, ...]:
        """Log-likelihood or partial-credit metrics that rise without a jump (smoothly, steadily,
        or overall with a positive slope): the gradual improvement a jump can hide behind."""
        return tuple(v for v in self.rising if v.family in CONTINUOUS_FAMILIES and v.shape != "jump")

    @property
    def mirage_explains(self) -> bool:
        """p_tok^L accounts for the rise, and a continuous metric rises without a jump: when p_tok
        itself jumps, p_tok^L following it explains nothing (a scratchpad's final answer)."""
        fraction = None if self.mirage is None else self.mirage.fraction
        return (bool(self.gradual) and fraction is not None and fraction.has_ci
                and fraction.ci_low >= MIRAGE_EXPLAINS)


def _groups(verdicts: Sequence[MetricVerdict], mirage: MirageExplained | None) -> Groups:
    def having(test: Callable[[MetricVerdict], bool]) -> tuple[MetricVerdict, ...]:
        return tuple(v for v in verdicts if test(v))

    return Groups(having(lambda v: v.shape == "jump"), having(lambda v: v.shape == "smooth"),
                  having(lambda v: v.shape != "flat"), having(lambda v: v.trend == "rising"),
                  having(lambda v: v.trend == "declining"),
                  having(lambda v: v.trend in ("U-shaped", "inverted-U")), mirage)


def _families(verdicts: Sequence[MetricVerdict]) -> str:
    return ", ".join(dict.fromkeys(v.family or v.metric for v in verdicts))


def _from_to(verdicts: Sequence[MetricVerdict]) -> str:
    """'target_logprob -18.7 at pico-16k to -41.7 at pico-942k' for each verdict's series."""
    parts = []
    for v in verdicts:
        a = v.analysis
        if a is None:
            parts.append(v.metric)
            continue
        parts.append(f"{v.metric} {a.point_values[0]:.3g} at {_where(a, 0)} to {a.point_values[-1]:.3g} at "
                     f"{_where(a, len(a.x) - 1)}")
    return ", ".join(parts)


def _inverse(g: Groups) -> str:
    return (f"performance falls with scale under {_families(g.declining)} ({_from_to(g.declining)}: "
            "inverse scaling)")


def _artefact(g: Groups) -> str:
    parts = [f"emergent under {_families(g.jumps)}"]
    if g.smooth:
        parts.append(f"smooth under {_families(g.smooth)}")
    gradual = [v for v in g.gradual if v not in g.smooth]
    if gradual:
        parts.append(f"rising without a jump under {_families(gradual)}")
    if g.declining:
        parts.append(f"declining under {_families(g.declining)}")
    if g.mirage_explains:
        parts.append("p_tok^L accounts for the rise")
    return f"the jump comes from the metric ({', '.join(parts)})"


@dataclass(frozen=True)
class ConclusionRule:
    """One row of the conclusion table: `verdict` takes the first whose test holds."""

    conclusion: Conclusion
    test: Callable[[Groups], bool]
    say: Callable[[Groups], str]
    text: str


CONCLUSION_RULES: tuple[ConclusionRule, ...] = (
    ConclusionRule("metric artefact",
                   lambda g: bool(g.jumps) and (bool(g.smooth) or bool(g.gradual) or g.mirage_explains),
                   _artefact,
                   "a metric jumps while another rises smoothly, or a log-likelihood or partial-credit "
                   "metric rises without a jump (smoothly, steadily, or overall), or p_tok^L accounts "
                   "for at least "
                   f"{MIRAGE_EXPLAINS:g} of exact match's rise (lower CI bound) while a log-likelihood or "
                   "partial-credit metric rises without a jump (Schaeffer et al. 2023)"),
    ConclusionRule("jump under every metric", lambda g: bool(g.jumps) and len(g.jumps) == len(g.moving) >= 2,
                   lambda g: "every metric that moves jumps: no smooth metric explains the jump",
                   "two or more metrics move and all of them jump"),
    ConclusionRule("jump unexplained", lambda g: bool(g.jumps),
                   lambda g: "no metric improves smoothly beside the jump",
                   "a jump, nothing smooth beside it"),
    ConclusionRule("mixed", lambda g: bool(g.rising) and bool(g.declining),
                   lambda g: (f"the metrics disagree: {_families(g.rising)} rises, "
                              f"{_families(g.declining)} declines"),
                   "one metric rises while another declines"),
    ConclusionRule("inverse scaling", lambda g: bool(g.declining),
                   _inverse,
                   "a metric declines and none rises"),
    ConclusionRule("U-shaped", lambda g: bool(g.bends) and not g.rising,
                   lambda g: f"{_families(g.bends)} bends: scale does not act in one direction",
                   "a metric is U-shaped or an inverted U, none rises or declines throughout"),
    ConclusionRule("smooth", lambda g: bool(g.smooth), lambda g: "no metric jumps: improvement is smooth",
                   "no jump; a metric rises smoothly"),
    ConclusionRule("rising", lambda g: bool(g.rising),
                   lambda g: "metrics rise, none clearly jumps or is smooth",
                   "a metric rises (steadily or overall), none jumps, none is smooth"),
    ConclusionRule("flat", lambda g: not g.moving, lambda g: "flat under every metric at these scales",
                   "every metric is flat"),
    ConclusionRule("unclear", lambda g: True, lambda g: "no clear pattern", "anything else"),
)


def _unpredicted(verdicts: Sequence[MetricVerdict]) -> str:
    """Wei et al. 2022's test, said for the metrics that jump or rise."""
    chosen = [v for v in verdicts if v.trend == "rising" and v.predicted is not None]
    missed = [v.metric for v in chosen if not v.predicted]
    if not chosen:
        return ""
    if missed:
        return f"; the smaller points do not predict the largest under {', '.join(missed)}"
    return "; the smaller points predict the largest under every rising metric"


def verdict(task: str, analyses: Mapping[str, SeriesAnalysis],
            mirage: MirageExplained | None = None) -> TaskVerdict:
    """'task: m1 jumps (...), m2 improves smoothly (...): the jump comes from the metric (...).'

    The first rule of `CONCLUSION_RULES` that holds names the conclusion; the sentence carries
    every metric's phrase (shape and evidence), Wei et al.'s predictability and the mirage fit.
    """
    if not analyses:
        raise HarnessError(f"{task}: no metrics to give a verdict on")
    verdicts = tuple(classify(a if a.metric == name else replace(a, metric=name))
                     for name, a in analyses.items())
    groups = _groups(verdicts, mirage)
    rule = next(rule for rule in CONCLUSION_RULES if rule.test(groups))
    text = rule.say(groups) + _unpredicted(verdicts)
    if mirage is not None:
        text += f"; {mirage.description}"
    sentence = f"{task}: {', '.join(v.phrase for v in verdicts)}: {text}."
    return TaskVerdict(task, verdicts, rule.conclusion, sentence, mirage)
