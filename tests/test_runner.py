"""The runner on a tiny random GPT-NeoX: raw records first, resume, identity, rescore."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.models import load_model
from harness.records import read_records
from harness.runner import EvalSettings, evaluate, summarize_run

REPO = Path(__file__).resolve().parents[1]
TASKS = ("arithmetic/1_digit_division", "emoji_movie", "periodic_elements/subtask_1")


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    return load_model(str(tiny_model_dir))


def _settings(out: Path, **kwargs) -> EvalSettings:
    defaults = {"tasks": TASKS, "shots": (0,), "limit": 4, "out": out, "chunk_size": 3,
                "n_boot": 200}
    defaults.update(kwargs)
    return EvalSettings(**defaults)


def test_evaluate_writes_records_manifest_and_summary(backend, tmp_path):
    summaries = evaluate(backend, _settings(tmp_path), progress=False)
    assert [s["task"]["name"] for s in summaries] == list(TASKS)
    folder = tmp_path / "runs" / "tiny-neox@main" / "arithmetic" / "1_digit_division" / "shots0"
    records = read_records(folder / "examples.jsonl")
    assert len(records) == 4 and len({r.idx for r in records}) == 4
    record = records[0]
    assert len(record.choice_logprobs) == len(record.choices) > 0
    assert record.generation is not None and record.answer is not None
    assert record.target_logprobs and record.target_tokens
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["n"] == 4 and summary["shots"] == 0
    assert summary["model"]["non_embedding_params"] > 0
    assert summary["settings"]["dtype"] == "float32"
    assert summary["settings"]["boundary"] == "natural"
    assert summary["task"]["sha256"] == json.loads((folder / "manifest.json").read_text())[
        "identity"]["task_sha256"]
    for metric in ("exact_str_match", "multiple_choice_grade", "target_logprob"):
        entry = summary["metrics"][metric]
        assert entry["ci_low"] <= entry["mean"] <= entry["ci_high"]
    assert "regex_no_match_rate" in summary
    gen_only = summaries[2]
    assert "multiple_choice_grade" not in gen_only["metrics"]


def test_raw_records_are_stored_before_scoring(backend, tmp_path, monkeypatch):
    import harness.metrics

    def broken(*args, **kwargs):
        raise RuntimeError("scoring failed")

    monkeypatch.setattr(harness.metrics, "summarize", broken)
    with pytest.raises(RuntimeError, match="scoring failed"):
        evaluate(backend, _settings(tmp_path, tasks=("emoji_movie",)), progress=False)
    folder = tmp_path / "runs" / "tiny-neox@main" / "emoji_movie" / "shots0"
    assert len(read_records(folder / "examples.jsonl")) == 4
    assert not (folder / "summary.json").exists()


def test_resume_recomputes_only_what_is_missing(backend, tmp_path):
    settings = _settings(tmp_path, tasks=("arithmetic/1_digit_division",))
    evaluate(backend, settings, progress=False)
    folder = tmp_path / "runs" / "tiny-neox@main" / "arithmetic" / "1_digit_division" / "shots0"
    first = {r.idx: r for r in read_records(folder / "examples.jsonl")}
    # a killed writer leaves half a line: it is dropped and that example redone
    with open(folder / "examples.jsonl", "a") as handle:
        handle.write('{"task": "arithmetic/1_digit_division", "idx": 9')
    summary = evaluate(backend, _settings(tmp_path, tasks=settings.tasks, limit=7),
                       progress=False)[0]
    records = read_records(folder / "examples.jsonl")
    assert summary["n"] == 7 and len(records) == 7 and len({r.idx for r in records}) == 7
    session = json.loads((folder / "manifest.json").read_text())["sessions"][-1]
    assert session["new_examples"] == 3 and session["reused_examples"] == 4
    for record in records:
        if record.idx in first:
            assert record == first[record.idx]
    # the 4-example request still scores exactly its own subset
    assert evaluate(backend, settings, progress=False)[0]["n"] == 4


def test_a_folder_of_another_run_is_never_overwritten_silently(tmp_path, backend):
    from tests.conftest import build_tiny_model

    settings = _settings(tmp_path, tasks=("emoji_movie",), limit=2)
    evaluate(backend, settings, progress=False)
    other = load_model(str(build_tiny_model(tmp_path / "other" / "tiny-neox", seed=1)))
    with pytest.raises(HarnessError, match="holds results of a different run"):
        evaluate(other, settings, progress=False)
    replaced = evaluate(other, _settings(tmp_path, tasks=("emoji_movie",), limit=2,
                                         overwrite=True), progress=False)
    assert replaced[0]["model"]["weights_fingerprint"] == other.info.weights_fingerprint


def test_rescore_reproduces_the_summary(backend, tmp_path):
    summary = evaluate(backend, _settings(tmp_path, tasks=("emoji_movie",)), progress=False)[0]
    folder = tmp_path / "runs" / "tiny-neox@main" / "emoji_movie" / "shots0"
    (folder / "summary.json").unlink()
    again = summarize_run(folder, n_boot=200)
    assert again["metrics"] == summary["metrics"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=300)


@pytest.mark.parametrize("args, message", [
    (("eval", "--model", "gpt-17"), "unknown model 'gpt-17'"),
    (("eval", "--model", "pythia-70m", "--revision", "step3001"), "has no revision 'step3001'"),
    (("eval", "--model", "smollm2-135m", "--tasks", "emoji"), "unknown task 'emoji'"),
    (("eval", "--model", "smollm2-135m", "--tasks", "arithmetic/1_digit_division", "--shots", "40"),
     "at most 22 shots"),
    (("eval", "--model", "README.md"), "neither a model folder nor a .gguf file"),
    (("rescore", "does-not-exist"), "no run folders"),
])
def test_cli_errors_are_one_line(args, message):
    done = _cli(*args)
    assert done.returncode == 2
    assert message in done.stderr and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_pack_gzips_finished_runs_and_everything_still_reads_them(backend, tmp_path):
    from harness.cli import main

    settings = _settings(tmp_path, tasks=("emoji_movie",))
    summary = evaluate(backend, settings, progress=False)[0]
    folder = tmp_path / "runs" / "tiny-neox@main" / "emoji_movie" / "shots0"
    records = read_records(folder / "examples.jsonl")
    assert main(["pack", str(tmp_path / "runs")]) == 0
    assert not (folder / "examples.jsonl").exists() and (folder / "examples.jsonl.gz").exists()
    assert read_records(folder / "examples.jsonl") == records
    assert summarize_run(folder, n_boot=200)["metrics"] == summary["metrics"]
    # resuming a packed run appends beside the packed part; a repack folds it in
    more = evaluate(backend, _settings(tmp_path, tasks=("emoji_movie",), limit=6),
                    progress=False)[0]
    assert more["n"] == 6 and len(read_records(folder / "examples.jsonl")) == 6
    assert main(["pack", str(tmp_path / "runs")]) == 0
    assert len(read_records(folder / "examples.jsonl")) == 6


def test_a_spec_knows_from_its_folder_whether_its_run_is_finished(backend, tmp_path):
    from harness.plan import GenerationSettings, plan_loaded

    settings = _settings(tmp_path, tasks=("emoji_movie",))
    evaluate(backend, settings, progress=False)
    model = backend.info.to_json()

    def finished(**changes) -> bool:
        return plan_loaded(EvalSettings(**{**settings.__dict__, **changes}), model)[0].is_finished()

    assert finished()
    assert finished(limit=3)  # a subset of what is stored
    assert not finished(limit=6)  # examples missing
    assert not finished(generation=GenerationSettings(max_new_tokens=5))  # another identity
    assert not finished(shot_seed=7)
    assert not finished(out=tmp_path / "elsewhere")
