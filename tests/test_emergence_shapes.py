"""Shapes beyond "rises", predictability, seed spread and the mirage fit, on hand-computed series."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.emergence import (
    BEND_SHARE,
    CONCLUSION_RULES,
    SHAPE_RULES,
    analyze_series,
    classify,
    extrapolate,
    find_bend,
    log_slope,
    mirage_explained,
    predict_rows,
    seed_band,
    slope_rows,
    split_seed,
    verdict,
    with_seed_band,
)
from harness.errors import HarnessError

SIZES = [1e4, 1e5, 1e6, 1e7, 1e8]
WIGGLE = np.tile([0.1, -0.1], 100)  # 200 examples around each mean, mean exactly 0: tight CIs


def _around(means: list[float]) -> np.ndarray:
    """(n_points, 200) per-example scores whose means are `means`, each example +-0.1 from it."""
    return np.array(means)[:, None] + WIGGLE[None, :]


def _binary(rates: list[float], n_examples: int = 400) -> np.ndarray:
    """Per-example 0/1 with exactly round(rate * n) ones per point (the same first examples)."""
    return np.array([[1.0 if i < round(r * n_examples) else 0.0 for i in range(n_examples)] for r in rates])


# --------------------------------------------------------------------------------------
# Slope and bends


def test_log_slope_by_hand():
    # y = 1, 3, 5 at log10 x = 1, 2, 3: two per decade
    assert log_slope(np.array([10.0, 100.0, 1000.0]), np.array([1.0, 3.0, 5.0])) == pytest.approx(2.0)
    rows = slope_rows(np.array([10.0, 100.0, 1000.0]), np.array([[1.0, 3.0, 5.0], [5.0, 3.0, 1.0],
                                                                  [0.0, np.nan, 1.0]]))
    assert rows[:2] == pytest.approx([2.0, -2.0]) and math.isnan(rows[2])


def test_valley_by_hand():
    # oriented -3, -5, -7, -4 (a log-prob): worst point 2 is interior; fall to it from the best
    # before (-3) is 4, rise after it (to -4) is 3, max - min = 4 -> share 3 / 4
    bend = find_bend(np.array([-3.0, -5.0, -7.0, -4.0]), None, "U-shaped")
    assert bend is not None and bend.at == 2
    assert (bend.before.estimate, bend.after.estimate, bend.share) == (4.0, 3.0, 0.75)
    assert not bend.holds  # no CI: never called a bend on point values alone
    assert find_bend(np.array([-3.0, -5.0, -7.0, -4.0]), None, "inverted-U") is None  # best point at the end
    analysis = analyze_series(SIZES[:4], _around([-3.0, -5.0, -7.0, -4.0]), n_boot=200)
    assert analysis.valley is not None and analysis.valley.holds
    assert analysis.valley.before.ci_low > 0 and analysis.valley.after.ci_low > 0
    verdict_ = classify(analysis)
    assert (verdict_.shape, verdict_.trend) == ("U-shaped", "U-shaped")
    assert "extreme at point 2: 4 [4, 4] before, 3 [3, 3] after" in verdict_.phrase


def test_inverted_u_by_hand_and_a_lower_is_better_metric():
    # exact match .1, .5, .8, .3: best point 2; rise to it .7, fall after it .5, range .7
    analysis = analyze_series(SIZES[:4], _binary([0.1, 0.5, 0.8, 0.3]), n_boot=200)
    peak = analysis.peak
    assert peak is not None and peak.at == 2
    assert peak.before.estimate == pytest.approx(0.7) and peak.after.estimate == pytest.approx(0.5)
    assert peak.share == pytest.approx(0.5 / 0.7)
    assert classify(analysis).shape == "inverted-U"
    # edit distance 5, 3, 1, 4 (fewer is better): performance rises then falls: an inverted U
    edits = analyze_series(SIZES[:4], _around([5.0, 3.0, 1.0, 4.0]), higher_is_better=False, n_boot=200)
    assert classify(edits).shape == "inverted-U"


def test_a_wiggle_at_the_end_is_no_bend():
    # 0, .5, 1, .95: the best point is interior, but the fall after it (.05) is 5% of the range
    analysis = analyze_series(SIZES[:4], _binary([0.0, 0.5, 1.0, 0.95]), n_boot=200)
    assert analysis.peak is not None and analysis.peak.share == pytest.approx(0.05)
    assert analysis.peak.share < BEND_SHARE
    assert classify(analysis).shape not in ("U-shaped", "inverted-U")


def test_inverse_scaling_is_a_decline_and_the_task_says_so():
    logprob = analyze_series(SIZES, _around([-18.0, -20.0, -25.0, -33.0, -41.0]), n_boot=200,
                             metric="target_logprob", family="log-likelihood")
    flat = analyze_series(SIZES, np.zeros((5, 50)), n_boot=200, metric="exact_str_match",
                          family="exact match")
    shape = classify(logprob)
    assert (shape.shape, shape.trend) == ("smooth decline", "declining")
    result = verdict("arithmetic/4_digit_addition", {"exact_str_match": flat, "target_logprob": logprob})
    assert result.conclusion == "inverse scaling"
    assert ("performance falls with scale under log-likelihood (target_logprob -18 at point 0 to -41 at "
            "point 4: inverse scaling)") in result.sentence


def test_rising_without_monotony():
    # .1, .3, .2, .4, .3, .5: C = 5 + 2 + 3 + 1 + 1 = 12, D = 2, one tie in 15 pairs ->
    # tau_b = 10 / sqrt(15 * 14) = .69 < .7; J = .2 / .4 = .5; B = .4 / .2 = 2: no jump, not
    # monotone, but the slope per decade is above 0 beyond noise
    analysis = analyze_series([*SIZES, 1e9], _binary([0.1, 0.3, 0.2, 0.4, 0.3, 0.5]), n_boot=200)
    assert analysis.tau.estimate == pytest.approx(10 / math.sqrt(210))
    assert analysis.share.estimate == pytest.approx(0.5) and analysis.b.estimate == pytest.approx(2.0)
    assert analysis.slope.ci_low > 0
    assert classify(analysis).shape == "rising"


# --------------------------------------------------------------------------------------
# Extrapolation


def test_linear_extrapolation_by_hand():
    # y = log10 x on the first three points: predicts 4 at 1e4; observed 10 -> error +6
    x = np.array([1e1, 1e2, 1e3, 1e4])
    fit = extrapolate(x, np.array([1.0, 2.0, 3.0, 10.0]), None, True, "linear in log10 x")
    assert fit is not None and fit.n_fit == 3
    assert fit.predicted == pytest.approx(4.0) and fit.error.estimate == pytest.approx(6.0)
    assert not fit.predicted_well  # 6 is most of the range 9
    lower = extrapolate(x, np.array([1.0, 2.0, 3.0, 10.0]), None, False, "linear in log10 x")
    assert lower is not None and lower.error.estimate == pytest.approx(-6.0)  # oriented: worse
    assert extrapolate(x[:3], np.array([1.0, 2.0, 3.0]), None, True, "linear in log10 x") is None


def test_logistic_extrapolation_by_hand():
    # logit y = -2, 0, 2 at log10 x = 1, 2, 3 -> logit 4 at log10 x = 4 -> y = 1 / (1 + e^-4)
    x = np.array([1e1, 1e2, 1e3, 1e4])
    points = 1.0 / (1.0 + np.exp(-np.array([-2.0, 0.0, 2.0, 4.0])))
    fit = extrapolate(x, points, None, True, "logistic in log10 x")
    assert fit is not None
    assert fit.predicted == pytest.approx(1.0 / (1.0 + math.exp(-4.0)))
    assert fit.error.estimate == pytest.approx(0.0, abs=1e-12) and fit.predicted_well


def test_extrapolation_ci_refits_every_resample():
    x = np.array([1e1, 1e2, 1e3, 1e4])
    reps = np.random.default_rng(0).random((30, 4))
    rows = predict_rows(x[:3], reps[:, :3], x[3:], "linear in log10 x")[:, 0]
    one_by_one = [np.polyval(np.polyfit(np.log10(x[:3]), row[:3], 1), 4.0) for row in reps]
    np.testing.assert_allclose(rows, one_by_one, rtol=1e-9)


def test_a_jump_at_the_largest_size_is_not_predicted():
    # exact match 0, 0, 0, 0, .6 (400 examples): the logistic fit to the zeros predicts ~0
    analysis = analyze_series(SIZES, _binary([0.0, 0.0, 0.0, 0.0, 0.6]), n_boot=200, family="exact match")
    fit = analysis.extrapolation
    assert fit is not None and fit.fit == "logistic in log10 x"
    assert fit.predicted == pytest.approx(1e-3, rel=1e-6)  # the clipped zeros, LOGIT_EPS
    assert fit.error.ci_low > 0.5 and not fit.predicted_well
    assert "not predicted from the smaller points" in classify(analysis).phrase


# --------------------------------------------------------------------------------------
# Seeds


def test_split_seed():
    assert split_seed("pico-s2-56k") == ("pico-56k", 2)
    assert split_seed("pico-56k-s12") == ("pico-56k", 12)
    assert split_seed("pico-56k") == ("pico-56k", None)
    assert split_seed("pico-scratchpad-56k") == ("pico-scratchpad-56k", None)


def test_seed_band_by_hand():
    band = seed_band(np.array([[0.0, 0.1], [0.2, 0.5], [0.1, 0.3]]))
    assert band.n_seeds == 3
    assert band.low == (0.0, 0.1) and band.high == (0.2, 0.5)
    assert band.mean == pytest.approx((0.1, 0.3)) and band.sd == pytest.approx((0.1, 0.2))
    assert band.spread == pytest.approx((0.2, 0.4)) and band.spread_around(0, 1) == pytest.approx(0.4)
    with pytest.raises(HarnessError):
        seed_band(np.array([[0.0, 0.1]]))


def test_a_jump_counts_only_beyond_the_seed_spread():
    # exact match 0, 0, .02, .32, .34 (400 examples): one step of .30, CI about [.25, .35]
    analysis = analyze_series(SIZES, _binary([0.0, 0.0, 0.02, 0.32, 0.34]), n_boot=200)
    assert classify(analysis).shape == "jump"
    low, high = analysis.step_gain.ci_low, analysis.step_gain.ci_high
    assert 0.2 < low < 0.3 < high
    # three seeds that disagree by up to .45 at the jump: the step is within seed noise
    wide = np.array([[0.0, 0.0, 0.02, 0.32, 0.34], [0.0, 0.0, 0.3, 0.5, 0.5], [0.0, 0.0, 0.05, 0.75, 0.7]])
    inside = with_seed_band(analysis, wide)
    assert inside.seed_spread == pytest.approx(0.43)  # max(.3 - .02, .75 - .32)
    assert classify(inside).shape != "jump"
    assert "vs seed spread 0.43 (3 seeds)" in classify(inside).phrase  # the evidence says why
    # three seeds within .04 of each other: the step clears the spread
    narrow = np.array([[0.0, 0.0, 0.02, 0.32, 0.34], [0.0, 0.01, 0.03, 0.30, 0.35],
                       [0.0, 0.0, 0.0, 0.34, 0.33]])
    beyond = classify(with_seed_band(analysis, narrow))
    assert beyond.shape == "jump"
    assert "vs seed spread 0.04 (3 seeds)" in beyond.phrase


# --------------------------------------------------------------------------------------
# Mirage fit and the rule tables


def test_mirage_explains_the_whole_rise_by_hand():
    # p_tok .5 then .9, L = 2 for every example: predicted .25 then .81, a rise of .56;
    # observed exact match exactly .25 then .81 -> fraction 1
    observed = _binary([0.25, 0.81], 100)
    p_tok = np.array([[0.5] * 100, [0.9] * 100])
    lengths = np.full((2, 100), 2.0)
    result = mirage_explained([1e5, 1e4][::-1], observed, p_tok, lengths, n_boot=200)
    assert result.predicted_rise.estimate == pytest.approx(0.56)
    assert result.observed_rise.estimate == pytest.approx(0.56)
    assert result.fraction.estimate == pytest.approx(1.0)
    assert result.fraction.ci_low < 1.0 < result.fraction.ci_high  # resampled observed rise moves
    # half the observed rise: p_tok^L explains half
    # sqrt(.53)^2 = .53: a predicted rise of .28, half of .56
    p_half = np.array([[0.5] * 100, [math.sqrt(0.53)] * 100])
    half = mirage_explained([1e4, 1e5], _binary([0.25, 0.81], 100), p_half, lengths, n_boot=0)
    assert half.fraction.estimate == pytest.approx(0.5)
    flat = mirage_explained([1e4, 1e5], np.zeros((2, 10)), p_tok[:, :10], lengths[:, :10], n_boot=0)
    assert math.isnan(flat.fraction.estimate) and "does not rise" in flat.description


def test_every_rule_has_a_trend_and_a_text():
    trends = {"rising", "declining", "flat", "U-shaped", "inverted-U", "unclear"}
    assert {rule.trend for rule in SHAPE_RULES} == trends
    assert all(rule.text for rule in SHAPE_RULES) and all(rule.text for rule in CONCLUSION_RULES)
    assert SHAPE_RULES[-1].shape == "unclear" and CONCLUSION_RULES[-1].conclusion == "unclear"


def test_a_jump_that_stays_up_after_a_dip_is_a_jump():
    # a scratchpad's log-prob -6, -5.5, -27, 0, 0: it dips, then ends far above its start;
    # J = 27 / 27 = 1 and tau = .6: the jump rule comes before the bends
    analysis = analyze_series(SIZES, _around([-6.0, -5.5, -27.0, 0.0, 0.0]), n_boot=200)
    assert analysis.valley is not None and analysis.valley.holds
    assert classify(analysis).shape == "jump"


def test_a_continuous_rise_beside_a_jump_makes_an_artefact_and_the_mirage_fit_needs_one():
    from harness.emergence import Estimate, MirageExplained

    explains = MirageExplained(Estimate(0.5, 0.4, 0.6), Estimate(0.45, 0.4, 0.5), Estimate(0.9, 0.7, 1.1))
    sizes = [*SIZES, 1e9]
    jump = analyze_series(sizes, _binary([0.0, 0.0, 0.0, 0.0, 0.02, 0.5]), n_boot=200,
                          metric="exact_str_match", family="exact match")
    # digit accuracy rising, not monotone (the series of test_rising_without_monotony)
    digits = analyze_series(sizes, _binary([0.1, 0.3, 0.2, 0.4, 0.3, 0.5]), n_boot=200,
                            metric="digit_accuracy", family="partial credit")
    assert (classify(jump).shape, classify(digits).shape) == ("jump", "rising")
    # partial credit rising without a jump beside it: the gradual improvement the jump hides
    beside = verdict("t", {"exact_str_match": jump, "digit_accuracy": digits})
    assert beside.conclusion == "metric artefact"
    assert "rising without a jump under partial credit" in beside.sentence
    # digit accuracy flat: nothing continuous rises, and the mirage fit alone explains nothing
    still = analyze_series(sizes, _binary([0.3, 0.3, 0.3, 0.3, 0.3, 0.3]), n_boot=200,
                           metric="digit_accuracy", family="partial credit")
    assert classify(still).shape == "flat"
    for fit in (None, explains):
        alone = verdict("t", {"exact_str_match": jump, "digit_accuracy": still}, fit)
        assert alone.conclusion == "jump unexplained"
    with_rise = verdict("t", {"exact_str_match": jump, "digit_accuracy": digits}, explains)
    assert with_rise.conclusion == "metric artefact"
    assert "p_tok^L accounts for the rise" in with_rise.sentence
    # the log-prob jumps too (p_tok itself jumps): p_tok^L following it explains nothing
    logprob = analyze_series(sizes, _around([-9.0, -9.0, -9.0, -9.0, -8.9, -1.0]), n_boot=200,
                             metric="target_logprob", family="log-likelihood")
    both = verdict("t", {"exact_str_match": jump, "target_logprob": logprob}, explains)
    assert both.conclusion == "jump under every metric"
    assert "p_tok^L explains 0.90 [0.70, 1.10] of exact match's rise" in both.sentence


def test_a_bend_is_the_conclusion_only_when_nothing_rises():
    peak = analyze_series(SIZES[:4], _binary([0.1, 0.5, 0.8, 0.3]), n_boot=200, metric="exact_str_match",
                          family="exact match")
    line = analyze_series(SIZES[:4], _around([-4.0, -3.0, -2.0, -1.0]), n_boot=200, metric="target_logprob",
                          family="log-likelihood")
    flat = analyze_series(SIZES[:4], np.zeros((4, 50)), n_boot=200, metric="digit_accuracy")
    alone = verdict("t", {"exact_str_match": peak, "digit_accuracy": flat})
    assert alone.conclusion == "U-shaped" and "exact match bends" in alone.sentence
    assert verdict("t", {"exact_str_match": peak, "target_logprob": line}).conclusion == "smooth"


def test_a_band_over_some_points_only():
    # three seeds at the two smallest sizes, one at the largest (as pico trains its seeds)
    values = np.array([[0.0, 0.1, 0.6], [0.2, 0.4, np.nan], [0.1, 0.2, np.nan]])
    band = seed_band(values)
    assert band.n_seeds == 3 and band.counts == (3, 3, 1)
    assert band.measured == (True, True, False)
    assert band.low[:2] == (0.0, 0.1) and band.high[:2] == (0.2, 0.4) and np.isnan(band.low[2])
    assert band.mean[:2] == pytest.approx((0.1, 0.7 / 3)) and band.sd[0] == pytest.approx(0.1)
    # a step with one measured end takes that end's spread; with none, the largest measured one
    assert band.spread_around(1, 2) == pytest.approx(0.3) and not band.stand_in(1, 2)
    three = seed_band(np.array([[0.0, 0.1, 0.6, 0.9], [0.2, 0.4, np.nan, np.nan]]))
    assert three.spread_around(2, 3) == pytest.approx(0.3) and three.stand_in(2, 3)
    with pytest.raises(HarnessError):  # one seed everywhere is no band
        seed_band(np.array([[0.0, 0.1], [np.nan, np.nan]]))
