"""harness report's axes beyond size and metric: shots, calibration, scratchpad vs direct, relabelled labels.

Synthetic results folders written by hand (records shaped like tests/test_report.py's, summaries
by the real `runner.summarize_run`): a family "tiny" of three sizes x two checkpoints on
arithmetic/2_digit_addition at 0, 1 and 3 shots, with flipped and unrelated labels at 1 shot,
and a family "tiny-scratchpad" on the @scratchpad variant. Crafted so that the 1-shot gain in
exact match is zero until the largest size (a jump) while the gain in target log-prob grows by
the same amount per size (smooth), and the scratchpad passes exact match 0.2 one size and one
checkpoint earlier than the direct answer. Last, one end-to-end run on the trained mini family.
"""

from __future__ import annotations

import html
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.emergence import analyze_series, classify, monotonicity
from harness.metrics import has_choice_scores, reliability_bins, score_examples
from harness.records import ExampleRecord, read_records
from harness.report import build_report, figure_files
from harness.report.analysis import analyze
from harness.report.data import ScoreCache, build_blocks, detail_blocks, load_runs, scale_axis
from harness.report.page_data import inline_packed
from harness.report.section import Inputs
from harness.report.sections.calibration import calibration_blocks
from harness.report.text import format_value
from tests.test_report import _model, _Page, write_run

N_BOOT = 50
N = 10
SIZES = {"1k": 1_000, "4k": 4_000, "16k": 16_000}  # non-embedding parameters
STEPS = (10, 100)
TASK = "arithmetic/2_digit_addition"
SCRATCH_TASK = TASK + "@scratchpad"
TARGET, WRONG = "57", "12"
CHOICES = (TARGET, WRONG, "75", "banana")
DEMO_TARGETS = {"flipped": "75", "unrelated": "banana"}
# examples answered right (of N) by level 0..3 (size rank, + 1 at the last checkpoint)
CORRECT = {("direct", 0): (0, 0, 0, 5), ("direct", 1): (0, 0, 0, 9), ("direct", 3): (0, 0, 1, 10),
           ("scratchpad", 0): (0, 1, 8, 10)}
FOLLOW = {"flipped": (0, 1, 3, 6), "unrelated": (0, 0, 1, 2)}  # answers that follow the demonstrations


def _level(size: str, step: int) -> int:
    return list(SIZES).index(size) + (1 if step == STEPS[-1] else 0)


def make_records(task: str, level: int, shots: int = 0, mode: str = "true") -> list[ExampleRecord]:
    """Exact match per CORRECT; the target's per-token log-prob: + 1 a level, + 0.2 x level with shots."""
    style = "scratchpad" if task.endswith("@scratchpad") else "direct"
    n_right = CORRECT[(style, shots)][level]
    n_follow = FOLLOW[mode][level] if mode != "true" else 0
    demo = DEMO_TARGETS.get(mode)
    base = -4.6 + level + (0.2 * level if shots else 0.0) + (1.0 if style == "scratchpad" else 0.0)
    records = []
    for idx in range(N):
        per_token = base + 0.05 * (idx % 5 - 2)
        followed = idx < n_follow
        correct = not followed and idx >= N - n_right
        answer = demo if followed else (TARGET if correct else WRONG)
        choice_logprobs = [tuple(per_token for _ in TARGET), (-2.5,) * 2, (-2.6,) * 2, (-3.0,) * 6]
        if followed:
            choice_logprobs[CHOICES.index(demo)] = (-0.01,) * len(choice_logprobs[CHOICES.index(demo)])
        records.append(ExampleRecord(
            task=task, idx=idx, shots=shots, prompt=f"\nQ: example {idx}?\nA: ", prompt_sha256=f"{idx:064x}",
            shot_idxs=tuple(range(shots)), targets=(TARGET,), choices=CHOICES, target_scores=(1.0, 0, 0, 0),
            generation=f" {answer}", generation_n_tokens=len(answer), generation_stop="rule", answer=answer,
            answer_matched=True, answer_tokens=tuple(answer), choice_logprobs=tuple(choice_logprobs),
            choice_greedy=tuple((False,) * len(lp) for lp in choice_logprobs),
            target_logprobs=(tuple(per_token for _ in TARGET),), target_greedy=((correct,) * 2,),
            target_tokens=(tuple(TARGET),), demo_target=demo))
    return records


def build_results(root: Path, shots: tuple[int, ...] = (0,), steps: tuple[int, ...] = (STEPS[-1],),
                  scratchpad: bool = False, relabel: bool = False,
                  sizes: tuple[str, ...] = tuple(SIZES)) -> Path:
    out = root / "results"
    recipe = {"batch_size": 4, "seq_len": 8}
    families = [("tiny", TASK)] + ([("tiny-scratchpad", SCRATCH_TASK)] if scratchpad else [])
    for family, task in families:
        folder = root / "families" / family
        folder.mkdir(parents=True)
        manifest = {"family": family, "recipe": recipe}
        (folder / "family.json").write_text(json.dumps(manifest), encoding="utf-8")
        for size in sizes:
            params = SIZES[size]
            for step in steps:
                model = _model(f"{family}-{size}", f"step{step}", folder / f"{family}-{size}" / f"step{step}",
                               params)
                level = _level(size, step)
                write_run(out, model, task, make_records(task, level))
                if step != STEPS[-1] or family != "tiny":
                    continue
                for k in shots[1:]:
                    write_run(out, model, task, make_records(task, level, k), shots=k)
                for mode in DEMO_TARGETS if relabel else ():
                    write_run(out, model, task, make_records(task, level, 1, mode), shots=1, demo_labels=mode)
    return out


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> Path:
    out = build_results(tmp_path_factory.mktemp("axes"), shots=(0, 1, 3), steps=STEPS, scratchpad=True,
                        relabel=True)
    return build_report(out, n_boot=N_BOOT)


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    return build_report(build_results(tmp_path_factory.mktemp("plain")), n_boot=N_BOOT)


class _Cells(_Page):
    """The page's images and value cells, plus the paired-gain cells (data-gain)."""

    def __init__(self) -> None:
        super().__init__()
        self.gains: dict[tuple[str, str], str] = {}
        self._gain: tuple[str, str] | None = None

    def handle_starttag(self, tag, attrs):
        super().handle_starttag(tag, attrs)
        gain = dict(attrs).get("data-gain")
        if tag == "td" and gain:
            run, metric = gain.split("|")
            self._gain = (run, metric)
            self.gains[self._gain] = ""

    def handle_data(self, data):
        super().handle_data(data)
        if self._gain is not None:
            self.gains[self._gain] += data

    def handle_endtag(self, tag):
        super().handle_endtag(tag)
        if tag == "td":
            self._gain = None


def _cells(index: Path) -> _Cells:
    page = _Cells()
    page.feed(inline_packed(index.read_text(encoding="utf-8")))
    folders = page.data["runs"]["dir"]  # a gain cell names its run by its position in the JSON block
    page.gains = {(folders[int(run)], metric): text for (run, metric), text in page.gains.items()}
    return page


def _run_dir(family: str, size: str, task: str, shots: str, step: int = STEPS[-1]) -> str:
    return f"runs/{family}-{size}@step{step}/{task}/{shots}"


def test_every_axis_figure_exists_and_is_linked(full: Path):
    names = {p.name for p in figure_files(full.parent)}
    expected = {"fig-shots-arithmetic-2_digit_addition-tiny.png",
                "fig-calibration-arithmetic-tiny.png",
                "fig-reliability-arithmetic-2_digit_addition-shots0-tiny.png",
                "fig-reliability-arithmetic-2_digit_addition-scratchpad-shots0-tiny-scratchpad.png",
                "fig-scratchpad-arithmetic-2_digit_addition-0-shot-tiny.png",
                "fig-relabel-arithmetic-2_digit_addition-shots1-tiny.png"}
    assert expected <= names
    # full detail (every metric, reliability diagrams) only for a task's headline setting:
    # the fewest shots with true labels; 1- and 3-shot and relabelled runs are in their sections
    assert "fig-arithmetic-2_digit_addition-shots0-params.png" in names
    assert not any("shots1" in name or "shots3" in name for name in names
                   if name.startswith(("fig-reliability-", "fig-arithmetic-")))
    for name in names:
        assert not (full.parent / name).with_suffix(".svg").exists()  # SVG on demand (--svg)
    page = _cells(full)
    assert set(page.images) == names  # every figure on the page, nothing else
    text = inline_packed(full.read_text(encoding="utf-8"))
    for anchor in ("axis-shots", "axis-calibration", "axis-scratchpad", "axis-relabel"):
        assert f'id="{anchor}"' in text and f'href="#{anchor}"' in text
    summary = (full.parent / "summary.md").read_text(encoding="utf-8")
    for heading in ("## Shots as an axis", "## Calibration", "## Scratchpad vs direct",
                    "## Relabelled demonstrations"):
        assert heading in summary
    assert "(fig-shots-arithmetic-2_digit_addition-tiny.png)" in summary
    assert "(fig-scratchpad-arithmetic-2_digit_addition-0-shot-tiny.png)" in summary
    # the scratchpad task has one shot count: no shots comparison of its own
    assert not any(name.startswith("fig-shots-arithmetic-2_digit_addition-scratchpad") for name in names)


def test_axis_tables_equal_the_summaries(full: Path):
    out = full.parent.parent
    cells = _cells(full).cells
    for (run, metric), text in cells.items():
        summary = json.loads((out / run / "summary.json").read_text(encoding="utf-8"))
        assert text.strip() == format_value(summary["metrics"][metric]["mean"]), (run, metric)
    flipped = _run_dir("tiny", "16k", TASK, "shots1-flipped")
    assert cells[(flipped, "follows_demonstrations")].strip() == "0.600"  # FOLLOW["flipped"][3] / N
    assert cells[(flipped, "follows_demonstrations_mc")].strip() == "0.600"
    true_1shot = _run_dir("tiny", "16k", TASK, "shots1")
    assert cells[(true_1shot, "exact_str_match")].strip() == "0.900"  # beside it: true labels, 1 shot


def _hand_gains(metric: str, shots: int) -> list[np.ndarray]:
    """Per-example gains (k-shot minus 0-shot) of each size at the last step, from the records."""
    gains = []
    for size in SIZES:
        level = _level(size, STEPS[-1])
        base = score_examples(make_records(TASK, level, 0))
        shot = score_examples(make_records(TASK, level, shots))
        gains.append(np.array([s[metric] - b[metric] for s, b in zip(shot, base)]))
    return gains


def test_paired_gains_equal_hand_computed_ones(full: Path):
    gains = _cells(full).gains
    checked = 0
    for shots in (1, 3):
        for metric in ("exact_str_match", "multiple_choice_grade", "target_logprob"):
            for size, per_example in zip(SIZES, _hand_gains(metric, shots)):
                text = gains[(_run_dir("tiny", size, TASK, f"shots{shots}"), metric)]
                mean = float(per_example.mean())
                shown = ("+" if mean >= 0 else "") + format_value(mean)
                assert text.startswith(shown + " ["), (size, shots, metric, text)
                assert text.endswith(f"n = {N}")
                checked += 1
    assert checked == 18
    assert gains[(_run_dir("tiny", "16k", TASK, "shots1"), "exact_str_match")].startswith("+0.400")


def test_shots_sentence_says_sudden_or_gradual_with_numbers(full: Path):
    text = inline_packed(full.read_text(encoding="utf-8"))
    x = list(SIZES.values())
    em = analyze_series(x, np.array(_hand_gains("exact_str_match", 1)), n_boot=N_BOOT, seed=0)
    logprob = analyze_series(x, np.array(_hand_gains("target_logprob", 1)), n_boot=N_BOOT, seed=0)
    assert classify(em).shape == "jump" and classify(logprob).shape == "smooth"
    assert ("the 1-shot gain in exact_str_match over 0 shots (paired over 10 examples) goes from +0.000 "
            "[0.000, 0.000] at tiny-1k@step100 to +0.400 [") in text
    assert "it appears suddenly with size" in text
    numbers = f"J = {logprob.share.format(2)}, B = {logprob.b.format()}, tau = {logprob.tau.format(2)}"
    assert f"it grows gradually with size (1-shot gain in target_logprob improves smoothly ({numbers}))" \
        in text
    assert "metric artefact" in text  # the verdict on the gains: a jump under exact match only


def _calibration(out: Path):
    runs = load_runs(out)
    blocks = build_blocks(runs)
    cache = ScoreCache()
    results = {b.slug: tuple(analyze(b, s, cache, N_BOOT, 0) for s in b.size_series) for b in blocks}
    inputs = Inputs(tuple(runs), tuple(blocks), results, cache, scale_axis("non_embedding"), N_BOOT, 0,
                    frozenset(detail_blocks(blocks)))
    return calibration_blocks(inputs), cache


def test_reliability_bins_add_up_to_n_and_the_trend_is_eces(full: Path):
    found, cache = _calibration(full.parent.parent)
    assert len(found) == 6  # 0, 1, 3 shots, flipped, unrelated, scratchpad: every block has choices
    for calibration in found:
        assert len(calibration.panels) == len(calibration.series.runs) == len(SIZES)
        for panel in calibration.panels:
            records = read_records(panel.run.folder / "examples.jsonl")
            assert len(panel.bins) == 15
            assert panel.n == sum(has_choice_scores(r) for r in records) == N
            assert panel.n == panel.run.metrics["expected_calibration_error"]["n"]
            assert [b.count for b in panel.bins] == [b["count"] for b in reliability_bins(records)]
        eces = [run.mean("expected_calibration_error") for run in calibration.series.runs]
        assert calibration.ece_tau.estimate == pytest.approx(monotonicity(eces))  # ECE's own sign
        assert f"Kendall τ of ECE against size = {calibration.ece_tau.format(2)}" in calibration.sentence
    page = inline_packed(full.read_text(encoding="utf-8"))
    assert all(html.escape(c.sentence) in page for c in found)


def test_scratchpad_moves_the_jump_to_smaller_sizes_and_earlier_steps(full: Path):
    text = inline_packed(full.read_text(encoding="utf-8"))
    assert ("over sizes, exact match first exceeds 0.2 at 16k (0.500 [") in text
    assert ("with the scratchpad: the scratchpad moves the jump to smaller sizes") in text
    assert "over training steps of 16k, exact match first exceeds 0.2 at step 100 (0.500 [" in text
    assert "the scratchpad moves the jump to earlier steps" in text
    assert "at 4k (0.800 [" in text and "at step 10 (0.800 [" in text


def test_results_without_shots_scratchpad_or_relabelling_render_no_such_section(plain: Path):
    text = inline_packed(plain.read_text(encoding="utf-8"))
    for anchor in ("axis-shots", "axis-scratchpad", "axis-relabel"):
        assert anchor not in text
    assert 'id="axis-calibration"' in text  # the records have choice log-probs
    summary = (plain.parent / "summary.md").read_text(encoding="utf-8")
    assert "## Shots" not in summary and "## Scratchpad" not in summary and "## Relabelled" not in summary
    names = {p.name for p in figure_files(plain.parent)}
    assert names == {"fig-arithmetic-2_digit_addition-shots0-params.png",
                     "fig-headline-arithmetic-2_digit_addition-shots0.png",
                     "fig-calibration-arithmetic-tiny.png",
                     "fig-reliability-arithmetic-2_digit_addition-shots0-tiny.png",
                     "fig-side-arithmetic-shots0-tiny.png"}  # every metric side by side (three sizes)


def test_one_model_at_several_shot_counts_gets_gains_without_a_trend(tmp_path):
    index = build_report(build_results(tmp_path, shots=(0, 1), sizes=("16k",)), n_boot=N_BOOT)
    text = inline_packed(index.read_text(encoding="utf-8"))
    assert ("the 1-shot gain in exact_str_match over 0 shots (paired over 10 examples) is +0.400 [") in text
    assert "at tiny-16k@step100 (one model: no trend)." in text
    summary = (index.parent / "summary.md").read_text(encoding="utf-8")
    assert "- arithmetic/2_digit_addition, tiny-16k@step100 (one model), gains over 0 shots: 1-shot " \
           "exact_str_match +0.400 [" in summary
    assert {p.name for p in figure_files(index.parent)} >= {"fig-shots-arithmetic-2_digit_addition-tiny.png"}


def test_runs_without_examples_say_no_ci(tmp_path):
    out = build_results(tmp_path, shots=(0, 1))
    for pattern in ("examples.jsonl", "scores.json.gz"):
        for path in (out / "runs").rglob(pattern):
            path.unlink()  # summaries only: gains are differences of means, without intervals
    text = inline_packed(build_report(out, n_boot=N_BOOT).read_text(encoding="utf-8"))
    assert ("the 1-shot gain in exact_str_match over 0 shots (no CI: per-example scores not kept) goes from "
            "+0.000 [no CI] at tiny-1k@step100 to +0.400 [no CI] at tiny-16k@step100") in text
    assert "summaries, no CI" in text
    assert 'id="axis-calibration"' in text and "fig-reliability" not in text  # no records, no bins


def _overlaps(fig) -> list[tuple[str, str]]:
    """Pairs of visible x tick labels of one axis printed on the same line with intersecting extents.

    A staggered label is "\n928k": one line lower (its box spans both lines, its ink the second).
    """
    fig.draw_without_rendering()
    pairs = []
    for ax in fig.axes:
        boxes = [(label.get_text(), label.get_window_extent().intervalx)
                 for label in ax.xaxis.get_majorticklabels() if label.get_text().strip()]
        for i, (text_a, (a0, a1)) in enumerate(boxes):
            line = len(text_a) - len(text_a.lstrip("\n"))
            pairs += [(text_a, text_b) for text_b, (b0, b1) in boxes[i + 1:]
                      if len(text_b) - len(text_b.lstrip("\n")) == line and a0 < b1 and b0 < a1]
    return pairs


def test_close_sizes_get_staggered_tick_labels():
    from matplotlib.figure import Figure

    from harness.report.plotting import set_x, stagger_x_labels

    sizes = [12_768, 50_112, 223_872, 595_072, 928_160]  # the pico family's non-embedding counts
    fig = Figure(figsize=(3.2, 2.4), layout="constrained")
    ax = fig.subplots()
    ax.plot(sizes, [0, 0, 0, 0.4, 0.5], marker="o")
    set_x(ax, "params", sizes)
    assert _overlaps(fig)  # 595k and 928k collide as drawn
    stagger_x_labels(fig)
    assert not _overlaps(fig)
    labels = [label.get_text() for label in ax.xaxis.get_majorticklabels()]
    assert [label.strip() for label in labels] == ["12.8k", "50.1k", "224k", "595k", "928k"]  # none dropped
    assert labels[-1].startswith("\n")  # moved to a second line


def test_sections_import_without_matplotlib():
    code = ("import sys, harness.report.page, harness.report.sections.shots, harness.report.sections.sizes; "
            "assert 'matplotlib' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_mini_family_shots_and_flipped_labels_end_to_end(mini_family, tmp_path, monkeypatch):
    """Two trained mini sizes at 0 and 1 shots, and 1 shot with flipped labels: both sections render."""
    from harness.runner import EvalSettings
    from harness.sweep import expand, run_sweep

    monkeypatch.setenv("HARNESS_FAMILIES_DIR", str(mini_family.parent))
    points = expand(family="mini", sizes="16k,56k")
    task = "arithmetic/1_digit_addition"
    base = EvalSettings(tasks=(task,), shots=(0, 1), limit=8, out=tmp_path, n_boot=N_BOOT)
    run_sweep(points, base, progress=False)
    flipped = EvalSettings(tasks=(task,), shots=(1,), limit=8, out=tmp_path, n_boot=N_BOOT,
                           demo_labels="flipped")
    run_sweep(points, flipped, progress=False)
    folders = sorted(p.parent.name for p in (tmp_path / "runs").rglob("summary.json"))
    assert folders == ["shots0", "shots0", "shots1", "shots1", "shots1-flipped", "shots1-flipped"]
    for path in (tmp_path / "runs").rglob("shots1-flipped/examples.jsonl"):
        assert all(r.demo_target is not None for r in read_records(path))
    index = build_report(tmp_path, n_boot=N_BOOT)
    text = inline_packed(index.read_text(encoding="utf-8"))
    assert 'id="axis-shots"' in text and 'id="axis-relabel"' in text
    assert "the 1-shot gain in exact_str_match over 0 shots (paired over 8 examples)" in text
    names = {p.name for p in figure_files(index.parent)}
    assert "fig-shots-arithmetic-1_digit_addition-mini.png" in names
    assert "fig-relabel-arithmetic-1_digit_addition-shots1-mini.png" in names
    assert set(_cells(index).images) == names
    summary = json.loads(next((tmp_path / "runs").rglob("shots1-flipped/summary.json")).read_text())
    assert not math.isnan(summary["metrics"]["follows_demonstrations"]["mean"])
