"""Hand-computed examples for every metric in harness.metrics, and summarize's bookkeeping."""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
import time

import numpy as np
import pytest

from harness import metrics as M
from harness.answers import postprocess
from harness.errors import HarnessError
from harness.records import ExampleRecord
from harness.tasks import load_tasks

LOG = math.log


def record(**fields) -> ExampleRecord:
    base = dict(task="t", idx=0, shots=0, prompt="\nQ: ?\nA: ", prompt_sha256="0" * 64, shot_idxs=(),
                targets=("57",))
    return ExampleRecord(**{**base, **fields})


def mc_record(probs: tuple[float, ...], target_scores: tuple[float, ...], idx: int = 0) -> ExampleRecord:
    """A multiple-choice record whose choice log-probs are log(probs), split over two tokens."""
    return record(idx=idx, targets=("c0",), choices=tuple(f"c{i}" for i in range(len(probs))),
                  target_scores=target_scores,
                  choice_logprobs=tuple((LOG(p) / 2, LOG(p) / 2) for p in probs))


def test_metrics_import_without_heavy_libraries():
    code = ("import sys, harness.metrics, harness.stats; "
            "print(sorted(m for m in ('torch', 'transformers', 'matplotlib', 'evaluate', 'datasets') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_registry_metadata_is_complete():
    groups = {"exact match", "multiple choice", "log-likelihood", "partial credit", "mirage", "diagnostic",
                "in-context"}
    assert len(M.METRICS) >= 16
    for name, metric in M.METRICS.items():
        assert metric.name == name
        assert metric.kind in ("example", "aggregate")
        assert metric.group in groups
        assert metric.value_range[0] < metric.value_range[1]
        assert metric.fn.__doc__ and metric.description
        if metric.kind == "aggregate":
            assert metric.uses is not None and metric.weighted is not None


def test_unscorable_record_is_nan_for_every_metric():
    # Nothing generated, no log-probs: every metric is NaN, none a silent 0.
    bare = record(targets=("hydrogen",))
    for name, value in M.score_examples([bare])[0].items():
        assert math.isnan(value), name
    assert math.isnan(M.brier_score([bare])) and math.isnan(M.expected_calibration_error([bare]))


# --- exact match -----------------------------------------------------------------------


def test_periodic_elements_regex_turns_a_sentence_into_an_exact_match():
    (task,) = load_tasks("periodic_elements/subtask_0")
    generation = " The element with atomic number 1 is hydrogen."
    answer = postprocess(generation, task.output_regex, task.stop_string)
    assert answer == "hydrogen"
    rec = record(targets=("hydrogen",), generation=generation, answer=answer, answer_matched=True)
    assert M.exact_match_raw(rec) == 0.0  # "The element ... hydrogen." != "hydrogen"
    assert M.exact_str_match(rec) == 1.0  # the regex kept only "hydrogen"
    assert M.answer_no_match(rec) == 0.0
    # The regex keeps the model's casing, and exact match is case-sensitive.
    capital = postprocess(" Hydrogen", task.output_regex, task.stop_string)
    assert M.exact_str_match(record(targets=("hydrogen",), answer=capital, generation=" Hydrogen")) == 0.0


@pytest.mark.parametrize(("answer", "targets", "exact", "insensitive"), [
    (" planet of the apes\n", ("planet of the apes",), 0.0, 1.0),  # a leading space after "A: "
    ("Helium", ("helium",), 0.0, 1.0),  # a capital
    ("  HYDROGEN ", (" hydrogen",), 0.0, 1.0),  # targets are stripped and lower-cased too
    ("Helium.", ("helium",), 0.0, 0.0),  # punctuation is not stripped
    ("helium", ("neon", "helium"), 1.0, 1.0),  # any target
    ("", ("helium",), 0.0, 0.0),  # the regex found nothing
])
def test_case_insensitive_str_match_is_bigbenchs(answer, targets, exact, insensitive):
    # BIG-bench task_metrics.case_insensitive_str_match_fn:
    # response.strip().lower() in [t.strip().lower() for t in targets]
    rec = record(targets=targets, generation=answer, answer=answer)
    assert M.exact_str_match(rec) == exact
    assert M.case_insensitive_str_match(rec) == insensitive
    assert math.isnan(M.case_insensitive_str_match(record(targets=targets)))  # nothing generated


def test_multiple_targets_any_target_matches_and_best_target_logprob():
    # targets "a" (1 token, log-prob -3) and "bcd" (2 tokens, -0.5 - 1.0 = -1.5): best is "bcd".
    rec = record(targets=("a", "bcd"), generation=" bcd\n", answer="bcd", answer_matched=True,
                 target_logprobs=((-3.0,), (-0.5, -1.0)), target_greedy=((True,), (True, True)))
    assert M.exact_str_match(rec) == 1.0  # "bcd" is the second target
    assert M.exact_match_raw(rec) == 1.0  # " bcd\n".strip() == "bcd"
    # max(-3, -1.5) = -1.5; BIG-bench's logsumexp would give -1.5 + log(1 + e^-1.5) = -1.2986.
    assert M.target_logprob(rec) == -1.5
    assert M.target_logprob_per_token(rec) == -0.75  # -1.5 / 2 tokens
    assert M.target_logprob_per_char(rec) == -0.5  # -1.5 / len("bcd")
    assert M.p_tok(rec) == pytest.approx(math.exp(-0.75))
    assert M.predicted_exact_match(rec) == pytest.approx(math.exp(-0.75) ** 2)  # p_tok ** L, L = 2
    assert M.target_all_greedy(rec) == 1.0
    # Greedy flags are read from the best target: "a" being all greedy does not count.
    assert M.target_all_greedy(record(targets=("a", "bcd"), target_logprobs=((-3.0,), (-0.5, -1.0)),
                                      target_greedy=((True,), (True, False)))) == 0.0


# --- multiple choice -----------------------------------------------------------------


def test_multiple_choice_grade_and_length_normalised_variant():
    # sums: "a" -1.0, "bbbbbb" -0.6 - 0.6 = -1.2 -> argmax "a" (score 0).
    # per char: -1.0 / 1 = -1.0, -1.2 / 6 = -0.2 -> argmax "bbbbbb" (score 1).
    rec = record(targets=("bbbbbb",), choices=("a", "bbbbbb"), target_scores=(0.0, 1.0),
                 choice_logprobs=((-1.0,), (-0.6, -0.6)))
    assert M.multiple_choice_grade(rec) == 0.0
    assert M.multiple_choice_grade_norm(rec) == 1.0


def test_multiple_choice_ties_are_broken_like_bigbench():
    # sums -2, -1, -1, -3: choices 1 and 2 tie. BIG-bench hashes the *normalised* array
    # (sums - logsumexp(sums)) and takes hash % 2 among the tied indices [1, 2].
    rec = record(targets=("c2",), choices=("c0", "c1", "c2", "c3"), target_scores=(0.0, 0.0, 1.0, 0.0),
                 choice_logprobs=((-1.0, -1.0), (-1.0,), (-0.5, -0.5), (-3.0,)))
    sums = np.array([-2.0, -1.0, -1.0, -3.0])
    normalised = sums - (np.log(np.sum(np.exp(sums - sums.max()))) + sums.max())
    tied = np.arange(4)[normalised == normalised.max()]
    expected = tied[int(hashlib.sha256(normalised.tobytes()).hexdigest(), 16) % len(tied)]
    assert list(tied) == [1, 2] and expected == 2
    # Hashing the absolute sums would pick index 1, np.argmax would pick 1: both score 0 here.
    assert int(hashlib.sha256(sums.tobytes()).hexdigest(), 16) % 2 == 0
    assert M.bigbench_argmax(normalised) == 2
    assert M.multiple_choice_grade(rec) == 1.0


def test_correct_choice_prob_and_chance_levels():
    # probs .5 .3 .2; choices 0 and 2 have the max target score: .5 + .2 = .7.
    first = mc_record((0.5, 0.3, 0.2), (1.0, 0.0, 1.0))
    assert M.correct_choice_prob(first) == pytest.approx(0.7)
    second = mc_record((0.6, 0.4), (1.0, 0.0), idx=1)
    # multiple_choice_grade chance: mean of mean target scores = (2/3 + 1/2) / 2 = 7/12.
    assert M.METRICS["multiple_choice_grade"].chance([first, second]) == pytest.approx(7 / 12)
    # correct_choice_prob chance: mean of #correct/#choices = (2/3 + 1/2) / 2 = 7/12; with
    # partial target scores the two differ: (1, .5, 0) -> mean .5 but 1/3 correct.
    third = mc_record((0.2, 0.3, 0.5), (1.0, 0.5, 0.0), idx=2)
    assert M.METRICS["multiple_choice_grade"].chance([third]) == pytest.approx(0.5)
    assert M.METRICS["correct_choice_prob"].chance([third]) == pytest.approx(1 / 3)
    assert M.correct_choice_prob(third) == pytest.approx(0.2)


# Three examples, worked by hand for Brier and ECE:
#   ex1 p = (.5, .3, .2), scores (1, 0, 0) -> t = (1, 0, 0): (.5-1)^2 + .3^2 + .2^2 = .38;
#       confidence .5 (bin 7: 7/15 <= .5 < 8/15), argmax p = 0 = argmax t: correct.
#   ex2 p = (.7, .3), scores (0, 1) -> t = (0, 1): .7^2 + (.3-1)^2 = .98; confidence .7 (bin
#       10: .7 * 15 = 10.5), argmax p = 0 != 1: wrong.
#   ex3 p = (.52, .48), scores (1, 1) -> t = (.5, .5): per choice .5*(p-1)^2 + .5*p^2, total
#       .5*(.2304 + .2704) * 2 = .5008; confidence .52 (bin 7), argmax t = 0 (first) = argmax p.
# Brier = (.38 + .98 + .5008) / (3 + 2 + 2 choices) = 1.8608 / 7.
# ECE = bin 7: (2/3) * |1 - (.5 + .52)/2| = (2/3) * .49; bin 10: (1/3) * |0 - .7|  -> .56.
CALIBRATION_SET = [mc_record((0.5, 0.3, 0.2), (1.0, 0.0, 0.0), 0), mc_record((0.7, 0.3), (0.0, 1.0), 1),
                   mc_record((0.52, 0.48), (1.0, 1.0), 2)]


def test_brier_score_by_hand():
    assert M.brier_score(CALIBRATION_SET) == pytest.approx(1.8608 / 7)
    # Uniform probabilities: ex1 (2/3)^2 + 2 (1/3)^2 = 2/3; ex2 .25 + .25; ex3 4 * .5 * .25 = .5.
    assert M.METRICS["brier_score"].chance(CALIBRATION_SET) == pytest.approx((2 / 3 + 0.5 + 0.5) / 7)
    # Records without choice log-probs are left out, not scored as 0.
    assert M.brier_score([*CALIBRATION_SET, record()]) == pytest.approx(1.8608 / 7)


def test_expected_calibration_error_and_reliability_bins_by_hand():
    assert M.expected_calibration_error(CALIBRATION_SET) == pytest.approx(2 / 3 * 0.49 + 1 / 3 * 0.7)
    bins = M.reliability_bins(CALIBRATION_SET)
    assert len(bins) == 15 and sum(b["count"] for b in bins) == 3
    assert bins[7]["count"] == 2 and bins[7]["accuracy"] == 1.0
    assert bins[7]["mean_confidence"] == pytest.approx(0.51)
    assert bins[10]["count"] == 1 and bins[10]["accuracy"] == 0.0
    assert bins[10]["lo"] == pytest.approx(10 / 15) and bins[10]["hi"] == pytest.approx(11 / 15)
    assert math.isnan(bins[0]["accuracy"])
    # Confidence exactly 1.0 lands in the last bin.
    certain = record(choices=("a", "b"), target_scores=(1.0, 0.0), choice_logprobs=((0.0,), (-math.inf,)))
    assert M.reliability_bins([certain])[14]["count"] == 1
    assert M.expected_calibration_error([certain]) == 0.0


# --- partial credit and diagnostics ----------------------------------------------------------


def test_levenshtein_and_token_edit_distance():
    assert M.levenshtein("kitten", "sitting") == 3  # k->s, e->i, +g
    assert M.levenshtein((), ("a", "b")) == 2
    # answer 1|2|3 vs target 4|5 (2 substitutions + 1 deletion = 3) or 1|3|3 (1 substitution).
    rec = record(targets=("45", "133"), answer="123", answer_tokens=("1", "2", "3"),
                 target_tokens=(("4", "5"), ("1", "3", "3")))
    assert M.token_edit_distance(rec) == 1.0
    empty = record(targets=("45",), answer="", answer_matched=False, target_tokens=(("4", "5"),))
    assert M.token_edit_distance(empty) == 2.0  # two insertions
    assert math.isnan(M.token_edit_distance(record(answer="45", target_tokens=(("4", "5"),))))  # no tokens
    assert math.isnan(M.token_edit_distance(record(answer=None, target_tokens=(("4", "5"),))))


@pytest.mark.parametrize(("answer", "target", "expected"), [
    ("57", "57", 1.0),
    ("58", "57", 1 / 2),  # last digit 8 != 7, next 5 == 5 -> 1 of 2
    ("157", "57", 2 / 3),  # 7, 5 right; the extra "1" counts in the denominator
    ("-12", "-12", 1.0),  # the sign is a position too
    ("12", "-12", 2 / 3),  # 2 and 1 right, the missing sign wrong
    ("", "57", 0.0),
    ("75", "57", 0.0),  # right-aligned: 5 != 7, 7 != 5
])
def test_digit_accuracy(answer, target, expected):
    assert M.digit_accuracy(record(targets=(target,), answer=answer)) == pytest.approx(expected)


def test_digit_accuracy_is_nan_when_unscorable():
    assert math.isnan(M.digit_accuracy(record(targets=("57",), answer=None)))
    assert math.isnan(M.digit_accuracy(record(targets=("hydrogen",), answer="hydrogen")))


def test_answer_no_match():
    assert M.answer_no_match(record(answer="", answer_matched=False)) == 1.0
    assert M.answer_no_match(record(answer="57", answer_matched=True)) == 0.0
    assert math.isnan(M.answer_no_match(record(answer="57", answer_matched=None)))


def test_damaged_record_raises():
    broken = record(choices=("a", "b"), target_scores=(1.0, 0.0), choice_logprobs=((-1.0,),))
    with pytest.raises(HarnessError, match="damaged"):
        M.multiple_choice_grade(broken)


# --- summaries ---------------------------------------------------------------------------


def test_summarize_counts_nans_and_skips_unscored_metrics():
    records = [record(idx=0, answer="57", answer_matched=True, generation="57"),
               record(idx=1, answer="5", answer_matched=True, generation="5"),
               record(idx=2, answer="", answer_matched=False, generation="x"),
               record(idx=3)]  # not generated
    summary = M.summarize(records, n_boot=200, seed=0)
    exact = summary["exact_str_match"]
    assert (exact["n"], exact["n_nan"]) == (3, 1)
    assert exact["mean"] == pytest.approx(1 / 3)
    assert exact["ci_low"] <= exact["mean"] <= exact["ci_high"]
    assert exact["chance"] == 0.0 and exact["higher_is_better"] and exact["kind"] == "example"
    # digit_accuracy: 1, 0 ("5" vs "57": aligned right, 5 is compared with 7), 0 -> 1/3.
    assert summary["digit_accuracy"]["mean"] == pytest.approx(1 / 3)
    assert summary["answer_no_match"]["mean"] == pytest.approx(1 / 3)
    # No choice log-probs anywhere: multiple-choice metrics are absent, not 0.
    assert "multiple_choice_grade" not in summary and "brier_score" not in summary
    assert M.summarize(records, n_boot=200, seed=0) == summary  # deterministic


def test_summarize_aggregate_metrics_use_only_records_with_inputs():
    records = [*CALIBRATION_SET, record(idx=9)]
    summary = M.summarize(records, n_boot=100, seed=1, metrics=["brier_score", "expected_calibration_error"])
    assert set(summary) == {"brier_score", "expected_calibration_error"}
    assert summary["brier_score"]["mean"] == pytest.approx(1.8608 / 7)
    assert (summary["brier_score"]["n"], summary["brier_score"]["n_nan"]) == (3, 1)
    assert summary["expected_calibration_error"]["chance"] is None
    assert not summary["brier_score"]["higher_is_better"]
    with pytest.raises(HarnessError, match="unknown metric"):
        M.summarize(records, metrics=["nope"])


def test_vectorised_aggregate_bootstrap_matches_the_slow_loop():
    from harness.stats import bootstrap_ci

    rng = np.random.default_rng(3)
    records = [mc_record(tuple(rng.dirichlet(np.ones(3))), (1.0, 0.0, 0.0), i) for i in range(20)]
    for name in ("brier_score", "expected_calibration_error"):
        fast = M.summarize(records, n_boot=50, seed=7, metrics=[name])[name]
        slow = bootstrap_ci(20, lambda idx, fn=M.METRICS[name].fn: fn([records[i] for i in idx]), 50, 7)
        assert (fast["mean"], fast["ci_low"], fast["ci_high"]) == pytest.approx(slow)


def test_aggregate_bootstrap_is_fast():
    rng = np.random.default_rng(0)
    records = [mc_record(tuple(rng.dirichlet(np.ones(4))), (0.0, 1.0, 0.0, 0.0), i) for i in range(1000)]
    start = time.perf_counter()
    M.summarize(records, n_boot=1000, seed=0, metrics=["brier_score", "expected_calibration_error"])
    assert time.perf_counter() - start < 3.0  # ~0.2 s unloaded; generous for a busy machine


def test_score_examples_gives_every_example_metric():
    rows = M.score_examples(CALIBRATION_SET)
    example_names = {n for n, m in M.METRICS.items() if m.kind == "example"}
    assert len(rows) == 3 and set(rows[0]) == example_names
    assert rows[0]["multiple_choice_grade"] == 1.0 and rows[1]["multiple_choice_grade"] == 0.0
    for row in rows:  # values stay inside each metric's declared range
        for name, value in row.items():
            low, high = M.METRICS[name].value_range
            assert math.isnan(value) or low <= value <= high, name


# --- HuggingFace evaluate modules ----------------------------------------------------------


def test_evaluate_modules_load_offline(tmp_path, monkeypatch):
    for name in ("HF_HUB_OFFLINE", "HF_EVALUATE_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(name, "1")
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    evaluate = pytest.importorskip("evaluate")

    def load(name):
        return evaluate.load(M.evaluate_module_path(name), keep_in_memory=True)

    # "b" is the second target of example 1; "x" is not "y".
    assert load("exact_str_match").compute(predictions=["b", "x"], references=[["a", "b"], ["y"]]) == {
        "exact_str_match": 0.5, "n_nan": 0}
    # argmax of (-1, -3) is choice 0 (score 1); of (-2, -0.5) is choice 1 (score 0).
    assert load("multiple_choice_grade").compute(predictions=[[-1.0, -3.0], [-2.0, -0.5]],
                                                 references=[[1, 0], [1, 0]])["multiple_choice_grade"] == 0.5
    # example 1: -1 - 0.5 = -1.5; example 2: best of -4 and -2 = -2; mean -1.75.
    assert load("target_logprob").compute(predictions=[[[-1.0, -0.5]], [[-4.0], [-2.0]]],
                                          references=[["ab"], ["a", "b"]])["target_logprob"] == -1.75
    # (1/2 + 1) / 2 = .75; "cat" is not an integer target: not scored.
    assert load("digit_accuracy").compute(predictions=["58", "57", "x"], references=["57", "57", "cat"]) == {
        "digit_accuracy": 0.75, "n_nan": 1}
    with pytest.raises(HarnessError, match="no evaluate module"):
        M.evaluate_module_path("nope")


def test_follows_demonstrations():
    # flipped labels: the demonstrations imply "7" for this query, the truth is "0"
    follower = record(targets=("0",), answer="7", demo_target="7", choices=("0", "7", "banana"),
                      target_scores=(1.0, 0.0, 0.0), choice_logprobs=((-3.0,), (-0.5,), (-2.0,)))
    assert M.follows_demonstrations(follower) == 1.0 and M.exact_str_match(follower) == 0.0
    assert M.follows_demonstrations_mc(follower) == 1.0  # argmax choice "7"
    prior = record(targets=("0",), answer="0", demo_target="7")
    assert M.follows_demonstrations(prior) == 0.0
    assert math.isnan(M.follows_demonstrations(record(targets=("0",), answer="0")))  # true labels
    unrelated = record(targets=("0",), answer="apple", demo_target="apple", choices=("0", "1"),
                       target_scores=(1.0, 0.0), choice_logprobs=((-1.0,), (-2.0,)))
    assert M.follows_demonstrations(unrelated) == 1.0
    assert math.isnan(M.follows_demonstrations_mc(unrelated))  # "apple" is not a choice


def test_each_metric_carries_its_metadata_and_registers_once():
    """@metric puts the metadata beside the function; a second metric of one name is refused."""
    assert M.METRICS["exact_str_match"].fn is M.exact_str_match
    assert M.METRICS["brier_score"].kind == "aggregate" and M.METRICS["brier_score"].uses is not None
    assert all(m.fn.__name__ == name and m.description for name, m in M.METRICS.items())
    with pytest.raises(ValueError, match="defined twice"):
        M.metric(group="exact match", higher_is_better=True, value_range=(0, 1),
                 description="again")(M.exact_str_match)
