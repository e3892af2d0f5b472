"""The report's x axis (`harness report --x params|total|compute|loss`, harness/report/axes.py).

Synthetic runs built in the test (summaries only, like tests/test_report_verdicts.py): a family
"pico" of three sizes with known tokens seen and held-out bits per byte, and a model of no
family whose training tokens are unknown and which has no loss run. Last, the committed results:
the report's compute and loss per run equal the index's.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.report.analysis import analyze
from harness.report.axes import X_AXES, scale_axis
from harness.report.data import Run, ScoreCache, build_blocks

PARAMS = {"16k": 16_000, "56k": 56_000, "232k": 232_000}
TOKENS = 1_000_000
BPB = {"16k": 0.9, "56k": 0.8, "232k": 0.6}  # loss falls with size
EXACT_MATCH = {"16k": 0.0, "56k": 0.1, "232k": 0.6}


def _run(model: str, non_embedding: int, tokens_seen: int | None, bpb: float | None, exact_match: float,
         family: str | None = "pico", text: str | None = "loss/pico-corpus") -> Run:
    return Run(folder=Path("/nowhere") / model, rel_dir=f"runs/{model}@main/t", model=model, revision="main",
               family=family, step=None, tokens_seen=tokens_seen, total_params=non_embedding * 2,
               non_embedding_params=non_embedding, dtype="float32", boundary="natural", task="arithmetic/x",
               shots=0, demo_labels="true", n=10,
               summary={"metrics": {"exact_str_match": {"mean": exact_match}}},
               heldout_bpb=bpb, heldout_task=None if bpb is None else text)


def _runs() -> list[Run]:
    family = [_run(f"pico-{size}", params, TOKENS, BPB[size], EXACT_MATCH[size])
              for size, params in PARAMS.items()]
    return family + [_run("lone-hub-model", 100_000, None, None, 0.3, family=None)]


def test_each_axis_gives_each_run_its_value_position_and_cell():
    pico, lone = _runs()[0], _runs()[-1]
    params, total, compute, loss = (scale_axis(key) for key in ("params", "total", "compute", "loss"))
    assert params.value(pico) == 16_000 and total.value(pico) == 32_000
    assert compute.value(pico) == 6 * 16_000 * TOKENS  # 6·N·D, N non-embedding (Kaplan et al. 2020)
    assert loss.value(pico) == 0.9 and loss.x(pico) == pytest.approx(1 / 0.9)
    assert compute.value(lone) is None and loss.value(lone) is None  # unknown, never 0 or a guess
    assert compute.value(replace(pico, tokens_seen=0)) is None  # step 0: no place on a log axis
    assert params.cell(pico) == "16,000" and compute.cell(pico) == "9.6e10" and loss.cell(pico) == "0.900"
    assert compute.cell(lone) == "–" and loss.cell(lone) == "–"
    assert compute.phrase(9.6e10) == "9.6e10" and loss.phrase(1 / 0.9) == "0.900"
    assert loss.tick(1 / 0.6) == "0.600"


def test_every_axis_name_and_the_old_one_are_known_and_an_unknown_one_is_one_clear_error():
    assert list(X_AXES) == ["params", "total", "compute", "loss"]
    assert scale_axis("non_embedding") == scale_axis("params")
    with pytest.raises(HarnessError, match="x axis 'flops'; choose one of params, total, compute, loss"):
        scale_axis("flops")
    with pytest.raises(HarnessError, match="unknown x axis"):
        build_blocks(_runs(), "flops")


def test_compute_axis_leaves_out_runs_without_tokens_and_names_them():
    block = build_blocks(_runs(), "compute")[0]
    assert [s.name for s in block.size_series] == ["pico (main)"]  # the lone model has no series
    series = block.size_series[0]
    assert series.x == tuple(6.0 * params * TOKENS for params in PARAMS.values())
    assert len(block.left_out) == 1 and "lone-hub-model@main" in block.left_out[0]
    assert "no training compute" in block.left_out[0]
    assert any(run.model == "lone-hub-model" for run in block.runs)  # still in the values table
    params_block = build_blocks(_runs(), "params")[0]
    assert params_block.left_out == () and len(params_block.size_series) == 2


def test_loss_axis_orders_by_falling_loss_and_the_statistics_read_one_over_bpb():
    block = build_blocks(_runs(), "loss")[0]
    series = block.size_series[0]
    assert [run.model for run in series.runs] == ["pico-16k", "pico-56k", "pico-232k"]  # lower loss last
    assert series.x == pytest.approx([1 / 0.9, 1 / 0.8, 1 / 0.6])
    assert "no held-out loss" in block.left_out[0] and "lone-hub-model@main" in block.left_out[0]
    result = analyze(block, series, ScoreCache(), n_boot=20, seed=0)
    analysis = result.analyses["exact_str_match"]
    assert analysis.x == pytest.approx([1 / 0.9, 1 / 0.8, 1 / 0.6])  # log10 x = -log10 bpb
    assert analysis.tau.estimate == pytest.approx(1.0)  # exact match rises as the loss falls


def test_loss_axis_keeps_one_text_per_series():
    runs = _runs()[:3]
    runs[0] = replace(runs[0], heldout_task="loss/reference", heldout_bpb=1.4)
    block = build_blocks(runs, "loss")[0]
    assert [run.model for run in block.size_series[0].runs] == ["pico-56k", "pico-232k"]
    assert "pico-16k@main" in block.left_out[0] and "another text" in block.left_out[0]


def test_headline_phrase_names_points_on_the_chosen_axis():
    from harness.report.sections.headline import metric_phrase

    runs = [_run(f"pico-{size}", params, TOKENS, BPB[size], value)
            for (size, params), value in zip(PARAMS.items(), (0.0, 0.0, 0.9))]
    for key, expected in (("compute", "between 3.4e11 and 1.4e12 FLOPs"),
                          ("loss", "between 0.800 and 0.600 bits per byte")):
        block = build_blocks(runs, key)[0]
        result = analyze(block, block.size_series[0], ScoreCache(), n_boot=20, seed=0)
        shape = result.shapes["exact_str_match"]
        assert shape.shape == "jump"
        phrase = metric_phrase("exact_str_match", result.analyses["exact_str_match"], shape,
                               result.series, scale_axis(key))
        assert expected in phrase


def test_loss_figure_puts_lower_loss_to_the_right_labelled_in_bits_per_byte():
    from matplotlib.figure import Figure

    from harness.report.plotting import set_x

    axis = scale_axis("loss")
    xs = [1 / bpb for bpb in BPB.values()]
    fig = Figure(figsize=(4, 3), layout="constrained")
    ax = fig.subplots()
    ax.plot(xs, list(EXACT_MATCH.values()), marker="o")
    set_x(ax, "params", xs, axis)
    fig.draw_without_rendering()
    ticks = sorted((ax.transData.transform((x, 0))[0], label.get_text())
                   for x, label in zip(ax.get_xticks(), ax.xaxis.get_majorticklabels()))
    assert [text for _, text in ticks] == ["0.900", "0.800", "0.600"]  # left to right: loss falls


def test_page_data_prints_the_axis_as_its_cells_do():
    from harness.report.page_data import page_data

    runs = _runs()
    data = page_data(runs, ["exact_str_match"], scale_axis("compute"))
    assert (data["x_label"], data["x_column"], data["x_format"]) == (X_AXES["compute"], "compute", "flops")
    assert data["runs"]["compute"] == [6.0 * p * TOKENS for p in PARAMS.values()] + [None]
    assert data["runs"]["bpb"] == [0.9, 0.8, 0.6, None]
    assert data["runs"]["params"] == [*PARAMS.values(), 100_000]
    loss = page_data(runs, [], scale_axis("loss"))
    assert (loss["x_column"], loss["x_format"]) == ("bpb", "bpb")


def test_explorer_offers_every_axis():
    pytest.importorskip("altair")
    from harness.report.sections.explorer import X_CHOICES, explorer_chart

    spec = explorer_chart(_runs()).to_dict()
    select = next(p for p in spec["params"] if p["name"] == "xaxis")
    assert select["bind"]["options"] == list(X_CHOICES) == [
        "parameters", "training step", "training compute", "held-out loss (bits per byte)"]
    text = str(spec)
    assert "datum.x_compute" in text and "datum.x_bpb" in text


@pytest.mark.parametrize("name", ["params", "total", "compute", "loss", "non_embedding"])
def test_cli_accepts_each_axis_name(name, tmp_path, monkeypatch):
    from harness import cli

    seen = {}

    def fake_build(results, x_axis, **_):
        seen["x"] = x_axis
        return tmp_path / "index.html"

    monkeypatch.setattr("harness.report.build_report", fake_build)
    assert cli.main(["report", str(tmp_path), "--x", name]) == 0
    assert seen["x"] == name


def test_cli_refuses_an_unknown_axis_in_one_line(tmp_path, capsys):
    from harness import cli

    assert cli.main(["report", str(tmp_path), "--x", "flops"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown x axis 'flops'" in err


def test_committed_results_carry_the_index_compute_and_loss():
    from harness.index import records
    from harness.report.data import load_runs

    root = Path(__file__).resolve().parents[1] / "results"
    if not (root / "index.parquet").exists():
        pytest.skip("no committed results index")
    by_dir = {r["run_dir"]: r for r in records(root, ["run_dir", "training_compute", "heldout_bpb"])}
    runs = load_runs(root)
    assert runs and all(run.rel_dir in by_dir for run in runs)
    for run in runs:
        row = by_dir[run.rel_dir]
        assert run.heldout_bpb == row["heldout_bpb"]
        expected = row["training_compute"]
        assert (run.training_compute is None) == (expected is None)
        assert expected is None or math.isclose(run.training_compute, expected, rel_tol=1e-12)
    assert any(run.heldout_bpb is not None for run in runs)
    assert any(run.training_compute is None for run in runs)  # e.g. smollm2: tokens unknown


def _inputs(runs: list[Run], key: str):
    from harness.report.data import detail_blocks
    from harness.report.section import Inputs

    axis = scale_axis(key)
    blocks = build_blocks(runs, axis)
    cache = ScoreCache()
    results = {block.slug: tuple(analyze(block, series, cache, n_boot=20, seed=0)
                                 for series in (*block.size_series, *block.step_series)) for block in blocks}
    return Inputs(tuple(runs), tuple(blocks), results, cache, axis, 20, 0, frozenset(detail_blocks(blocks)))


@pytest.mark.parametrize("key", list(X_AXES))
def test_the_page_renders_on_every_axis_and_names_tasks_without_a_model_on_it(key):
    from harness.report import page
    from harness.report.section import Figures

    runs = [*_runs(), replace(_runs()[-1], task="emoji_movie")]  # emoji_movie: the lone model only
    inputs = _inputs(runs, key)
    gathered = page.gather(inputs)
    html = page.render_page(page.PageInfo("t", "results", "–"), gathered, Figures(), inputs)
    assert f"x axis: {X_AXES[key]}" in html and inputs.axis.statistic.split(" ")[0] in html
    assert [item.task for item in gathered.top.headlines][0] == "arithmetic"
    off = [block.task for block in gathered.top.off_axis]
    if key in ("compute", "loss"):  # the lone model has neither tokens nor a loss run
        assert off == ["emoji_movie"]
        assert 'No model on this x axis: <a href="#emoji-movie-shots0">emoji_movie</a> (other: ' \
               "lone-hub-model@main left out of the size series: no " in html
    else:
        assert off == [] and "No model on this x axis" not in html
