"""The report's "every metric side by side" section: per task, shots and family, each model's metric means.

A synthetic results folder (tests/test_report_axes.py's records, summaries by the real
`runner.summarize_run`): a family "tiny" of three sizes on two arithmetic subtasks, a third
subtask that the largest size did not run, and one task without subtasks. The numbers are
checked against means computed here from the records.
"""

from __future__ import annotations

import html
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from harness.metrics import score_examples
from harness.report import build_report
from harness.report.data import ScoreCache, build_blocks, load_runs, scale_axis
from harness.report.page_data import inline_packed
from harness.report.section import Figures, Inputs
from harness.report.sections import sidebyside
from harness.report.text import format_value
from tests.test_report import _model, write_run
from tests.test_report_axes import SIZES, make_records

SUBTASKS = ("arithmetic/2_digit_addition", "arithmetic/3_digit_addition")
PARTIAL = "arithmetic/1_digit_addition"  # every size but the largest ran it
LONE = "toy"  # a task without subtasks: its own unit
LEVELS = {"1k": 0, "4k": 2, "16k": 3}  # a size's level in make_records (exact match 0, 0, 0.5 at 0 shots)


def _records(task: str, size: str):
    # the second subtask is one level behind, so that the mean over subtasks differs from either
    level = LEVELS[size] - (1 if task == SUBTASKS[1] and LEVELS[size] else 0)
    return make_records(task, level)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("side")
    out = root / "results"
    for size, params in SIZES.items():
        model = _model(f"tiny-{size}", "main", root / "models" / size, params)
        for task in (*SUBTASKS, LONE) + ((PARTIAL,) if size != "16k" else ()):
            write_run(out, model, task, _records(task, size))
    return out


def _items(results: Path, axis: str = "params"):
    runs = load_runs(results)
    scale = scale_axis(axis)
    inputs = Inputs(tuple(runs), tuple(build_blocks(runs, scale)), {}, ScoreCache(), scale)
    return sidebyside.gather(inputs)


def _hand_mean(task: str, size: str, metric: str) -> float:
    return float(np.nanmean([scores[metric] for scores in score_examples(_records(task, size))]))


def test_subtasks_are_one_unit_averaged_over_the_subtasks_every_model_ran(results: Path):
    items = {item.unit: item for item in _items(results)}
    assert set(items) == {"arithmetic", LONE}
    item = items["arithmetic"]
    assert set(item.subtasks) == set(SUBTASKS)  # PARTIAL left out: the largest size lacks it
    assert [row.run.model for row in item.rows] == ["tiny-1k", "tiny-4k", "tiny-16k"]  # by size
    for metric in ("exact_str_match", "multiple_choice_grade", "target_logprob", "digit_accuracy"):
        for row, size in zip(item.rows, SIZES):
            expected = sum(_hand_mean(task, size, metric) for task in SUBTASKS) / len(SUBTASKS)
            value = row.values[item.metrics.index(metric)]
            assert math.isclose(value, expected, rel_tol=1e-9), (metric, size)
    assert [row.n for row in item.rows] == [20, 20, 20]
    # the two subtasks really differ, so a mean that took one of them would fail above
    means = [_hand_mean(task, "16k", "exact_str_match") for task in SUBTASKS]
    assert means[0] != means[1]


def test_a_task_without_subtasks_is_its_own_unit_and_the_sentence_quotes_the_ends(results: Path):
    item = next(item for item in _items(results) if item.unit == LONE)
    assert item.subtasks == (LONE,)
    column = item.column("exact_str_match")
    assert column == [_hand_mean(LONE, size, "exact_str_match") for size in SIZES]
    assert column[0] != column[-1]
    assert f"exact_str_match {format_value(column[0])} → {format_value(column[-1])}" in item.sentence
    assert "tiny-1k@main to tiny-16k@main" in item.sentence
    assert "exact_match_raw" in item.metrics and "answer_no_match" in item.metrics


def test_markdown_tables_hold_every_row_and_value(results: Path):
    items = _items(results)
    lines = sidebyside.markdown(items, Figures(), "")
    rows = [line for line in lines if line.startswith("| tiny-")]
    assert len(rows) == sum(len(item.rows) for item in items)
    item = items[0]
    first = rows[0].strip("| ").split(" | ")
    assert first[0] == item.rows[0].run.label
    assert first[-len(item.metrics):] == [format_value(v) for v in item.rows[0].values]


def test_a_lone_model_gives_no_table(results: Path, tmp_path: Path):
    out = tmp_path / "results"
    write_run(out, _model("tiny-1k", "main", tmp_path / "m", 1_000), LONE, _records(LONE, "1k"))
    assert _items(out) == ()


def test_without_a_subtask_every_model_ran_the_model_with_fewest_is_left_out(tmp_path: Path):
    out = tmp_path / "results"
    ran = {"1k": SUBTASKS[:1], "4k": SUBTASKS, "16k": SUBTASKS[1:]}
    for size, tasks in ran.items():
        model = _model(f"tiny-{size}", "main", tmp_path / size, SIZES[size])
        for task in tasks:
            write_run(out, model, task, _records(task, size))
    (item,) = _items(out)
    assert item.subtasks == SUBTASKS[:1]  # tiny-16k (one subtask, named first) went
    assert [row.run.model for row in item.rows] == ["tiny-1k", "tiny-4k"]


def test_on_the_loss_axis_models_without_a_held_out_loss_are_left_out(results: Path):
    assert _items(results, "loss") == ()  # no loss runs: no size series, no table


def test_the_page_and_summary_carry_the_section(results: Path, tmp_path: Path):
    index = build_report(results, out=tmp_path / "report", n_boot=20, workers=1)
    page = inline_packed(index.read_text(encoding="utf-8"))
    assert 'id="side-by-side"' in page and 'href="#side-by-side"' in page
    item = next(item for item in _items(results) if item.unit == "arithmetic")
    assert item.sentence.replace("→", "&rarr;") in page or html.escape(item.sentence) in page
    summary = (tmp_path / "report" / "summary.md").read_text(encoding="utf-8")
    assert "## Every metric side by side" in summary and f"- {item.sentence}" in summary
    assert (tmp_path / "report" / f"fig-{item.slug}.png").exists() and f"fig-{item.slug}.png" in summary


def test_the_figure_adds_a_held_out_loss_row_for_models_measured_on_one_text(results: Path):
    item = next(item for item in _items(results) if item.unit == LONE)
    assert sidebyside._loss_rows(item) == []
    assert len(sidebyside.side_figure(item).axes) == len(item.metrics)  # one row: no loss
    measured = [(0.9, "loss/reference"), (0.8, "loss/reference"), (0.5, "loss/other")]
    rows = tuple(replace(row, run=replace(row.run, heldout_bpb=bpb, heldout_task=text))
                 for row, (bpb, text) in zip(item.rows, measured))
    with_loss = replace(item, rows=rows)
    assert [row.run.heldout_bpb for row in sidebyside._loss_rows(with_loss)] == [0.9, 0.8]  # one text
    fig = sidebyside.side_figure(with_loss)
    assert len(fig.axes) == 2 * len(item.metrics)
    loss_panel = fig.axes[len(item.metrics)]  # first panel of the second row: exact_str_match
    xs = sorted(loss_panel.lines[0].get_xdata())
    assert np.allclose(xs, [1 / 0.9, 1 / 0.8])  # x = 1/bpb: lower loss to the right
