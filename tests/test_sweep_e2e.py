"""End to end on real trained checkpoints: the CI mini families swept, indexed and reported.

The mini family (3 sizes x every checkpoint) is swept over sizes and training steps on two
arithmetic subtasks through the CLI, the index gathers every summary, and the report draws a
figure per task against parameters and against steps, with verdicts and tables whose numbers
are the summaries'. The mini scratchpad family (same sizes, steps and recipe) is swept on the
scratchpad variant next to the direct family, and the report compares the two.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from harness import index
from harness.cli import main
from harness.report import build_report, figure_files

TASKS = ("arithmetic/1_digit_addition", "arithmetic/2_digit_addition")
LIMIT = 6
N_BOOT = 40


@pytest.fixture(scope="module")
def swept(mini_family, tmp_path_factory, monkeypatch_module) -> Path:
    monkeypatch_module.setenv("HARNESS_FAMILIES_DIR", str(mini_family.parent))
    out = tmp_path_factory.mktemp("sweep")
    argv = ["sweep", "--family", "mini", "--revisions", "all", "--tasks", ",".join(TASKS),
            "--limit", str(LIMIT), "--out", str(out)]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_sweep_covers_every_size_and_step_and_is_indexed(swept, mini_family):
    family = json.loads((mini_family / "family.json").read_text())
    checkpoints = [(s["name"], c) for s in family["sizes"] for c in s["checkpoints"]]
    summaries = sorted(swept.glob("runs/*/arithmetic/*/shots0/summary.json"))
    assert len(summaries) == len(checkpoints) * len(TASKS)
    frame = index.load(swept)
    assert len(frame) == len(summaries)  # one row per run
    runs = set(zip(frame["model"], frame["revision"], frame["task"]))
    assert runs == {(m, c, t) for m, c in checkpoints for t in TASKS}
    assert set(frame["family"]) == {"mini"} and frame["tokens_seen"].notna().all()
    # every index row holds its summary's numbers
    for row in frame.to_dict("records"):
        summary = json.loads((swept / row["run_dir"] / "summary.json").read_text())
        for metric, entry in summary["metrics"].items():
            value = row[f"{metric}.mean"]
            assert (math.isnan(entry["mean"]) and math.isnan(value)) or value == entry["mean"]


def test_sharded_sweep_equals_the_serial_one(swept, tmp_path):
    # two shards of a job array into one results folder: together the serial sweep's runs,
    # with the same numbers, each run once
    out = tmp_path / "sharded"
    for shard in ("0/2", "1/2"):
        argv = ["sweep", "--family", "mini", "--revisions", "all", "--tasks", ",".join(TASKS),
                "--limit", str(LIMIT), "--out", str(out), "--shard", shard]
        assert main(argv) == 0

    def means(root: Path) -> dict[str, dict[str, float]]:
        return {p.parent.relative_to(root).as_posix(): {
            m: e["mean"] for m, e in json.loads(p.read_text())["metrics"].items()}
            for p in root.glob("runs/**/summary.json")}

    serial, sharded = means(swept), means(out)
    assert set(sharded) == set(serial)
    for run, values in serial.items():
        assert sharded[run] == pytest.approx(values, nan_ok=True), run
    frame = index.load(out)
    assert sorted(frame["run_dir"]) == sorted(serial)


def test_a_finished_sweep_is_skipped_without_loading_a_model(swept, capsys):
    argv = ["sweep", "--family", "mini", "--revisions", "all", "--tasks", ",".join(TASKS),
            "--limit", str(LIMIT), "--out", str(swept)]
    assert main(argv) == 0
    assert "0 run(s) evaluated" in capsys.readouterr().out


def test_report_draws_sizes_and_steps_with_verdicts(swept):
    index = build_report(swept, n_boot=N_BOOT)
    names = {p.name for p in figure_files(index.parent)}
    for task in TASKS:
        slug = task.replace("/", "-")
        assert f"fig-{slug}-shots0-params.png" in names
        assert f"fig-{slug}-shots0-steps.png" in names
    text = index.read_text(encoding="utf-8")
    assert "mini sizes at step120" in text and "over training steps" in text
    assert text.count('class="verdict"') >= 2 * len(TASKS)
    summary_md = (index.parent / "summary.md").read_text(encoding="utf-8")
    assert "## Verdicts" in summary_md and "B = " in summary_md
    # the largest size over steps is a headline next to the sizes (its series is analysed
    # without step0, as a copy)
    assert "; mini-56k over training steps): " in summary_md


@pytest.fixture(scope="module")
def mini_scratchpad(mini_family) -> Path:
    from harness.family.recipes import MINI_SCRATCHPAD
    from harness.family.train import train_family

    out = mini_family.parent.parent / "scratchpad-families" / "mini-scratchpad"
    train_family(MINI_SCRATCHPAD, out, jobs=1, threads=1)
    return out


def test_scratchpad_family_next_to_the_direct_family(mini_family, mini_scratchpad, tmp_path,
                                                     monkeypatch):
    import os

    monkeypatch.setenv("HARNESS_FAMILIES_DIR",
                       os.pathsep.join([str(mini_family.parent), str(mini_scratchpad.parent)]))
    task = "arithmetic/2_digit_addition"
    common = ["--revisions", "step80,step120", "--limit", str(LIMIT), "--out", str(tmp_path)]
    assert main(["sweep", "--family", "mini", "--tasks", task, *common]) == 0
    assert main(["sweep", "--family", "mini-scratchpad", "--tasks", f"{task}@scratchpad",
                 *common]) == 0
    runs = sorted(p.parent.parent.parent.name + "/" + p.parent.parent.name
                  for p in (tmp_path / "runs").rglob("summary.json"))
    assert len(runs) == 2 * 3 * 2  # two families x three sizes x two steps
    index = build_report(tmp_path, n_boot=N_BOOT)
    text = index.read_text(encoding="utf-8")
    assert 'id="axis-scratchpad"' in text
    names = {p.name for p in figure_files(index.parent)}
    assert any(name.startswith("fig-scratchpad-") for name in names)
