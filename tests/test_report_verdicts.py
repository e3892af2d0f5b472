"""Verdicts in the report: seed variants folded into one point and a band; every shape has its words."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from harness.report.analysis import seed_view
from harness.report.data import Run, build_blocks

PARAMS = {"16k": 16_000, "56k": 56_000, "232k": 232_000}
# exact match of three seeds at three sizes (seed None is the unseeded, committed run)
EXACT_MATCH = {None: (0.0, 0.1, 0.6), 1: (0.0, 0.2, 0.5), 2: (0.05, 0.1, 0.7)}


def _run(size: str, seed: int | None) -> Run:
    model = f"pico-{size}" if seed is None else f"pico-s{seed}-{size}"
    value = EXACT_MATCH[seed][list(PARAMS).index(size)]
    return Run(folder=Path("/nowhere") / model, rel_dir=f"{model}@step100/t", model=model, revision="step100",
               family="pico", step=100, tokens_seen=None, total_params=PARAMS[size] * 2,
               non_embedding_params=PARAMS[size], dtype="float32", boundary="natural", task="arithmetic/x",
               shots=0, demo_labels="true", n=10,
               summary={"metrics": {"exact_str_match": {"mean": value}}})


def test_seed_variants_fold_into_one_point_and_a_band():
    runs = [_run(size, seed) for size in PARAMS for seed in EXACT_MATCH]
    block = build_blocks(runs)[0]
    series = block.size_series[0]
    assert len(series.runs) == 3  # one point per size: the unseeded runs; the seeds are its band
    view = seed_view(block, series)
    assert [run.model for run in view.series.runs] == ["pico-16k", "pico-56k", "pico-232k"]
    assert view.series.x == (16_000.0, 56_000.0, 232_000.0)
    assert [len(point) for point in view.members] == [3, 3, 3]
    band = view.band("exact_str_match")
    assert band is not None and band.n_seeds == 3
    assert band.low == (0.0, 0.1, 0.5) and band.high == (0.05, 0.2, 0.7)
    assert band.spread == pytest.approx((0.05, 0.1, 0.2))
    assert view.band("target_logprob") is None  # not measured: no band, never zeros


def test_a_family_without_seeds_has_no_band():
    block = build_blocks([_run(size, None) for size in PARAMS])[0]
    view = seed_view(block, block.size_series[0])
    assert view.members == () and view.band("exact_str_match") is None
    assert view.series.runs == block.size_series[0].runs


def test_every_shape_has_words_wherever_the_report_names_shapes():
    from harness.emergence import SHAPE_RULES
    from harness.report.sections import headline, shots, sizes

    shapes = {rule.shape for rule in SHAPE_RULES}
    assert shapes <= set(shots._GAIN_WORDS)
    assert shapes <= set(headline._WORDS)
    assert shapes <= set(sizes._SHAPE_WORDS)  # a shape missing here would drop out of summary.md
    assert shapes <= set(headline.SHAPE_ORDER)


def test_seeds_at_some_sizes_give_a_band_there_and_no_step_series_of_their_own():
    runs = [_run(size, seed) for size in PARAMS for seed in EXACT_MATCH
            if seed is None or size != "232k"]
    runs += [replace(run, revision="step50", step=50) for run in runs]
    block = build_blocks(runs)[0]
    view = seed_view(block, block.size_series[0])
    assert [len(point) for point in view.members] == [3, 3, 1]
    band = view.band("exact_str_match")
    assert band is not None and band.counts == (3, 3, 1) and band.measured == (True, True, False)
    assert band.spread[:2] == pytest.approx((0.05, 0.1))
    # the seed variants fold into pico-16k's and pico-56k's step series, not series of their own
    assert [s.name for s in block.step_series] == ["pico-16k", "pico-56k", "pico-232k"]
