"""harness report on a synthetic sweep built by hand (no model): files, links, numbers, verdicts, errors.

The sweep: a family "tiny" of four sizes x two checkpoints on two arithmetic subtasks, ten
examples each, crafted so that exact match jumps (right only for the largest model at the last
step) while the target's log-prob rises by one nat per token per level; plus one model without
a family ("other"). Summaries are written by the real `runner.summarize_run`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from harness import results
from harness.cli import main
from harness.emergence import analyze_series
from harness.errors import HarnessError
from harness.metrics import score_examples
from harness.records import ExampleRecord
from harness.report import _link_prefix, build_report, figure_files
from harness.report.page_data import inline_packed, unpack
from harness.report.text import format_value
from harness.runner import summarize_run

N_BOOT = 200
N_EXAMPLES = 10
SIZES = {"tiny-1k": 1_000, "tiny-4k": 4_000, "tiny-16k": 16_000, "tiny-64k": 64_000}  # non-embedding
STEPS = (10, 100)
TASKS = {"arithmetic/2_digit_addition": ("57", "12"), "arithmetic/3_digit_addition": ("157", "112")}


def _level(size: str, step: int) -> int:
    """0..4: how good a checkpoint is (size rank, + 1 at the last step)."""
    return list(SIZES).index(size) + (1 if step == STEPS[-1] else 0)


def make_records(task: str, level: int) -> list[ExampleRecord]:
    target, wrong = TASKS[task]
    records = []
    for idx in range(N_EXAMPLES):
        per_token = -4.6 + level + 0.05 * (idx % 5 - 2)  # smooth in level, a little spread
        correct = level >= len(SIZES)  # exact match: all or nothing, at the top level only
        answer = target if correct else wrong
        tokens = tuple(target)
        records.append(ExampleRecord(
            task=task, idx=idx, shots=0, prompt=f"\nQ: example {idx}?\nA: ", prompt_sha256=f"{idx:064x}",
            shot_idxs=(), targets=(target,), choices=(target, wrong, "banana"), target_scores=(1.0, 0.0, 0.0),
            generation=f" {answer}", generation_n_tokens=len(answer), generation_stop="rule", answer=answer,
            answer_matched=True, answer_tokens=tuple(answer),
            choice_logprobs=(tuple(per_token for _ in tokens), (-2.5,) * len(wrong), (-3.0,) * 6),
            choice_greedy=((correct,) * len(tokens), (False,) * len(wrong), (False,) * 6),
            target_logprobs=(tuple(per_token for _ in tokens),), target_greedy=((correct,) * len(tokens),),
            target_tokens=(tokens,)))
    return records


def write_run(out: Path, model: dict, task: str, records: list[ExampleRecord], shots: int = 0,
              demo_labels: str = "true") -> Path:
    folder = results.run_dir(out, model, task, shots, demo_labels)
    generation = {"max_new_tokens": 16, "early_stop": True, "max_chars": None}
    task_info = {"name": task, "sha256": "0" * 64, "preferred_score": "exact_str_match"}
    session = {"wall_s": 1.5, "command": "harness sweep --family tiny (synthetic)", "batch_size": "auto",
               "limit": None, "git": {"commit": "abc123", "dirty": False},
               "versions": {"python": "3.11", "numpy": np.__version__, "harness": "0.1.0"}}
    identity = results.run_identity(model, task_info, shots, generation, demo_labels)
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(
        {"identity": identity, "sessions": [session], "model": model, "task": task_info}), encoding="utf-8")
    results.append_records(folder / "examples.jsonl", records)
    summarize_run(folder, n_boot=N_BOOT)
    return folder


def _model(name: str, revision: str, source: Path, non_embedding: int) -> dict:
    return {"name": name, "source": str(source), "revision": revision, "backend": "hf", "dtype": "float32",
            "device": "cpu", "total_params": non_embedding + 500, "non_embedding_params": non_embedding,
            "weights_fingerprint": f"w-{name}-{revision}", "tokenizer_fingerprint": "t",
            "boundary": "natural"}


def build_sweep(root: Path, lone_only: bool = False) -> Path:
    out = root / "results"
    family = root / "families" / "tiny"
    family.mkdir(parents=True)
    recipe = {"batch_size": 4, "seq_len": 8}
    (family / "family.json").write_text(json.dumps({"family": "tiny", "recipe": recipe}), encoding="utf-8")
    lone = _model("org/lone-model", "main", root / "hub" / "lone", 2_000)
    write_run(out, lone, "arithmetic/2_digit_addition", make_records("arithmetic/2_digit_addition", 1))
    if lone_only:
        return out
    for size, params in SIZES.items():
        for step in STEPS:
            model = _model(size, f"step{step}", family / size / f"step{step}", params)
            for task in TASKS:
                write_run(out, model, task, make_records(task, _level(size, step)))
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = build_sweep(tmp_path_factory.mktemp("sweep"))
    return build_report(out, n_boot=N_BOOT)


class _Page(HTMLParser):
    """Image sources and the first text of each metric-value cell; the value tables' cells are
    the page's JSON block's values as the page prints them (its script draws those tables)."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.cells: dict[tuple[str, str], str] = {}
        self.data: dict | None = None
        self._json: str | None = None
        self._cell: tuple[str, str] | None = None
        self._row_run: str | None = None  # a table row may name the run once for all its cells
        self._columns: list[str | None] = []  # ... and a header cell the metric of its column
        self._column = -1

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("id") == "report-data":
            self._json = ""
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "table":
            self._columns = []
        if tag == "th":
            self._columns.append(attrs.get("data-metric"))
        if tag == "tr":
            self._row_run, self._column = attrs.get("data-run"), -1
        if tag == "td":
            self._column += 1
            # a cell names its run and metric, or its row names the run and its column the metric
            from_column = self._columns[self._column] if self._column < len(self._columns) else None
            metric, run = attrs.get("data-metric") or from_column, attrs.get("data-run") or self._row_run
            if metric and run:
                self._cell = (run, metric)
                self.cells[self._cell] = ""
                return
        if self._cell is not None:  # the CI span ends the mean's text
            self._cell = None

    def handle_data(self, data):
        if self._json is not None:
            self._json += data
        if self._cell is not None:
            self.cells[self._cell] += data

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None
        if tag == "script" and self._json is not None:
            self.data, self._json = json.loads(unpack(self._json)), None
            folders = self.data["runs"]["dir"]
            # a static cell names its run by its position in the JSON block
            self.cells = {(folders[int(run)] if run.isdigit() else run, metric): text
                          for (run, metric), text in self.cells.items()}
            for metric, entries in self.data["values"].items():
                for folder, entry in zip(folders, entries):
                    if entry is not None:
                        self.cells[(folder, metric)] = format_value(entry[0])


def _page(index: Path) -> _Page:
    page = _Page()
    page.feed(inline_packed(index.read_text(encoding="utf-8")))
    return page


def test_files_exist(report: Path):
    folder = report.parent
    assert report.name == "index.html" and report.is_file()
    assert (folder / "summary.md").is_file()
    pngs = figure_files(folder)
    names = {p.name for p in pngs}
    for task in ("2_digit_addition", "3_digit_addition"):
        assert f"fig-arithmetic-{task}-shots0-params.png" in names
        assert f"fig-arithmetic-{task}-shots0-steps.png" in names
    assert "fig-overview-arithmetic-shots0-params.png" in names
    for png in pngs:
        assert png.stat().st_size > 10_000
        assert not png.with_suffix(".svg").exists()  # SVG on demand (--svg)
    # a report writes inside its own folder only: no index, no file beside the runs
    assert {p.name for p in folder.parent.iterdir()} == {"runs", "report"}


def test_html_links_every_figure_and_nothing_else(report: Path):
    page = _page(report)
    written = {p.name for p in figure_files(report.parent)}
    assert set(page.images) == written
    for src in page.images:
        assert (report.parent / src).is_file()  # relative paths that resolve
    text = inline_packed(report.read_text(encoding="utf-8"))
    # the only scripts are the explorer's, inline: the page works offline from a file
    scripts = re.findall(r"<script[^>]*>", text)
    assert scripts and all("src=" not in tag for tag in scripts)
    assert text.index("<script") > text.index('id="explorer"')


def test_table_values_equal_summary_means(report: Path):
    out = report.parent.parent
    cells = _page(report).cells
    checked = 0
    for path in sorted((out / "runs").rglob("summary.json")):
        summary = json.loads(path.read_text(encoding="utf-8"))
        run = path.parent.relative_to(out).as_posix()
        for metric, entry in summary["metrics"].items():
            assert cells[(run, metric)].strip() == format_value(entry["mean"]), (run, metric)
            checked += 1
    assert checked == 17 * 17  # 17 runs, 17 metrics each


def test_verdict_with_b_numbers(report: Path):
    text = inline_packed(report.read_text(encoding="utf-8"))
    task = "arithmetic/2_digit_addition"
    # the size series at the last step, recomputed here from the records the sweep was built from
    per_example = [score_examples(make_records(task, _level(size, STEPS[-1]))) for size in SIZES]
    analyses = {metric: analyze_series(list(SIZES.values()),
                                       np.array([[row[metric] for row in rows] for rows in per_example]),
                                       n_boot=N_BOOT, seed=0)
                for metric in ("exact_str_match", "target_logprob")}
    assert analyses["exact_str_match"].b.format() == "inf [inf, inf]"
    expected_b = analyses["target_logprob"].b.format()
    expected_j = analyses["target_logprob"].share.format(2)
    assert f"{task} (0-shot; tiny sizes at step100): exact_str_match jumps (flat, then a jump of 1" in text
    assert (f"target_logprob improves smoothly (J = {expected_j}, B = {expected_b}, "
            "tau = 1.00 [1.00, 1.00]; largest point predicted from the smaller points") in text
    assert "the jump comes from the metric" in text
    assert "metric artefact" in text
    summary = (report.parent / "summary.md").read_text(encoding="utf-8")
    assert f"target_logprob (B = {expected_b}" in summary
    assert "(fig-overview-arithmetic-shots0-params.png)" in summary  # outside the repo: relative links


def test_lone_model_is_a_table_row_without_verdict(report: Path):
    text = inline_packed(report.read_text(encoding="utf-8"))
    assert "org/lone-model@main" in text
    assert "One point (org/lone-model@main)" in text
    assert "(0-shot; other" not in text  # no verdict for a series of one


def test_mirage_table(report: Path):
    text = inline_packed(report.read_text(encoding="utf-8"))
    assert "Mirage check (Schaeffer et al. 2023)" in text
    assert "observed exact match vs p_tok^L: r = " in text


def test_cli_lone_model_and_errors(tmp_path, capsys):
    out = build_sweep(tmp_path / "lone", lone_only=True)
    assert main(["report", str(out)]) == 0
    printed = capsys.readouterr().out
    # one model: no curve; its headline (its values per metric family) and its reliability
    # diagram (its records have choice log-probs)
    assert printed.strip() == f"{out / 'report' / 'index.html'} (2 figures, each as PNG)"
    assert [p.name for p in figure_files(out / "report")] == [
        "fig-headline-arithmetic-2_digit_addition-shots0.png",
        "fig-reliability-arithmetic-2_digit_addition-shots0-other.png"]
    page = inline_packed((out / "report" / "index.html").read_text(encoding="utf-8"))
    assert "One model only (org/lone-model@main)" in page
    assert "No series of two or more models" in (out / "report" / "summary.md").read_text(encoding="utf-8")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", str(empty)]) == 2
    assert "no summaries" in capsys.readouterr().err
    with pytest.raises(HarnessError, match="no results folder"):
        build_report(tmp_path / "missing")


def test_missing_or_damaged_scores_are_one_clear_error(tmp_path):
    out = build_sweep(tmp_path, lone_only=True)
    scores = next((out / "runs").rglob("scores.json.gz"))
    scores.write_bytes(b"not gzip")
    with pytest.raises(HarnessError, match=r"scores\.json\.gz is damaged .*harness rescore"):
        build_report(out, n_boot=10)
    scores.unlink()  # examples kept but no stored scores: scored before scores were stored
    with pytest.raises(HarnessError, match=r"scores\.json\.gz is missing.*run `harness rescore"):
        build_report(out, n_boot=10)
    assert main(["rescore", str(out / "runs")]) == 0  # the one way to (re)write scores
    assert scores.is_file() and build_report(out, n_boot=10).is_file()


def test_report_never_scores(tmp_path, monkeypatch):
    """Every number comes from the stored scores: with every metric function broken, same page."""
    from dataclasses import replace

    from harness import metrics

    out = build_sweep(tmp_path)
    page = inline_packed(build_report(out, n_boot=20).read_text(encoding="utf-8"))

    def broken(*args, **kwargs):
        raise AssertionError("the report scored a record")

    for name, metric in list(metrics.METRICS.items()):
        monkeypatch.setitem(metrics.METRICS, name, replace(metric, fn=broken, weighted=broken, uses=broken,
                                                           chance=broken))
    monkeypatch.setattr(metrics, "score_examples", broken)
    monkeypatch.setattr(metrics, "summarize", broken)
    assert inline_packed(build_report(out, n_boot=20).read_text(encoding="utf-8")) == page


def test_summary_means_and_report_numbers_agree(report: Path):
    """The analysis' point values (from stored scores) print as the summaries' means, every digit."""
    from harness.report.analysis import analyze
    from harness.report.data import ScoreCache, build_blocks, load_runs

    runs = load_runs(report.parent.parent)
    cache = ScoreCache()
    checked = 0
    for block in build_blocks(runs):
        for series in (*block.size_series, *block.step_series):
            result = analyze(block, series, cache, n_boot=10)
            for name, analysis in result.analyses.items():
                by_label = dict(zip(analysis.labels, analysis.point_values))
                for run in result.series.runs:
                    assert format_value(by_label[run.label]) == format_value(run.mean(name))
                    assert by_label[run.label] == pytest.approx(run.mean(name), rel=1e-12, abs=1e-12)
                    checked += 1
    assert checked > 100


def test_link_prefix_inside_the_repository():
    if not (results.REPO / ".git").exists():
        pytest.skip("not a git checkout")
    assert _link_prefix(results.REPO / "results" / "report") == "results/report/"
    assert _link_prefix(Path("/somewhere/else/report")) == ""


def test_import_does_not_load_matplotlib():
    code = "import sys, harness.report, harness.cli; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


class _Links(HTMLParser):
    """Every local href/src of a page and every id it defines."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for name in ("href", "src"):
            value = attrs.get(name)
            if value and not value.startswith(("http://", "https://", "mailto:", "data:")):
                self.targets.append(value)


def broken_links(index: Path) -> list[str]:
    """Links of index.html to a missing file or a missing #anchor."""
    links = _Links()
    links.feed(inline_packed(index.read_text(encoding="utf-8")))
    broken = []
    for target in links.targets:
        path, _, fragment = target.partition("#")
        if path and not (index.parent / path).is_file():
            broken.append(target)
        elif not path and fragment not in links.ids:
            broken.append(target)
    return broken


def test_no_broken_links(report: Path):
    assert broken_links(report) == []


def test_unchanged_figures_are_kept_and_svg_is_on_demand(tmp_path):
    out = build_sweep(tmp_path)
    first = build_report(out, n_boot=20)
    stamps = {p.name: p.stat().st_mtime_ns for p in figure_files(first.parent)}
    cache = json.loads((first.parent / "figures.json").read_text(encoding="utf-8"))["figures"]
    assert set(cache) == {Path(name).stem for name in stamps}
    again = build_report(out, n_boot=20)
    assert {p.name: p.stat().st_mtime_ns for p in figure_files(again.parent)} == stamps  # none redrawn
    with_svg = build_report(out, n_boot=20, svg=True)
    assert all(png.with_suffix(".svg").is_file() for png in figure_files(with_svg.parent))
    assert broken_links(with_svg) == [] and ".svg" in inline_packed(with_svg.read_text(encoding="utf-8"))
    elsewhere = build_report(out, n_boot=20, out=tmp_path / "scratch")  # --out: another folder
    assert elsewhere == tmp_path / "scratch" / "index.html" and broken_links(elsewhere) == []
    build_report(out, n_boot=20)  # SVGs no longer wanted: removed, not left behind
    assert not list(first.parent.glob("fig-*.svg"))


def test_answer_first_headline_and_matrix(report: Path):
    """The page opens with one headline per task (figure + sentence with numbers), then the matrix."""
    text = inline_packed(report.read_text(encoding="utf-8"))
    answer, matrix, verdicts = (text.index(f'id="{key}"') for key in ("answer", "matrix", "explorer"))
    assert answer < matrix < verdicts
    top = text[answer:verdicts]
    assert top.count('class="headline"') == 1  # one task: arithmetic
    assert 'src="fig-headline-arithmetic-' in top
    assert "exact_str_match jumps from 0.00 to 1.00 between 16k and 64k parameters" in top
    assert "target_logprob rises smoothly" in top and "metric artefact" in top
    # matrix: one row per subtask's size series, cells coloured by shape, numbers in the tooltip
    assert top.count('class="shape-jump"') >= 2 and top.count('class="shape-smooth"') >= 2
    # the cell's evidence, numbered by its data-tip in the JSON block (the script sets the title)
    tips = _page(report).data["matrix_tips"]
    assert top.count("data-tip=") == len(tips)
    first = int(top.split('class="shape-jump" data-tip="', 1)[1].split('"', 1)[0])
    assert tips[first].startswith("jump: exact_str_match jumps (flat, then a jump of 1")
    assert "<nav><details><summary>Contents</summary>" in text  # collapsed contents, not a long list


def test_method_section_is_the_classifiers_rule_table(report: Path):
    import html as html_lib

    from harness.emergence import CONCLUSION_RULES, SHAPE_RULES

    text = inline_packed(report.read_text(encoding="utf-8"))
    method = text[text.index('id="method"'):]
    for rule in SHAPE_RULES:
        assert f"<li><i>{rule.shape}</i>: {html_lib.escape(rule.text)}</li>" in method
    for conclusion in CONCLUSION_RULES:
        assert f"<li><i>{conclusion.conclusion}</i>: {html_lib.escape(conclusion.text)}</li>" in method


def test_a_large_section_is_packed_and_inflates_to_the_same_html():
    from harness.report import page_data

    small = '<h2 id="s">S</h2><p>few words</p>'
    assert page_data.packed_section(small, "packed-s") == small
    large = '<h2 id="l">L</h2>' + "<p>a sentence with numbers 0.123 [0.1, 0.2]</p>" * 2000
    packed = page_data.packed_section(large, "packed-l")
    assert packed.startswith('<h2 id="l">L</h2><div data-packed="packed-l"></div><script')
    assert len(packed) < len(large) / 5
    assert page_data.inline_packed(f"<body>{packed}</body>") == f"<body>{large}</body>"
