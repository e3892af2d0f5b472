"""Every metric, as a pure function of `ExampleRecord`s, with its metadata beside it.

A per-example metric is `(record) -> float`; an aggregate metric is `(records) -> float`.
`METRICS` is the table, filled by `@metric` (or `@aggregate_metric`) beside each function:
group, direction, range, chance level, description. Adding a metric is one decorated
function. An example a metric cannot score (no generation, no log-probs, a target that is not
a number...) gets NaN, which `summarize` counts (`n_nan`); it is never a silent 0.

Conventions shared by the log-prob metrics:
* A continuation's log-prob is the sum of its per-token log-probs (`math.fsum`: exactly
  rounded, so the sum does not depend on summation order or batching).
* "The best target" is the target with the highest summed log-prob (first one on a tie).
* Choice probabilities are the softmax of the choices' summed log-probs (BIG-bench's
  `exp(normalised log-prob)`).

No torch, transformers or matplotlib here: metrics re-score saved runs on any machine.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from harness.answers import INTEGER
from harness.calibration import (
    CALIBRATION_PIECES,
    ECE_BINS,
    CalibrationParts,
    bins_table,
    brier_statistic,
    ece_statistic,
)
from harness.errors import HarnessError
from harness.records import ExampleRecord
from harness.stats import bootstrap_ci, bootstrap_mean_ci, bootstrap_weighted_ci
from harness.tasks import chance_grade

NAN = float("nan")
INF = math.inf

Records = Sequence[ExampleRecord]
Kind = Literal["example", "aggregate"]
Group = Literal["exact match", "multiple choice", "log-likelihood", "partial credit", "mirage",
                "diagnostic", "in-context"]


# --------------------------------------------------------------------------------------
# Shared pieces


def _damaged(record: ExampleRecord, what: str) -> HarnessError:
    return HarnessError(f"{record.task} example {record.idx}: {what}; the record is damaged: "
                        "rerun the example to regenerate it")


def _choice_sums(record: ExampleRecord) -> np.ndarray | None:
    """Summed log-prob per choice (float64, `choices` order), or None when not computed."""
    if not record.choices or not record.choice_logprobs:
        return None
    if not len(record.choice_logprobs) == len(record.choices) == len(record.target_scores):
        raise _damaged(record, f"{len(record.choices)} choices, {len(record.choice_logprobs)} "
                               f"choice log-probs and {len(record.target_scores)} target scores")
    return np.array([math.fsum(lp) for lp in record.choice_logprobs], dtype=np.float64)


def has_choice_scores(record: ExampleRecord) -> bool:
    """Whether the record has what the multiple-choice metrics need (choices and their log-probs)."""
    return _choice_sums(record) is not None


def _logsumexp(values: np.ndarray) -> float:
    """scipy.special.logsumexp as BIG-bench 1.0.0 called it: log(sum(exp(a - max))) + max."""
    a_max = np.max(values)
    if not np.isfinite(a_max):
        a_max = 0.0
    return float(np.log(np.sum(np.exp(values - a_max))) + a_max)


def _softmax(sums: np.ndarray) -> np.ndarray:
    return np.exp(sums - _logsumexp(sums))


def bigbench_argmax(array: np.ndarray) -> int:
    """Argmax with BIG-bench's deterministic tie-break (`task_metrics.measure_multiple_choice_grade`).

    Among the indices holding the maximum, take the one at position
    `int(sha256(array.tobytes()).hexdigest(), 16) % number_tied`; no tie, no effect.
    """
    array = np.asarray(array, dtype=np.float64)
    max_indices = np.arange(len(array))[array == np.max(array)]
    idx = int(hashlib.sha256(np.asarray(array).tobytes()).hexdigest(), 16) % len(max_indices)
    return int(max_indices[idx])


def _target_sums(record: ExampleRecord) -> list[float] | None:
    if not record.target_logprobs:
        return None
    if len(record.target_logprobs) != len(record.targets):
        raise _damaged(record, f"{len(record.targets)} targets but {len(record.target_logprobs)} "
                               "target log-prob lists")
    return [math.fsum(lp) for lp in record.target_logprobs]


def _best_target(record: ExampleRecord) -> int | None:
    """Index of the target with the highest summed log-prob (first on a tie), None if not computed."""
    sums = _target_sums(record)
    return None if sums is None else int(np.argmax(sums))


def levenshtein(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Edit distance (insertions, deletions, substitutions, each cost 1) between two sequences."""
    previous = list(range(len(b) + 1))
    for i, item_a in enumerate(a, start=1):
        current = [i]
        for j, item_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (item_a != item_b)))
        previous = current
    return previous[-1]


# --------------------------------------------------------------------------------------
# The table: each metric registers itself with @metric, beside its definition


@dataclass(frozen=True)
class Metric:
    """A metric and what a table or plot needs to know about it."""

    name: str
    fn: Callable[..., float]  # (record) -> float for kind "example", (records) -> float for "aggregate"
    kind: Kind
    group: Group  # the metric group: a row of panels, a column of the side-by-side table
    higher_is_better: bool
    value_range: tuple[float, float]
    chance: Callable[[Records], float | None] | None  # chance level on these records
    description: str
    # aggregate metrics: which records they use, and the statistic as a function of resampling
    # counts (see stats.bootstrap_weighted_ci) so their bootstrap is vectorised
    uses: Callable[[ExampleRecord], bool] | None = None
    weighted: Callable[[Records], Callable[[np.ndarray], np.ndarray]] | None = None


METRICS: dict[str, Metric] = {}
"""Every metric by name, in the order they are defined below (the order of tables and panels)."""


def _register(fields: dict[str, Any]) -> Callable[[Callable[..., float]], Callable[..., float]]:
    def register(fn: Callable[..., float]) -> Callable[..., float]:
        if fn.__name__ in METRICS:
            raise ValueError(f"metric {fn.__name__} is defined twice")
        METRICS[fn.__name__] = Metric(name=fn.__name__, fn=fn, **fields)
        return fn
    return register


def metric(*, group: Group, higher_is_better: bool, value_range: tuple[float, float],
           description: str, chance: Callable[[Records], float | None] | None = None):
    """Register the decorated per-example metric `(record) -> float` in `METRICS` under its
    own name, with its metadata beside it (as inspect_ai's `@scorer`)."""
    return _register(dict(kind="example", group=group, higher_is_better=higher_is_better,
                          value_range=value_range, chance=chance, description=description))


def aggregate_metric(*, group: Group, higher_is_better: bool, value_range: tuple[float, float],
                     description: str, chance: Callable[[Records], float | None] | None,
                     uses: Callable[[ExampleRecord], bool],
                     weighted: Callable[[Records], Callable[[np.ndarray], np.ndarray]]):
    """Register the decorated aggregate metric `(records) -> float`: it scores the records it
    `uses`, and `weighted` gives its statistic on resampling counts (vectorised bootstrap)."""
    return _register(dict(kind="aggregate", group=group, higher_is_better=higher_is_better,
                          value_range=value_range, chance=chance, description=description,
                          uses=uses, weighted=weighted))


# --------------------------------------------------------------------------------------
# Chance levels


def _chance_zero(records: Records) -> float:
    return 0.0


def _chance_mean_target_score(records: Records) -> float | None:
    """BIG-bench's low score for multiple choice (`harness.tasks.chance_grade`)."""
    return chance_grade(r.target_scores for r in records if has_choice_scores(r))


def _chance_correct_fraction(records: Records) -> float | None:
    """Uniform probabilities put #correct / #choices on the correct choices."""
    fractions = []
    for record in records:
        if has_choice_scores(record) and max(record.target_scores) > 0:
            scores = np.asarray(record.target_scores)
            fractions.append(np.mean(scores == scores.max()))
    return float(np.mean(fractions)) if fractions else None


def _chance_brier_uniform(records: Records) -> float | None:
    """The Brier score of uniform choice probabilities (all log-probs equal)."""
    uniform = [replace(r, choice_logprobs=tuple((0.0,) for _ in r.choices))
               for r in records if has_choice_scores(r)]
    return brier_score(uniform) if uniform else None


# --------------------------------------------------------------------------------------
# Exact match


@metric(group="exact match", higher_is_better=True, value_range=(0, 1), chance=_chance_zero,
        description="post-processed answer equals a target (BIG-bench)")
def exact_str_match(record: ExampleRecord) -> float:
    """1 if the post-processed answer is one of the targets (exact, case-sensitive), else 0.

    BIG-bench `task_metrics.exact_str_match_fn`: `answer in targets`, after
    `model_utils.postprocess_output` (stop string, then first match of `output_regex`).
    NaN when nothing was generated.
    """
    if record.answer is None:
        return NAN
    return float(record.answer in record.targets)


@metric(group="exact match", higher_is_better=True, value_range=(0, 1), chance=_chance_zero,
        description="stripped raw generation equals a target (no regex)")
def exact_match_raw(record: ExampleRecord) -> float:
    """1 if `generation.strip()` is one of the targets: exact match without BIG-bench's regex.

    Shows what the regex adds or hides (periodic_elements: "The element ... is hydrogen."
    fails here, passes `exact_str_match`). NaN when nothing was generated.
    """
    if record.generation is None:
        return NAN
    return float(record.generation.strip() in record.targets)


@metric(group="exact match", higher_is_better=True, value_range=(0, 1), chance=_chance_zero,
        description="post-processed answer equals a target, stripped and lower-cased (BIG-bench)")
def case_insensitive_str_match(record: ExampleRecord) -> float:
    """1 if the stripped, lower-cased post-processed answer is a stripped, lower-cased target.

    BIG-bench `task_metrics.case_insensitive_str_match_fn`: `response.strip().lower() in
    [t.strip().lower() for t in targets]`, on the post-processed answer as `exact_str_match`.
    A leading space (" planet of the apes" after "A: ") or a capital ("Helium") fails exact
    match and passes here: how much of an exact-match curve is formatting. NaN when nothing
    was generated.
    """
    if record.answer is None:
        return NAN
    return float(record.answer.strip().lower() in {t.strip().lower() for t in record.targets})


# --------------------------------------------------------------------------------------
# Multiple choice


@metric(group="multiple choice", higher_is_better=True, value_range=(0, 1),
        chance=_chance_mean_target_score,
        description="target score of the highest-log-prob choice (BIG-bench)")
def multiple_choice_grade(record: ExampleRecord) -> float:
    """Target score of the choice with the highest log-prob.

    BIG-bench `task_metrics.measure_multiple_choice_grade` on normalised log-probs
    (`json_task`: absolute sums minus their logsumexp), ties broken by `bigbench_argmax` on
    the bytes of that normalised float64 array. NaN without choice log-probs.
    """
    sums = _choice_sums(record)
    if sums is None:
        return NAN
    normalised = sums - _logsumexp(sums)
    return float(record.target_scores[bigbench_argmax(normalised)])


@metric(group="multiple choice", higher_is_better=True, value_range=(0, 1),
        chance=_chance_mean_target_score, description="same, log-prob per character of the choice")
def multiple_choice_grade_norm(record: ExampleRecord) -> float:
    """Target score of the choice with the highest log-prob per character, sum / len(choice).

    lm-evaluation-harness `acc_norm` (length-normalised accuracy); ties broken by
    `bigbench_argmax` on that array. NaN without choice log-probs or with an empty choice.
    """
    sums = _choice_sums(record)
    lengths = np.array([len(choice) for choice in record.choices], dtype=np.float64)
    if sums is None or not lengths.all():
        return NAN
    return float(record.target_scores[bigbench_argmax(sums / lengths)])


def _calibration(records: Records) -> CalibrationParts:
    """Per-example calibration pieces of the records with choice log-probs."""
    squared_error, n_choices, confidence, correct = [], [], [], []
    for record in records:
        sums = _choice_sums(record)
        if sums is None:
            continue
        probs = _softmax(sums)
        scores = np.asarray(record.target_scores, dtype=np.float64)
        total = scores.sum()
        target_probs = scores / total if total != 0 else np.zeros_like(scores)
        squared_error.append(float(np.sum(target_probs * (probs - 1) ** 2
                                          + (1 - target_probs) * probs ** 2)))
        n_choices.append(len(probs))
        confidence.append(float(np.max(probs)))
        correct.append(float(np.argmax(target_probs) == np.argmax(probs)))
    return CalibrationParts(*(np.array(values, dtype=np.float64)
                              for values in (squared_error, n_choices, confidence, correct)))


def _brier_weighted(records: Records) -> Callable[[np.ndarray], np.ndarray]:
    return brier_statistic(_calibration(records))


def _ece_weighted(records: Records, n_bins: int = ECE_BINS) -> Callable[[np.ndarray], np.ndarray]:
    return ece_statistic(_calibration(records), n_bins)


@aggregate_metric(group="multiple choice", higher_is_better=False, value_range=(0, 1),
                  chance=_chance_brier_uniform, uses=has_choice_scores, weighted=_brier_weighted,
                  description="Brier score of softmax choice probabilities (BIG-bench)")
def brier_score(records: Records) -> float:
    """Multiple-choice Brier score; lower is better.

    BIG-bench `task_metrics.measure_calibration_multiple_choice_brier_score`: p =
    softmax(choice log-probs), t = target_scores / sum(target_scores) (zeros if the sum is
    0); sum over examples and choices of t*(p-1)^2 + (1-t)*p^2, divided by the total number
    of choices over all examples. Over the records with choice log-probs; NaN if none.
    """
    n = sum(has_choice_scores(record) for record in records)
    return float(_brier_weighted(records)(np.ones((1, n)))[0]) if n else NAN


@aggregate_metric(group="multiple choice", higher_is_better=False, value_range=(0, 1),
                  chance=None, uses=has_choice_scores, weighted=_ece_weighted,
                  description="ECE over 15 bins of max choice probability (BIG-bench)")
def expected_calibration_error(records: Records) -> float:
    """Expected calibration error over 15 equal-width bins of confidence; lower is better.

    BIG-bench `task_metrics.measure_expected_calibration_error` (Guo et al. 2017): confidence
    = max choice probability, correct = argmax(target_probs) == argmax(probs) (first max);
    ECE = sum_k (n_k / n) |accuracy_k - mean confidence_k|. NaN without choice log-probs.
    """
    n = sum(has_choice_scores(record) for record in records)
    return float(_ece_weighted(records)(np.ones((1, n)))[0]) if n else NAN


@metric(group="log-likelihood", higher_is_better=True, value_range=(0, 1),
        chance=_chance_correct_fraction,
        description="softmax probability mass on the correct choices")
def correct_choice_prob(record: ExampleRecord) -> float:
    """Probability mass on the correct choices: sum of softmax(choice log-prob sums) over the
    choices whose target score is the maximum (> 0) target score.

    A continuous version of multiple_choice_grade (Schaeffer et al. 2023, "Are Emergent
    Abilities of Large Language Models a Mirage?"). NaN without choice log-probs or without
    a positive target score.
    """
    sums = _choice_sums(record)
    if sums is None:
        return NAN
    scores = np.asarray(record.target_scores, dtype=np.float64)
    if scores.max() <= 0:
        return NAN
    return float(_softmax(sums)[scores == scores.max()].sum())


def reliability_bins(records: Records, n_bins: int = ECE_BINS) -> list[dict[str, float]]:
    """The bins behind `expected_calibration_error`, for a reliability diagram.

    One dict per bin: lo, hi (confidence range), count, mean_confidence and accuracy (NaN
    for an empty bin).
    """
    return bins_table(_calibration(records), n_bins)


# --------------------------------------------------------------------------------------
# Log-likelihood of the target (teacher-forced)


@metric(group="log-likelihood", higher_is_better=True, value_range=(-INF, 0),
        description="log p(target | prompt), best target")
def target_logprob(record: ExampleRecord) -> float:
    """log p(target | prompt) = sum of the target's per-token log-probs, best target.

    BIG-bench `log_likelihood` takes logsumexp over several targets (the probability of
    producing any of them); we take the max (the best single target) so that the per-token,
    per-char and greedy metrics all describe one string. Identical with one target.
    """
    sums = _target_sums(record)
    return NAN if sums is None else max(sums)


@metric(group="log-likelihood", higher_is_better=True, value_range=(-INF, 0),
        description="best target's log-prob per token")
def target_logprob_per_token(record: ExampleRecord) -> float:
    """The best target's log-prob divided by its number of tokens."""
    best = _best_target(record)
    if best is None or not record.target_logprobs[best]:
        return NAN
    return math.fsum(record.target_logprobs[best]) / len(record.target_logprobs[best])


@metric(group="log-likelihood", higher_is_better=True, value_range=(-INF, 0),
        description="best target's log-prob per character")
def target_logprob_per_char(record: ExampleRecord) -> float:
    """The best target's log-prob divided by its length in characters.

    BIG-bench `log_likelihood_per_char` (there with the logsumexp over targets).
    """
    best = _best_target(record)
    if best is None or not record.targets[best]:
        return NAN
    return math.fsum(record.target_logprobs[best]) / len(record.targets[best])


@metric(group="mirage", higher_is_better=True, value_range=(0, 1),
        description="every target token is the greedy token (teacher-forced exact match)")
def target_all_greedy(record: ExampleRecord) -> float:
    """1 if every token of the best target is the model's greedy (argmax) token.

    Teacher-forced greedy decoding would then produce the target: exact match without
    generation or answer extraction. NaN without per-token greedy flags.
    """
    best = _best_target(record)
    if best is None or len(record.target_greedy) != len(record.targets):
        return NAN
    return float(all(record.target_greedy[best]))


@metric(group="mirage", higher_is_better=True, value_range=(0, 1),
        description="exp(per-token log-prob of the best target)")
def p_tok(record: ExampleRecord) -> float:
    """exp(target_logprob_per_token): the best target's geometric-mean per-token probability.

    Schaeffer et al. 2023 ("mirage"): smooth in scale where exact match jumps.
    """
    return math.exp(target_logprob_per_token(record))


@metric(group="mirage", higher_is_better=True, value_range=(0, 1),
        description="exp(log-prob of the best target) = p_tok ** L")
def predicted_exact_match(record: ExampleRecord) -> float:
    """exp(target_logprob) = p_tok ** L (L target tokens): the probability of sampling the target.

    Schaeffer et al. 2023: exact match's expected value under the model, a nonlinear function
    of p_tok that looks "emergent" when p_tok grows smoothly.
    """
    return math.exp(target_logprob(record))


# --------------------------------------------------------------------------------------
# Held-out loss (harness.heldout: a text cut into windows, each scored from its start)


def is_text_window(record: ExampleRecord) -> bool:
    """Whether a record is a window of a held-out loss text: an empty prompt and one target,
    with its per-token log-probs."""
    return record.prompt == "" and len(record.targets) == 1 and len(record.target_logprobs) == 1


def _bits_and_bytes(records: Records) -> tuple[np.ndarray, np.ndarray]:
    """Per window: -sum log2 p(token), and its length in UTF-8 bytes."""
    bits = np.array([-math.fsum(r.target_logprobs[0]) / math.log(2) for r in records])
    n_bytes = np.array([len(r.targets[0].encode("utf-8")) for r in records], dtype=np.float64)
    return bits, n_bytes


def _bits_per_byte_weighted(records: Records) -> Callable[[np.ndarray], np.ndarray]:
    bits, n_bytes = _bits_and_bytes(records)
    return lambda counts: (counts @ bits) / (counts @ n_bytes)


@aggregate_metric(group="log-likelihood", higher_is_better=False, value_range=(0, INF),
                  chance=None, uses=is_text_window, weighted=_bits_per_byte_weighted,
                  description="held-out loss: bits per UTF-8 byte of a fixed text")
def bits_per_byte(records: Records) -> float:
    """Bits per byte = -sum over windows and tokens of log2 p(token) / sum of the windows'
    UTF-8 bytes, over the held-out text windows among `records` (`is_text_window`).

    Pooled over the whole text, not a mean of per-window ratios; per byte rather than per
    token, so models with different tokenizers compare on one scale (as in Gao et al. 2020,
    "The Pile", section 4). NaN without such records.
    """
    used = [r for r in records if is_text_window(r)]
    if not used:
        return NAN
    bits, n_bytes = _bits_and_bytes(used)
    return float(bits.sum() / n_bytes.sum())


# --------------------------------------------------------------------------------------
# Partial credit and diagnostics


@metric(group="partial credit", higher_is_better=False, value_range=(0, INF),
        description="Levenshtein distance from answer tokens to the nearest target's tokens")
def token_edit_distance(record: ExampleRecord) -> float:
    """Levenshtein distance between the answer's tokens and the nearest target's tokens; lower is better.

    min over targets j of levenshtein(answer_tokens, target_tokens[j]) (Schaeffer et al.
    2023's token edit distance). Both token lists must come from the same tokenizer. NaN
    when nothing was generated or the tokens were not recorded.
    """
    if record.answer is None or not record.target_tokens:
        return NAN
    if record.answer and not record.answer_tokens:
        return NAN
    return float(min(levenshtein(record.answer_tokens, tokens) for tokens in record.target_tokens))


@metric(group="partial credit", higher_is_better=True, value_range=(0, 1),
        description="fraction of answer characters right, aligned right (integer targets)")
def digit_accuracy(record: ExampleRecord) -> float:
    """Fraction of the answer's characters right, aligned on the right, for integer targets.

    With t = targets[0], a = answer: #{i in 1..len(t): a[-i] == t[-i]} / max(len(t), len(a)),
    so "58" vs "57" = 1/2, "157" vs "57" = 2/3, "" = 0 (a sign is one more position). Partial
    credit for arithmetic (Schaeffer et al. 2023 use token edit distance; this is its digit
    version). NaN when the target is not an integer or nothing was generated.
    """
    target = record.targets[0] if record.targets else ""
    if record.answer is None or not INTEGER.fullmatch(target):
        return NAN
    answer = record.answer
    right = sum(1 for i in range(1, min(len(target), len(answer)) + 1) if answer[-i] == target[-i])
    return right / max(len(target), len(answer))


@metric(group="diagnostic", higher_is_better=False, value_range=(0, 1),
        description="output regex matched nothing (BIG-bench #917)")
def answer_no_match(record: ExampleRecord) -> float:
    """1 if the task's output_regex matched nothing in the generation (the answer became ""), else 0.

    BIG-bench scores a no-match as a wrong answer, silently (BIG-bench issue #917: the
    arithmetic regex turns prose into zeros); this rate makes it visible. NaN without a regex
    or a generation.
    """
    return NAN if record.answer_matched is None else float(not record.answer_matched)


@metric(group="in-context", higher_is_better=True, value_range=(0, 1),
        description="answer equals the relabelled demonstrations' mapping (flipped/unrelated labels)")
def follows_demonstrations(record: ExampleRecord) -> float:
    """1 if the answer is what the relabelled demonstrations imply (`demo_target`), else 0.

    With flipped or unrelated demonstration labels (harness.demos; Wei et al. 2023), a
    model that follows the in-context mapping answers `demo_target`; one that keeps its
    prior answers a target. NaN with true labels or without a generation.
    """
    if record.demo_target is None or record.answer is None:
        return NAN
    return float(record.answer == record.demo_target)


@metric(group="in-context", higher_is_better=True, value_range=(0, 1),
        description="highest-log-prob choice is the relabelled demonstrations' answer")
def follows_demonstrations_mc(record: ExampleRecord) -> float:
    """1 if the highest-log-prob choice is `demo_target`, else 0 (NaN unless it is a choice)."""
    sums = _choice_sums(record)
    if record.demo_target is None or sums is None or record.demo_target not in record.choices:
        return NAN
    return float(record.choices[int(np.argmax(sums))] == record.demo_target)


def evaluate_module_path(name: str) -> str:
    """Local path of a HuggingFace `evaluate` module wrapping a metric: `evaluate.load(path)`."""
    folder = Path(__file__).resolve().parent / "evaluate_modules" / name
    if not (folder / f"{name}.py").is_file():
        known = sorted(p.parent.name for p in folder.parent.glob("*/*.py") if p.stem == p.parent.name)
        raise HarnessError(f"no evaluate module {name!r}; available: {', '.join(known)}")
    return str(folder)


# --------------------------------------------------------------------------------------
# Scoring many records


def score_examples(records: Records) -> list[dict[str, float]]:
    """Every per-example metric for every record: one dict per record, NaN where unscorable."""
    example_metrics = [m for m in METRICS.values() if m.kind == "example"]
    return [{m.name: float(m.fn(record)) for m in example_metrics} for record in records]


# Stored beside each example's metric values (`score_table`): what the aggregate metrics,
# reliability diagrams and the mirage check are computed from, per example.
PIECES = (*CALIBRATION_PIECES, "target_n_tokens")


def score_pieces(record: ExampleRecord) -> dict[str, float]:
    """One record's pieces: its calibration terms (NaN without choice log-probs) and the number
    of tokens of its best target (NaN without target log-probs)."""
    parts = _calibration([record])
    values = {name: float(getattr(parts, name)[0]) if parts.confidence.size else NAN
              for name in CALIBRATION_PIECES}
    best = _best_target(record) if record.target_logprobs else None
    values["target_n_tokens"] = NAN if best is None else float(len(record.target_logprobs[best]))
    return values


def score_table(records: Records) -> dict[str, list[float]]:
    """Per-example scores as columns: "idx", every example metric and every piece (NaN where
    unscorable), in the records' order. Written at scoring time (scores.json.gz), read by the report."""
    rows = [{**scores, **score_pieces(record)} for record, scores in zip(records, score_examples(records))]
    names = [m.name for m in METRICS.values() if m.kind == "example"] + list(PIECES)
    table: dict[str, list[float]] = {"idx": [float(record.idx) for record in records]}
    table.update({name: [row[name] for row in rows] for name in names})
    return table


def _select(names: Sequence[str] | None) -> list[Metric]:
    if names is None:
        return list(METRICS.values())
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise HarnessError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
    return [METRICS[name] for name in names]


def _bootstrap_aggregate(metric: Metric, used: Records, n_boot: int,
                         seed: int) -> tuple[float, float, float]:
    if metric.weighted is not None:
        return bootstrap_weighted_ci(len(used), metric.weighted(used), n_boot, seed)
    return bootstrap_ci(len(used), lambda idx: metric.fn([used[i] for i in idx]), n_boot, seed)


def summarize(records: Records, n_boot: int = 1000, seed: int = 0,
              metrics: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Mean and 95% percentile-bootstrap CI of every metric that scores at least one record.

    Per metric: mean, ci_low, ci_high, n (records scored), n_nan (records it could not
    score), chance, higher_is_better, family (the metric's group: the stored name, which
    committed summaries hold), kind. Example metrics: mean of the non-NaN
    values, resampling those values. Aggregate metrics: the metric over the records it
    `uses`, resampling those records. Resamples come from `default_rng(seed)`.
    """
    summary: dict[str, dict[str, Any]] = {}
    for metric in _select(metrics):
        if metric.kind == "example":
            values = np.array([metric.fn(record) for record in records], dtype=np.float64)
            scored = ~np.isnan(values)
            used = [record for record, ok in zip(records, scored) if ok]
            if not used:
                continue
            mean, low, high = bootstrap_mean_ci(values[scored], n_boot, seed)
        else:
            used = [record for record in records if metric.uses is None or metric.uses(record)]
            if not used:
                continue
            mean, low, high = _bootstrap_aggregate(metric, used, n_boot, seed)
        summary[metric.name] = {
            "mean": mean, "ci_low": low, "ci_high": high, "n": len(used),
            "n_nan": len(records) - len(used),
            "chance": metric.chance(used) if metric.chance is not None else None,
            "higher_is_better": metric.higher_is_better, "family": metric.group, "kind": metric.kind,
        }
    return summary
