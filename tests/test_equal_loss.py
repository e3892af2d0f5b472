"""The equal-loss test (harness.emergence.equal_loss and its report section): matching at equal
held-out loss and equal compute, the paired difference and its CI, and the counts, on
hand-computed checkpoints and scores; then the committed pico runs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from harness.emergence import Estimate
from harness.emergence.equal_loss import (
    COMPUTE_RULE,
    LOSS_RULE,
    Checkpoint,
    Comparison,
    Match,
    MatchRule,
    match_checkpoints,
    paired_difference,
    tally,
)
from harness.errors import HarnessError
from harness.report.sections import equal_loss as section
from harness.stats import bootstrap_mean_ci

REPO = Path(__file__).resolve().parents[1]


def _pairs(matches):
    return [(m.smaller.label, m.larger.label, round(m.gap, 6)) for m in matches]


SMALL = [Checkpoint("s@100", 10, 100, 1.00), Checkpoint("s@200", 10, 200, 0.80)]
LARGE = [Checkpoint("l@10", 20, 10, 1.01), Checkpoint("l@20", 20, 20, 0.90),
         Checkpoint("l@40", 20, 40, 0.79)]
HUGE = [Checkpoint("h@5", 40, 5, 0.50)]  # far from every other checkpoint


def test_each_smaller_checkpoint_meets_the_nearest_of_each_larger_size_within_tolerance():
    # s@100 (1.00): nearest large is l@10 (1.01), +1%; s@200 (0.80): l@40 (0.79), -1.25%.
    # h@5 (0.50) is 50% from everything: no pair; l@... never pairs with a smaller size.
    matches = match_checkpoints(SMALL + LARGE + HUGE, LOSS_RULE)
    assert _pairs(matches) == [("s@100", "l@10", 0.01), ("s@200", "l@40", -0.0125)]


def test_a_pair_beyond_the_tolerance_is_dropped_and_the_boundary_is_kept():
    rule = MatchRule("held-out loss", "heldout_bpb", "bits per byte", 0.01)
    # 1% exactly (1.00 -> 1.01) is within; 1.25% is not
    assert _pairs(match_checkpoints(SMALL + LARGE, rule)) == [("s@100", "l@10", 0.01)]
    assert match_checkpoints(SMALL + HUGE, LOSS_RULE) == []


def test_a_tie_goes_to_the_earlier_step_and_unusable_values_take_no_part():
    rule = MatchRule("held-out loss", "heldout_bpb", "bits per byte", 0.3)
    checkpoints = [Checkpoint("s@1", 1, 1, 1.0), Checkpoint("l@8", 2, 8, 0.75),
                   Checkpoint("l@4", 2, 4, 1.25), Checkpoint("l@2", 2, 2, math.nan)]
    assert _pairs(match_checkpoints(checkpoints, rule)) == [("s@1", "l@4", 0.25)]


def test_compute_is_matched_within_a_factor():
    checkpoints = [Checkpoint("s@4", 1, 4, 1e12), Checkpoint("s@0", 1, 0, 0.0),
                   Checkpoint("m@1", 2, 1, 1.4e12), Checkpoint("m@2", 2, 2, 2.8e12),
                   Checkpoint("l@1", 4, 1, 1.6e12), Checkpoint("l@0", 4, 0, 0.0)]
    # s@4 -> m@1 (ratio 1.4 <= 1.5); l@1 is 1.6x from s@4 (beyond) but 1.14x from m@1;
    # compute 0 (step 0) cannot be placed on a ratio scale
    assert _pairs(match_checkpoints(checkpoints, COMPUTE_RULE)) == [
        ("s@4", "m@1", 1.4), ("m@1", "l@1", round(1.6 / 1.4, 6))]


def test_a_bad_tolerance_is_one_clear_error():
    with pytest.raises(HarnessError, match="tolerance"):
        MatchRule("training compute", "training_compute", "FLOPs", 0.5, by_factor=True)
    with pytest.raises(HarnessError, match="tolerance"):
        MatchRule("held-out loss", "heldout_bpb", "bits per byte", -0.01)


def test_the_paired_difference_is_the_mean_over_examples_both_scored():
    # example 1 unscored by the smaller, example 3 by the larger: the difference is over 0 and 2
    smaller = np.array([0.0, math.nan, 1.0, 0.0])
    larger = np.array([1.0, 1.0, 1.0, math.nan])
    difference, n = paired_difference(smaller, larger, n_boot=200, seed=0)
    assert n == 2 and difference.estimate == pytest.approx(0.5)
    # every resample of {1, 0} has a mean in [0, 1]; both ends occur in 200 resamples of 2
    assert (difference.ci_low, difference.ci_high) == (0.0, 1.0)
    same, _ = paired_difference(np.array([1.0, 2.0, 3.0]), np.array([3.0, 4.0, 5.0]), 100, 0)
    assert (same.estimate, same.ci_low, same.ci_high) == (2.0, 2.0, 2.0)


def test_the_ci_is_the_projects_percentile_bootstrap_of_the_differences():
    rng = np.random.default_rng(1)
    smaller, larger = rng.normal(size=50), rng.normal(0.3, 1, size=50)
    difference, n = paired_difference(smaller, larger, n_boot=500, seed=7)
    mean, low, high = bootstrap_mean_ci(larger - smaller, n_boot=500, seed=7)
    assert n == 50
    assert (difference.estimate, difference.ci_low, difference.ci_high) == pytest.approx((mean, low, high))


def test_no_common_example_or_no_resample_gives_no_ci():
    empty, n = paired_difference(np.array([math.nan]), np.array([1.0]))
    assert n == 0 and math.isnan(empty.estimate)
    unresampled, _ = paired_difference(np.array([0.0, 1.0]), np.array([1.0, 1.0]), n_boot=0)
    assert unresampled.estimate == 0.5 and not unresampled.has_ci
    with pytest.raises(HarnessError, match="aligned"):
        paired_difference(np.zeros(3), np.zeros(4))


def _comparison(metric: str, estimate: float, low: float, high: float) -> Comparison:
    match = Match(SMALL[0], LARGE[0], 0.01)
    return Comparison(match, metric, Estimate(estimate, low, high), 10)


def test_direction_needs_the_ci_to_exclude_zero():
    assert _comparison("m", 0.3, 0.1, 0.5).direction == "larger"
    assert _comparison("m", -0.3, -0.5, -0.1).direction == "smaller"
    assert _comparison("m", 0.1, 0.0, 0.3).direction == "neither"  # touching 0 is not beyond
    assert _comparison("m", 0.1, math.nan, math.nan).direction == "neither"


def test_tally_counts_each_metric_in_order_of_first_appearance():
    comparisons = [_comparison("em", 0.3, 0.1, 0.5), _comparison("lp", -1, -2, -0.5),
                   _comparison("em", 0.2, 0.05, 0.4), _comparison("em", -0.2, -0.4, -0.1),
                   _comparison("em", 0.0, -0.1, 0.1), _comparison("em", math.nan, math.nan, math.nan)]
    em, lp = tally(comparisons)
    assert (em.metric, em.n, em.larger, em.smaller, em.neither) == ("em", 4, 2, 1, 1)
    assert (lp.metric, lp.n, lp.larger, lp.smaller, lp.neither) == ("lp", 1, 0, 1, 0)
    assert em.sentence == ("em: the larger model scores higher in 2 of 4 pairs, lower in 1, and "
                           "neither beyond the 95% CI in 1")


def _row(model: str, params: int, step: int, bpb: float, exact: list[float] | None) -> dict:
    row = {"family": "toy", "task": "arithmetic/2_digit_addition", "shots": 0, "demo_labels": "true",
           "model": model, "revision": f"step{step}", "step": step, "non_embedding_params": params,
           "heldout_bpb": bpb, "training_compute": 6.0 * params * step * 100,
           "run_dir": f"runs/{model}@step{step}", "exact_str_match.mean": None}
    if exact is not None:
        row["exact_str_match.mean"] = float(np.mean(exact))
    return row


def test_the_section_gathers_trained_checkpoints_and_compares_their_stored_scores():
    scores = {"runs/toy-1k@step100": [0, 0, 1, 0], "runs/toy-4k@step25": [1, 1, 1, 0],
              "runs/toy-4k@step100": [1, 1, 1, 1]}
    rows = [_row("toy-1k", 1000, 0, 0.70, [0, 0, 0, 0]),  # step 0: left out
            _row("toy-4k", 4000, 0, 0.70, [0, 0, 0, 0]),
            _row("toy-1k", 1000, 100, 0.70, scores["runs/toy-1k@step100"]),
            _row("toy-4k", 4000, 25, 0.705, scores["runs/toy-4k@step25"]),
            _row("toy-4k", 4000, 100, 0.50, scores["runs/toy-4k@step100"]),
            _row("toy-s2-4k", 4000, 25, 0.70, [1, 1, 1, 1])]  # a seed variant: left out

    def pair(dir_a, dir_b, metric):
        assert metric == "exact_str_match"  # the only metric the rows hold
        return np.array(scores[dir_a], float), np.array(scores[dir_b], float)

    (test,) = section.gather(rows, pair, n_boot=100, tasks=["arithmetic/2_digit_addition"])
    loss = dict(test.comparisons)[LOSS_RULE]
    assert [(c.match.smaller.label, c.match.larger.label, c.metric) for c in loss] == [
        ("toy-1k@step100", "toy-4k@step25", "exact_str_match")]
    assert loss[0].difference.estimate == pytest.approx(0.5) and loss[0].n_examples == 4
    # compute: 6 * 1000 * 100 * 100 vs 6 * 4000 * 25 * 100: equal
    compute = dict(test.comparisons)[COMPUTE_RULE]
    assert [c.match.gap for c in compute] == [1.0]
    html = section.render([test], {}).html
    assert "0 / 0 / 1" in html  # loss: neither beyond the CI in the one pair ([0, 1] over 4)
    assert "toy-4k@step25" in html and "+0.500" in html


@pytest.mark.skipif(not (REPO / "results" / "index.parquet").exists(), reason="no committed index")
def test_committed_pico_runs_differ_at_equal_loss_on_two_digit_addition():
    """pico-232k and pico-606k both end at 0.637-0.638 bits per byte; exact match 0.00 vs 0.42."""
    from harness.index import records
    from harness.report.data import ScoreCache, load_runs

    results = REPO / "results"
    pair = section.cache_pair_scores(load_runs(results), ScoreCache())
    (test,) = section.gather(records(results), pair, n_boot=200, tasks=["arithmetic/2_digit_addition"])
    found = {(c.match.smaller.label, c.match.larger.label, c.metric): c
             for c in dict(test.comparisons)[LOSS_RULE]}
    final = found[("pico-232k@step4000", "pico-606k@step4000", "exact_str_match")]
    assert abs(final.match.gap) < 0.002 and final.n_examples == 100
    assert final.difference.estimate == pytest.approx(0.42) and final.direction == "larger"


def test_the_largest_differences_beyond_the_ci_are_named_with_their_numbers():
    comparisons = (_comparison("exact_str_match", 0.1, 0.05, 0.2),
                   _comparison("exact_str_match", -0.4, -0.5, -0.3),
                   _comparison("exact_str_match", 0.9, -0.1, 1.0))  # the largest, but within its CI
    test = section.TaskTest("toy", "arithmetic/2_digit_addition", (), ((LOSS_RULE, comparisons),))
    (sentence,) = section.largest_sentences([test], k=1)
    assert sentence == ("Largest exact_str_match differences (larger − smaller) at equal held-out loss: "
                        "2_digit_addition, s@100 (1.0000) vs l@10 (1.0100): -0.400 [-0.500, -0.300].")


def test_without_an_index_the_page_has_no_equal_loss_section(tmp_path):
    from harness.report.data import ScoreCache

    (tmp_path / "runs").mkdir()
    assert section.equal_loss_section(tmp_path, tmp_path / "report", [], ScoreCache()) is None
    assert not (tmp_path / "report").exists()  # nothing written for a section not shown
