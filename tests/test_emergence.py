"""Emergence statistics on hand-computed series: B, linearity, Kendall tau, paired bootstrap, verdicts."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from harness.emergence import (
    JUMP_FACTOR,
    SMOOTH_TAU,
    analyze_series,
    b_statistic,
    bootstrap_series,
    breakthroughness,
    classify,
    compare_series,
    interval,
    jump_share,
    linearity,
    mirage_check,
    mirage_prediction,
    monotonicity,
    orient,
    resampled_point_means,
    tau_statistic,
    verdict,
)
from harness.errors import HarnessError
from harness.stats import bootstrap_mean_ci

SIZES = [1e7, 3e7, 1e8, 3e8, 1e9, 3e9]
LINE = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
STEP = [0.0, 0.0, 0.0, 0.0, 1.0, 1.0]


# --------------------------------------------------------------------------------------
# Breakthroughness


def test_line_b_by_hand():
    # every successive diff is 0.2 -> median squared diff 0.04 -> B = (1 - 0) / 0.2 = 5 = n - 1
    result = breakthroughness(LINE)
    assert result.value == pytest.approx(5.0)
    assert not result.degenerate
    assert result.jump == pytest.approx(0.2)


def test_step_is_degenerate_and_says_where():
    # diffs 0, 0, 0, 1, 0: the median squared diff is 0, so B would divide by zero
    result = breakthroughness(STEP)
    assert result.degenerate
    assert result.value == math.inf  # infinite, never a huge finite number
    assert result.jump == 1.0 and result.jump_between == (3, 4)
    assert result.description == "flat, then a jump of 1 between points 3 and 4, then flat"
    labels = ["14m", "70m", "160m", "410m", "1b", "1.4b"]
    assert "between 410m and 1b" in breakthroughness(STEP, labels).description
    at_end = breakthroughness([0, 0, 0, 0, 0, 0.85])
    assert at_end.description == "flat, then a jump of 0.85 between points 4 and 5"
    # two jumps among flat steps (0, 0, .5, .5, 0): still degenerate, described as such
    two = breakthroughness([0, 0, 0, 0.5, 1, 1])
    assert two.degenerate and two.description.startswith("flat in 3 of 5 steps; largest jump 0.5")


def test_step_and_line_are_clearly_different():
    assert breakthroughness(STEP).value > 10 * breakthroughness(LINE).value


def test_non_degenerate_jump_by_hand():
    # diffs .01, .01, .01, .87, .05 -> squares 1e-4, 1e-4, 1e-4, .7569, .0025
    # median 1e-4 -> root .01; max - min = .95, argmax 5 > argmin 0 -> B = +.95 / .01 = 95
    result = breakthroughness([0, 0.01, 0.02, 0.03, 0.9, 0.95])
    assert result.value == pytest.approx(95.0)
    assert not result.degenerate
    assert result.jump == pytest.approx(0.87) and result.jump_between == (3, 4)


def test_sign_and_orientation():
    assert breakthroughness(LINE[::-1]).value == pytest.approx(-5.0)
    assert breakthroughness([1, 1, 1, 1, 0, 0]).value == -math.inf
    # token edit distance falling 5 -> 0 is an improvement: oriented, B = +5
    edit_distance = [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]
    assert breakthroughness(orient(edit_distance, higher_is_better=False)).value == pytest.approx(5.0)
    analysis = analyze_series(SIZES, np.array(edit_distance), higher_is_better=False)
    assert analysis.b.estimate == pytest.approx(5.0)
    assert analysis.tau.estimate == 1.0
    assert analysis.point_values == tuple(edit_distance)  # stored in the metric's own units


def test_flat_and_missing_points():
    flat = breakthroughness([0.3] * 5)
    assert flat.value == 0.0 and not flat.degenerate and flat.description.startswith("flat")
    missing = breakthroughness([0.1, float("nan"), 0.3])
    assert math.isnan(missing.value) and "1" in missing.description
    with pytest.raises(HarnessError):
        breakthroughness([1.0])


# --------------------------------------------------------------------------------------
# Kendall tau and linearity


def test_kendall_tau_b():
    assert monotonicity([1, 2, 3, 4]) == 1.0
    assert monotonicity([4, 3, 2, 1]) == -1.0
    # y = [1, 3, 2, 3]: pairs (0,1)+ (0,2)+ (0,3)+ (1,2)- (1,3)tie (2,3)+ -> C = 4, D = 1,
    # n0 = 6 pairs, n2 = 1 tie in y -> tau_b = (4 - 1) / sqrt(6 * (6 - 1)) = 3 / sqrt(30)
    assert monotonicity([1, 3, 2, 3]) == pytest.approx(3 / math.sqrt(30))
    # the step: 8 concordant, 0 discordant, 6 + 1 tied pairs of 15 -> 8 / sqrt(15 * 8)
    assert monotonicity(STEP) == pytest.approx(8 / math.sqrt(120))
    assert math.isnan(monotonicity([2, 2, 2]))


def test_linearity_r2_in_log10_x():
    x = np.array(SIZES)
    assert linearity(x, 2.0 + 0.5 * np.log10(x)) == pytest.approx(1.0)
    assert linearity(x, 2.0 - 0.5 * np.log10(x)) == pytest.approx(1.0)  # sign-free
    # STEP over log10 x = 0..5: dx = (-2.5, -1.5, -.5, .5, 1.5, 2.5), mean y = 1/3,
    # dy = (-1/3 x4, 2/3 x2): dx.dy = 4/3 + 8/3 = 4, dx.dx = 17.5, dy.dy = 4/3
    # R^2 = 4^2 / (17.5 * 4/3) = 16 / 23.33 = 0.686
    assert linearity(10.0 ** np.arange(6), STEP) == pytest.approx(16 / (17.5 * 4 / 3))
    assert math.isnan(linearity(x, np.ones(6)))
    with pytest.raises(HarnessError, match="log_x=False"):
        linearity([0, 1000, 2000], [0.1, 0.2, 0.3])
    assert linearity([0, 1000, 2000], [0.1, 0.2, 0.3], log_x=False) == pytest.approx(1.0)


# --------------------------------------------------------------------------------------
# Paired bootstrap


def _binary_scores(rates: list[float], n_examples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((len(rates), n_examples)) < np.array(rates)[:, None]).astype(float)


def test_bootstrap_deterministic_and_contains_estimate():
    scores = _binary_scores([0.1, 0.2, 0.35, 0.5, 0.6, 0.8], 300, seed=1)
    first = bootstrap_series(SIZES, scores, tau_statistic, n_boot=500, seed=0)
    assert first == bootstrap_series(SIZES, scores, tau_statistic, n_boot=500, seed=0)
    b = bootstrap_series(SIZES, scores, b_statistic, n_boot=500, seed=0)
    assert b.ci_low <= b.estimate <= b.ci_high
    assert b.estimate == breakthroughness(scores.mean(axis=1)).value
    assert b != bootstrap_series(SIZES, scores, b_statistic, n_boot=500, seed=1)
    # x given in another order with the rows permuted alike: the same series
    perm = [3, 0, 5, 1, 4, 2]
    shuffled = bootstrap_series(np.array(SIZES)[perm], scores[perm], b_statistic, n_boot=500, seed=0)
    assert shuffled.estimate == b.estimate


def test_bootstrap_is_paired_across_models():
    # model 1 is right exactly where model 0 is wrong: in every paired resample the two point
    # means add up to 1, and a model identical to model 0 differs from it by exactly 0
    rng = np.random.default_rng(0)
    first = (rng.random(200) < 0.3).astype(float)
    scores = np.stack([first, 1.0 - first, first])
    total = bootstrap_series([1, 2, 3], scores, lambda x, y: y[0] + y[1], n_boot=300, seed=0)
    assert total.ci_low == pytest.approx(1.0) and total.ci_high == pytest.approx(1.0)
    same = bootstrap_series([1, 2, 3], scores, lambda x, y: y[2] - y[0], n_boot=300, seed=0)
    assert (same.ci_low, same.ci_high) == (0.0, 0.0)
    # unpaired (each model resampled on its own), the sum would spread: the check has teeth
    independent = [first[rng.integers(0, 200, 200)].mean() + (1 - first)[rng.integers(0, 200, 200)].mean()
                   for _ in range(100)]
    assert np.std(independent) > 0.02
    means = resampled_point_means(scores, n_boot=50, seed=0)
    assert means.shape == (50, 3)
    np.testing.assert_allclose(means[:, 0] + means[:, 1], 1.0)


def test_same_resamples_as_summary_intervals():
    # one seed, one set of example resamples: a model's CI here is harness.stats' mean CI
    scores = _binary_scores([0.2, 0.5], 150, seed=4)
    means = resampled_point_means(scores, n_boot=400, seed=7)
    _, low, high = bootstrap_mean_ci(scores[1], n_boot=400, seed=7)
    assert np.quantile(means[:, 1], [0.025, 0.975]) == pytest.approx([low, high])


def test_point_values_with_caller_replicates():
    # an aggregate metric: point values plus the caller's (n_boot, n_points) resampled values
    replicates = np.array(LINE)[None, :] + np.linspace(-0.01, 0.01, 50)[:, None] * np.arange(6)
    analysis = analyze_series(SIZES, np.array(LINE), replicates=replicates)
    assert analysis.n_boot == 50 and analysis.b.estimate == pytest.approx(5.0)
    assert analysis.b.ci_low == pytest.approx(5.0) and analysis.b.ci_high == pytest.approx(5.0)
    assert analysis.tau.format(2) == "1.00 [1.00, 1.00]"
    with pytest.raises(HarnessError):
        analyze_series(SIZES, np.zeros((6, 3)), replicates=replicates)


def test_resampled_means_skip_nans():
    scores = np.array([[1.0, np.nan, 0.0, 1.0], [np.nan, np.nan, np.nan, 0.5]])
    means = resampled_point_means(scores, n_boot=200, seed=0)
    assert np.nanmax(means[:, 0]) <= 1.0 and np.nanmin(means[:, 0]) >= 0.0
    # model 1 has one scorable example: 0.5 when drawn, NaN when not, never a silent 0
    assert set(np.unique(means[:, 1][~np.isnan(means[:, 1])])) == {0.5}
    assert np.isnan(means[:, 1]).any()


def test_step_bootstrap_counts_degenerate_resamples():
    scores = np.concatenate([np.zeros((4, 100)), _binary_scores([0.6, 0.9], 100, seed=2)])
    b = bootstrap_series(SIZES, scores, b_statistic, n_boot=200, seed=0)
    assert b.estimate == math.inf
    assert (b.ci_low, b.ci_high) == (math.inf, math.inf)  # np.quantile would give NaN here
    assert b.degenerate_fraction == 1.0


def test_interval_with_infinities_and_nans():
    # 4 values: 2.5% at position .075 between 1 and 2; 97.5% at 2.925, between 3 and inf
    result = interval(1.0, np.array([3.0, np.inf, 1.0, 2.0]))
    assert result.ci_low == pytest.approx(1.075) and result.ci_high == math.inf
    assert result.degenerate_fraction == 0.25
    with_nan = interval(1.0, np.array([1.0, np.nan, 1.0, 1.0]))
    assert (with_nan.ci_low, with_nan.ci_high, with_nan.undefined_fraction) == (1.0, 1.0, 0.25)
    assert with_nan.format() == "1 [1, 1]"


# --------------------------------------------------------------------------------------
# Mirage


def test_mirage_prediction_by_hand():
    assert mirage_prediction([0.9], [3])[0] == pytest.approx(0.729)
    np.testing.assert_allclose(mirage_prediction([0.5, 0.8], [2, 1]), [0.25, 0.8])
    with pytest.raises(HarnessError):
        mirage_prediction([1.5], [2])


def test_mirage_check_agrees_when_exact_match_is_p_tok_to_the_l():
    p_tok = np.array([0.3, 0.45, 0.6, 0.75, 0.9])
    check = mirage_check([1e8, 1e7, 1e9, 3e9, 1e10], p_tok**4, p_tok, 4)
    assert check.correlation == pytest.approx(1.0)
    assert check.mean_abs_gap == pytest.approx(0.0)
    assert check.x == (1e7, 1e8, 1e9, 3e9, 1e10)  # sorted by x
    assert check.predicted[0] == pytest.approx(0.45**4)
    assert "r = 1" in check.description


def test_edit_distance_against_exact_match_side_by_side():
    exact_match = np.concatenate([np.zeros((4, 50)), np.ones((2, 50))])
    edit_distance = np.repeat(np.array([[5.0], [4.0], [3.0], [2.0], [1.0], [0.0]]), 50, axis=1)
    result = compare_series(SIZES, {"exact_str_match": (exact_match, True),
                                    "token_edit_distance": (edit_distance, False)}, n_boot=100)
    assert result["exact_str_match"].b.estimate == math.inf
    assert result["token_edit_distance"].b.estimate == pytest.approx(5.0)
    assert result["token_edit_distance"].tau.estimate == 1.0
    # a straight line over 6 points: J = 1/5 (every step is a fifth of the whole change)
    assert result["token_edit_distance"].summary().startswith(
        "B = 5 [5, 5], J = 0.20 [0.20, 0.20], tau = 1.00 [1.00, 1.00]")


# --------------------------------------------------------------------------------------
# Verdicts


def _task_series(n_examples: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    exact_match = np.concatenate([np.zeros((4, n_examples)), _binary_scores([0.6, 0.9], n_examples, seed=3)])
    difficulty = rng.normal(size=n_examples)  # shared across models, as real examples are
    log_prob = (-6.0 + np.arange(6)[:, None] + difficulty[None, :]
                + rng.normal(scale=0.3, size=(6, n_examples)))
    return exact_match, log_prob


def test_verdict_says_the_jump_comes_from_the_metric():
    exact_match, log_prob = _task_series()
    analyses = {
        "exact_str_match": analyze_series(SIZES, exact_match, True, n_boot=300, family="exact match"),
        "target_logprob": analyze_series(SIZES, log_prob, True, n_boot=300, family="log-likelihood"),
    }
    result = verdict("arithmetic/3_digit_addition", analyses)
    shapes = {v.metric: v.shape for v in result.metrics}
    assert shapes == {"exact_str_match": "jump", "target_logprob": "smooth"}
    assert result.conclusion == "metric artefact"
    sentence = result.sentence
    assert sentence.startswith("arithmetic/3_digit_addition: exact_str_match jumps (")
    assert "target_logprob improves smoothly (" in sentence
    assert f"B = {analyses['exact_str_match'].b.format()}" in sentence  # "B = inf [inf, inf]"
    assert f"B = {analyses['target_logprob'].b.format()}" in sentence
    # exact match: 0, 0, 0, 0, ~.6, ~.9: three still steps, then two rising ones
    assert "(flat up to point 3, then a jump of 0." in sentence and "between points 3 and 4" in sentence
    assert ("the jump comes from the metric (emergent under exact match, smooth under log-likelihood)"
            in sentence)
    assert analyses["target_logprob"].b.ci_high < JUMP_FACTOR * 5  # a line of 6 points has B = 5
    assert analyses["target_logprob"].linearity.estimate > 0.99


def test_verdict_flat_and_without_ci():
    flat = analyze_series(SIZES, np.full(6, 0.2) + np.array([0, 0.001, 0, 0.002, 0, 0.001]))
    line = analyze_series(SIZES, np.array(LINE))  # point values only: no CI
    result = verdict("emoji_movie", {"exact_str_match": flat, "multiple_choice_grade": line})
    assert [v.shape for v in result.metrics] == ["flat", "smooth"]
    assert "exact_str_match is flat (best - worst = 0.002 [no CI])" in result.sentence
    assert "B = 5 [no CI]" in result.sentence
    assert result.conclusion == "smooth"


def test_emergence_imports_without_heavy_libraries():
    code = ("import sys, harness.emergence; "
            "assert not {'torch', 'transformers', 'matplotlib', 'scipy'} & set(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_classify_rules_on_point_values():
    def shape(values: list[float]) -> str:
        return classify(analyze_series(SIZES, np.array(values), metric="m")).shape

    assert shape(LINE[::-1]) == "smooth decline"  # B = -5, tau = -1
    assert shape([1, 1, 1, 1, 0, 0]) == "drop"  # B = -inf
    # zigzag: steps .6, -.5, .4, -.3, .1 -> median squared .16 -> B = .6 / .4 = 1.5, not a jump;
    # pairs: C = 5 + 0 + 3 + 0 + 1 = 9, D = 0 + 4 + 0 + 2 + 0 = 6 -> tau = 3/15 < SMOOTH_TAU
    zigzag = [0, 0.6, 0.1, 0.5, 0.2, 0.3]
    assert breakthroughness(zigzag).value == pytest.approx(1.5)
    assert monotonicity(zigzag) == pytest.approx(3 / 15) and 3 / 15 < SMOOTH_TAU
    assert shape(zigzag) == "unclear"
    # monotone, B = .95 / .01 = 95 > 15 without a CI: a jump on the estimate alone
    assert shape([0, 0.01, 0.02, 0.03, 0.9, 0.95]) == "jump"


def test_jump_share_calls_a_few_point_jump_that_b_alone_misses():
    """Five sizes, 100 examples: exact match 0, 0, 0, .42, .47 (the pico family's 2-digit
    addition). Successive steps 0, 0, .42, .05: B = .47 / sqrt(median(0, 0, .1764, .0025))
    = .47 / sqrt(.00125) = 13.3, barely over B* = 12 and not beyond noise; the jump share
    J = .42 / .47 = 0.89 says most of the change is one step."""
    from harness.emergence import JUMP_SHARE, jump_share

    rng = np.random.default_rng(0)
    sizes = np.array([1.3e4, 5e4, 2.2e5, 6e5, 9.3e5])
    em = np.zeros((5, 100))
    em[3, rng.choice(100, 42, replace=False)] = 1
    em[4, rng.choice(100, 47, replace=False)] = 1
    analysis = analyze_series(sizes, em, n_boot=300, metric="exact_str_match")
    assert analysis.b.estimate == pytest.approx(0.47 / math.sqrt(0.00125), rel=1e-6)
    assert jump_share(analysis.point_values) == pytest.approx(0.42 / 0.47)
    assert analysis.share.ci_low >= JUMP_SHARE
    assert classify(analysis).shape == "jump"
    # a log-prob rising over two steps: J = 1.8 / 3.46 = 0.52, tau = 1 -> smooth
    means = np.array([-5.75, -5.68, -4.32, -2.52, -2.29])
    logprob = means[:, None] + rng.normal(0, 0.3, size=(5, 100))
    logprob -= logprob.mean(axis=1, keepdims=True) - means[:, None]
    smooth = analyze_series(sizes, logprob, n_boot=300, metric="target_logprob")
    assert smooth.share.estimate == pytest.approx(1.8 / 3.46, abs=1e-9)
    assert classify(smooth).shape == "smooth"
    # the same numbers as a zigzag are no jump: the curve does not stay up
    zig = analyze_series(sizes, em[[3, 0, 4, 1, 2]], n_boot=300)
    assert classify(zig).shape != "jump"


def _awkward_rows(n_points: int) -> np.ndarray:
    """Random rows plus the cases the rules hinge on: flat, flat-then-jump, ties, NaN, decline."""
    rng = np.random.default_rng(3)
    rows = [rng.random(n_points), rng.integers(0, 3, n_points) / 2, np.zeros(n_points),
            np.r_[np.zeros(n_points - 1), 1.0], np.r_[np.zeros(n_points - 2), 0.5, 1.0],
            -np.arange(n_points, dtype=float), np.r_[np.nan, rng.random(n_points - 1)]]
    rows += list(rng.random((40, n_points)).round(1))
    return np.array(rows)


@pytest.mark.parametrize("n_points", [2, 3, 6, 9])
def test_row_forms_equal_the_one_series_statistics(n_points):
    from harness.emergence import b_rows, linearity_rows, share_rows, tau_rows

    x = np.geomspace(1e4, 1e7, n_points)
    y = _awkward_rows(n_points)
    np.testing.assert_array_equal(b_rows(x, y), [breakthroughness(row).value for row in y])
    np.testing.assert_array_equal(tau_rows(x, y), [monotonicity(row) for row in y])
    np.testing.assert_array_equal(share_rows(x, y), [jump_share(row) for row in y])
    np.testing.assert_allclose(linearity_rows(x, y), [linearity(x, row) for row in y], rtol=1e-12, atol=1e-12)


def test_bootstrap_uses_the_row_form_with_the_same_interval():
    from harness.emergence import ROW_FORMS

    scores = np.random.default_rng(5).random((6, 80)).round()
    for statistic in ROW_FORMS:
        fast = bootstrap_series(SIZES, scores, statistic, n_boot=300, seed=2)
        slow = bootstrap_series(SIZES, scores, lambda x, y, s=statistic: s(x, y), n_boot=300, seed=2)
        assert fast.estimate == slow.estimate
        np.testing.assert_allclose([fast.ci_low, fast.ci_high], [slow.ci_low, slow.ci_high], rtol=1e-12)
        assert (fast.degenerate_fraction, fast.undefined_fraction) == (
            slow.degenerate_fraction, slow.undefined_fraction)
