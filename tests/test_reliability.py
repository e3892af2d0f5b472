"""Reliability: crash and resume, cache safety, invariance, data parallelism, bad input."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from harness.cli import main
from harness.models import load_model
from harness.records import read_records
from harness.runner import EvalSettings, evaluate

REPO = Path(__file__).resolve().parents[1]
# Metrics of discrete outcomes must match exactly; the others within the fp32 tolerance.
DISCRETE = ("exact_str_match", "exact_match_raw", "multiple_choice_grade",
            "multiple_choice_grade_norm", "token_edit_distance", "digit_accuracy",
            "answer_no_match", "target_all_greedy")


def _env(families: Path | None = None, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
    if families is not None:
        env["HARNESS_FAMILIES_DIR"] = str(families)
    return env


def _summaries(out: Path) -> dict[str, dict]:
    return {str(p.parent.relative_to(out)): json.loads(p.read_text())
            for p in sorted((out / "runs").rglob("summary.json"))}


def _assert_same_summaries(a: dict, b: dict, tol: float = 1e-4) -> None:
    assert a.keys() == b.keys()
    for run in a:
        ma, mb = a[run]["metrics"], b[run]["metrics"]
        assert ma.keys() == mb.keys(), run
        for metric in ma:
            for field in ("mean", "ci_low", "ci_high"):
                x, y = ma[metric][field], mb[metric][field]
                if metric in DISCRETE:
                    assert x == y, (run, metric, field)
                else:
                    assert x == pytest.approx(y, abs=tol), (run, metric, field)


def _lines(out: Path) -> int:
    return sum(len(p.read_bytes().split(b"\n")) - 1 for p in (out / "runs").rglob("examples.jsonl"))


SWEEP = ["sweep", "--family", "mini", "--sizes", "16k,56k", "--revisions", "step40,step120",
         "--tasks", "arithmetic/1_digit_addition,arithmetic/2_digit_subtraction", "--limit", "24",
         "--chunk-size", "4"]


def test_sigkill_mid_sweep_then_rerun_loses_nothing(mini_family, tmp_path):
    families = mini_family.parent
    reference = tmp_path / "reference"
    done = subprocess.run([sys.executable, "-m", "harness", *SWEEP, "--out", str(reference)],
                          capture_output=True, text=True, env=_env(families), cwd=REPO,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    total = _lines(reference)
    assert total == 4 * 2 * 24

    out = tmp_path / "killed"
    kills = []
    for threshold in (6, 50, 120, 170):  # kill points, in examples written so far
        process = subprocess.Popen([sys.executable, "-m", "harness", *SWEEP, "--out", str(out)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env=_env(families), cwd=REPO)
        deadline = time.time() + 300
        while process.poll() is None and time.time() < deadline:
            if (out / "runs").exists() and _lines(out) >= threshold:
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        process.wait(timeout=60)
        kills.append((threshold, _lines(out)))
    final = subprocess.run([sys.executable, "-m", "harness", *SWEEP, "--out", str(out)],
                           capture_output=True, text=True, env=_env(families), cwd=REPO,
                           timeout=600)
    assert final.returncode == 0, final.stderr[-2000:]
    assert any(written < total for _, written in kills)  # at least one kill landed mid-sweep

    for path in (out / "runs").rglob("examples.jsonl"):
        raw = path.read_bytes()
        assert raw.endswith(b"\n")  # no truncated line survives
        records = read_records(path, partial_tail_ok=False)
        assert len(records) == 24 and len({r.idx for r in records}) == 24  # each once
    _assert_same_summaries(_summaries(reference), _summaries(out))

    # the reruns computed only what was missing: every example was written exactly once
    written = 0
    for manifest in (out / "runs").rglob("manifest.json"):
        written += sum(s["new_examples"] for s in json.loads(manifest.read_text())["sessions"])
    assert written <= total
    print(f"kills (threshold, examples on disk): {kills}; examples written in all: {written}"
          f" of {total}")
    # and a finished sweep is skipped without loading any model
    again = subprocess.run([sys.executable, "-m", "harness", "-v", *SWEEP, "--out", str(out)],
                           capture_output=True, text=True, env=_env(families), cwd=REPO,
                           timeout=600)
    assert again.returncode == 0 and again.stderr.count("finished earlier, skipped") == 4


def test_revisions_and_dtypes_never_share_outputs(mini_family, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_FAMILIES_DIR", str(mini_family.parent))
    settings = EvalSettings(tasks=("arithmetic/1_digit_addition",), limit=6, out=tmp_path,
                            n_boot=50)
    early = evaluate(load_model("mini-16k", "step40"), settings, progress=False)[0]
    late = evaluate(load_model("mini-16k", "step120"), settings, progress=False)[0]
    half = evaluate(load_model("mini-16k", "step120", dtype="bfloat16"), settings,
                    progress=False)[0]
    folders = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert folders == ["mini-16k@step120", "mini-16k@step120+bfloat16", "mini-16k@step40"]
    assert early["model"]["weights_fingerprint"] != late["model"]["weights_fingerprint"]
    assert half["model"]["dtype"] == "bfloat16" and late["model"]["dtype"] == "float32"
    for manifest in (tmp_path / "runs").rglob("manifest.json"):  # each computed its own
        assert json.loads(manifest.read_text())["sessions"][-1]["new_examples"] == 6
    assert early["metrics"]["target_logprob"]["mean"] != late["metrics"]["target_logprob"]["mean"]


def test_a_changed_task_file_invalidates_its_cached_outputs(tiny_model_dir, tmp_path,
                                                            monkeypatch):
    tasks = tmp_path / "tasks"
    shutil.copytree(REPO / "tasks" / "bigbench" / "emoji_movie", tasks / "emoji_movie")
    monkeypatch.setenv("HARNESS_TASKS_DIR", str(tasks))
    backend = load_model(str(tiny_model_dir))
    settings = EvalSettings(tasks=("emoji_movie",), limit=3, out=tmp_path / "out", n_boot=50)
    evaluate(backend, settings, progress=False)
    path = tasks / "emoji_movie" / "task.json"
    data = json.loads(path.read_text())
    data["examples"][0]["input"] += " (edited)"
    path.write_text(json.dumps(data))
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match="task_sha256"):
        evaluate(backend, settings, progress=False)
    redone = evaluate(backend, EvalSettings(**{**settings.__dict__, "overwrite": True}),
                      progress=False)[0]
    records = read_records(tmp_path / "out" / "runs" / "tiny-neox@main" / "emoji_movie" /
                           "shots0" / "examples.jsonl")
    assert redone["task"]["sha256"] != "" and all("(edited)" in r.prompt for r in records
                                                  if r.idx == 0)


@pytest.mark.parametrize("batch_size", ["1", "3", "auto"])
def test_summaries_do_not_depend_on_batch_size(tiny_model_dir, tmp_path, batch_size):
    tasks = ("arithmetic/1_digit_division", "emoji_movie", "periodic_elements/subtask_0")
    reference = tmp_path / "reference"
    evaluate(load_model(str(tiny_model_dir), batch_size="auto"),
             EvalSettings(tasks=tasks, limit=5, out=reference, n_boot=100), progress=False)
    other = tmp_path / batch_size
    evaluate(load_model(str(tiny_model_dir), batch_size=batch_size),
             EvalSettings(tasks=tasks, limit=5, out=other, n_boot=100, chunk_size=2),
             progress=False)
    _assert_same_summaries(_summaries(reference), _summaries(other))


def test_two_processes_give_the_same_summaries_as_one(tiny_model_dir, tmp_path):
    args = ["eval", "--model", str(tiny_model_dir), "--tasks",
            "arithmetic/1_digit_division,emoji_movie", "--limit", "9", "--chunk-size", "4"]
    one = subprocess.run([sys.executable, "-m", "harness", *args, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, env=_env(), cwd=REPO, timeout=600)
    assert one.returncode == 0, one.stderr[-2000:]
    torchrun = Path(sys.executable).parent / "torchrun"
    two = subprocess.run([str(torchrun), "--nproc_per_node", "2", "-m", "harness", *args,
                          "--out", str(tmp_path / "two")], capture_output=True, text=True,
                         env=_env(OMP_NUM_THREADS="1"), cwd=REPO, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    _assert_same_summaries(_summaries(tmp_path / "one"), _summaries(tmp_path / "two"))
    for path in (tmp_path / "two" / "runs").rglob("examples.jsonl"):
        records = read_records(path)
        assert len(records) == 9 and len({r.idx for r in records}) == 9  # written once
    manifest = next((tmp_path / "two" / "runs").rglob("manifest.json"))
    assert json.loads(manifest.read_text())["sessions"][-1]["processes"] == 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_oom_back_off_on_a_capped_gpu(tmp_path):
    """A GPT-NeoX with Pythia-160m's shape on a GPU capped to a sliver of memory."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from harness.models.base import LoglikRequest
    from tests.conftest import build_bpe_tokenizer

    tokenizer = build_bpe_tokenizer()
    config = GPTNeoXConfig(vocab_size=len(tokenizer), hidden_size=768, num_hidden_layers=12,
                           num_attention_heads=12, intermediate_size=3072,
                           max_position_embeddings=2048)
    GPTNeoXForCausalLM(config).save_pretrained(tmp_path / "neox")
    tokenizer.save_pretrained(tmp_path / "neox")
    requests = [LoglikRequest("x " * 400, " y" * (1 + i % 7)) for i in range(512)]
    reference = load_model(str(tmp_path / "neox"), batch_size="1").loglikelihood(requests[:16])
    backend = load_model(str(tmp_path / "neox"), batch_size="auto")
    backend.token_budget = 1 << 20  # far too big for the cap below: forces back-off
    torch.cuda.set_per_process_memory_fraction(0.02)
    try:
        scores = backend.loglikelihood(requests)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    assert len(scores) == 512 and all(s is not None for s in scores)
    assert backend.token_budget < 1 << 20
    for a, b in zip(scores[:16], reference):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)


# ------------------------------------------------------------------------ bad input


def _bad_task_dir(tmp_path: Path, name: str, content: bytes) -> Path:
    root = tmp_path / "tasks"
    (root / name).mkdir(parents=True)
    (root / name / "task.json").write_bytes(content)
    return root


def _task_json(**overrides) -> bytes:
    data = {"canary": "c", "name": "t", "description": "d", "keywords": ["k"],
            "metrics": ["exact_str_match"], "preferred_score": "exact_str_match",
            "examples": [{"input": "a", "target": "b"}, {"input": "c", "target": "d"}]}
    data.update(overrides)
    return json.dumps(data).encode()


@pytest.fixture
def finished_run(tiny_model_dir, tmp_path):
    """A finished results folder whose files must survive every bad command untouched."""
    out = tmp_path / "results"
    evaluate(load_model(str(tiny_model_dir)),
             EvalSettings(tasks=("emoji_movie",), limit=3, out=out, n_boot=50), progress=False)
    return out


BAD_INPUTS = [
    # (id, argv, task file bytes or None, expected message part)
    ("json-syntax", ["prompts", "t"], b'{"name": "t", "examples": [', "invalid JSON at line 1"),
    ("no-examples", ["prompts", "t"], _task_json(examples=None), "is not a non-empty list"),
    ("no-target", ["prompts", "t"], _task_json(examples=[{"input": "a"}]),
     "example 0: has neither 'target' nor 'target_scores'"),
    ("bad-scores", ["prompts", "t"],
     _task_json(examples=[{"input": "a", "target": "x", "target_scores": {"x": "yes"}}]),
     "not a finite number"),
    ("bad-regex", ["prompts", "t"], _task_json(output_regex="[0-9"), "invalid regular expression"),
    ("not-utf8", ["prompts", "t"], '{"name": "é"}'.encode("latin-1"), "not UTF-8"),
    ("unknown-task", ["prompts", "nope"], None, "unknown task 'nope'"),
    ("unknown-subtask", ["prompts", "arithmetic/6_digit_addition"], None,
     "unknown subtask 'arithmetic/6_digit_addition'"),
    ("shots-too-many", ["prompts", "arithmetic/1_digit_division", "--shots", "23"], None,
     "at most 22 shots"),
    ("negative-limit", ["prompts", "emoji_movie", "--limit", "-3"], None, "must be 1 or more"),
    ("negative-shots", ["prompts", "emoji_movie", "--shots", "-1"], None, "is negative"),
    ("unknown-model", ["eval", "--model", "gpt-5-tiny"], None, "unknown model 'gpt-5-tiny'"),
    ("missing-revision", ["eval", "--model", "pythia-160m", "--revision", "step7"], None,
     "has no revision 'step7'"),
    ("not-a-model-path", ["eval", "--model", "pyproject.toml"], None,
     "neither a model folder nor a .gguf file"),
    ("missing-gguf", ["eval", "--model", "nothing.gguf"], None, "GGUF file nothing.gguf does not"),
    ("bad-batch-size", ["eval", "--model", "smollm2-135m", "--batch-size", "0"], None,
     "must be 1 or more"),
    ("empty-results-rescore", ["rescore", "{empty}"], None, "no run folders"),
    ("unwritable-out", ["eval", "--model", "pico-16k", "--revision", "step0", "--tasks",
                        "arithmetic/1_digit_addition", "--limit", "1", "--out", "/proc/x"], None,
     "cannot create the folder /proc/x"),
]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_gives_one_clear_line(case, tmp_path, monkeypatch, capsys, finished_run):
    _, argv, task_bytes, expected = case
    if task_bytes is not None:
        monkeypatch.setenv("HARNESS_TASKS_DIR", str(_bad_task_dir(tmp_path, "t", task_bytes)))
    (tmp_path / "empty").mkdir()
    argv = [a.replace("{empty}", str(tmp_path / "empty")) for a in argv]
    before = {p: p.read_bytes() for p in finished_run.rglob("*") if p.is_file()}
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err
    assert expected in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert {p: p.read_bytes() for p in finished_run.rglob("*") if p.is_file()} == before


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        return int(exc.code)


def test_corrupt_or_truncated_examples_are_refused_by_rescore(finished_run, capsys):
    path = next(finished_run.rglob("examples.jsonl"))
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + "{not json\n" + "".join(lines[1:]))
    assert main(["rescore", str(finished_run)]) == 2
    err = capsys.readouterr().err
    assert "line 2 is not a valid example record" in err and err.count("\n") == 1
    path.write_text("".join(lines) + lines[0][:40])  # what a killed writer leaves
    assert main(["rescore", str(finished_run)]) == 2
    assert "is incomplete (the run was interrupted" in capsys.readouterr().err


def test_cuda_without_a_gpu_is_one_line(tiny_model_dir, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert main(["eval", "--model", str(tiny_model_dir), "--device", "cuda", "--tasks",
                 "emoji_movie", "--limit", "1"]) == 2
    err = capsys.readouterr().err
    assert "no CUDA GPU is visible" in err and err.count("\n") == 1


def test_disk_full_while_writing_keeps_existing_results(finished_run, monkeypatch, capsys):
    import harness.io
    import harness.results

    folder = next(finished_run.rglob("summary.json")).parent
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(harness.io.os, "fsync", full)
    monkeypatch.setattr(harness.results.os, "fsync", full)
    assert main(["rescore", str(finished_run)]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and err.count("\n") == 1
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # no temp files left


def test_verbose_shows_the_cause_of_a_user_error(tmp_path):
    """-v prints the traceback, with the OSError that caused the one-line error."""
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "-v", "eval", "--model", "pico-16k", "--revision",
         "step0", "--tasks", "arithmetic/1_digit_addition", "--limit", "1", "--out", "/proc/x"],
        capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=300)
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr and "FileNotFoundError" in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1] == (
        "harness: error: cannot create the folder /proc/x (No such file or directory); choose "
        "another --out, or fix its permissions")


def test_a_damaged_family_json_is_named_not_skipped(tmp_path, monkeypatch, capsys):
    family = tmp_path / "families" / "broken"
    family.mkdir(parents=True)
    (family / "family.json").write_text('{"sizes": [{"name": "broken-1k"}', encoding="utf-8")
    monkeypatch.setenv("HARNESS_FAMILIES_DIR", str(tmp_path / "families"))
    assert _exit_code(["eval", "--model", "broken-1k"]) == 2
    err = capsys.readouterr().err
    assert f"{family / 'family.json'} is damaged" in err and "unknown model" not in err
    assert err.count("\n") == 1


def test_an_unknown_family_size_is_a_user_error(capsys):
    from harness.family.__main__ import main as family_main

    assert family_main(["train", "--family", "mini", "--sizes", "mini-9t", "--out", "/nowhere"]) == 2
    assert "family mini has no size 'mini-9t'; its sizes: mini-5k" in capsys.readouterr().err
