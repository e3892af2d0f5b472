"""Reproducing the committed evidence: identity by content, outputs compared example by example."""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import reproduce, results
from harness.cli import main

REPO = Path(__file__).resolve().parents[1]
RUN = Path("pico-16k@step4000") / "arithmetic" / "2_digit_addition" / "shots0"


def _evidence(tmp_path: Path) -> Path:
    """A one-run copy of the committed evidence (the real pico-16k checkpoint's outputs)."""
    evidence = tmp_path / "evidence"
    shutil.copytree(REPO / "results" / "runs" / RUN, evidence / "runs" / RUN)
    return evidence


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def harness(capsys):
    """The CLI in this process (torch is imported once for the whole file)."""

    def run(*args: str) -> Done:
        code = main(list(args))
        captured = capsys.readouterr()
        return Done(code, captured.out, captured.err)

    return run


def test_version_1_identities_upgrade_to_the_content_only_form():
    manifest = json.loads((REPO / "results" / "runs" / RUN / "manifest.json").read_text())
    identity = manifest["identity"]
    assert identity["version"] == results.IDENTITY_VERSION
    old = {**identity, "version": 1, "model": "pico-16k", "revision": "step4000",
           "source": "/somewhere/else/families/pico/pico-16k/step4000"}
    assert results.upgrade_identity(old) == identity
    assert results.identity_key(old) == results.identity_key(identity)
    assert not {"model", "source", "revision"} & set(identity)


def test_a_sample_of_the_committed_run_reproduces(tmp_path):
    comparisons, skipped = reproduce.reproduce(reproduce.committed_runs(_evidence(tmp_path)), k=4, seed=1)
    assert not skipped
    [only] = comparisons
    assert only.ok and only.examples == 4 and only.generations_identical == 4
    assert only.max_abs_delta <= reproduce.TOLERANCE


def _break_one_logprob(folder: Path, by: float) -> int:
    packed = folder / "examples.jsonl.gz"
    lines = gzip.decompress(packed.read_bytes()).decode().splitlines()
    records = [json.loads(line) for line in lines]
    records[0]["target_logprobs"][0][0] += by
    packed.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode()))
    return records[0]["idx"]


def test_breaking_one_committed_logprob_makes_reproduce_fail(tmp_path, harness):
    evidence = _evidence(tmp_path)
    broken_idx = _break_one_logprob(evidence / "runs" / RUN, by=0.01)
    # every example of the run, so the broken one is among them
    done = harness("reproduce", str(evidence), "-k", "1000")
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "DRIFT in 1 run(s)" in done.stdout
    assert f"differs: idx {broken_idx}" in done.stdout


def test_eval_ends_with_the_verdict_and_names_the_examples_that_differ(tmp_path, harness):
    evidence = _evidence(tmp_path)
    out = tmp_path / "out"
    args = ("eval", "--model", "pico-16k", "--tasks", "arithmetic/2_digit_addition", "--limit", "5",
            "--out", str(out), "--evidence", str(evidence))
    done = harness(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "5 examples evaluated now, 0 reused" in done.stdout
    assert "reproduction: REPRODUCED: 1 run(s), 5 examples compared" in done.stdout
    broken_idx = _break_one_logprob(evidence / "runs" / RUN, by=0.01)
    again = harness(*args)
    assert "5 examples evaluated now" not in again.stdout  # reused, and said so
    assert "0 examples evaluated now, 5 reused" in again.stdout
    assert "reproduction: DRIFT in 1 run(s)" in again.stdout
    assert f"examples {broken_idx}; max |Δ log-prob| 1.0e-02" in again.stdout


def test_runs_without_a_committed_twin_are_said_so(tmp_path, harness):
    out = tmp_path / "out"
    done = harness("eval", "--model", "pico-16k", "--tasks", "arithmetic/2_digit_addition",
                    "--limit", "2", "--shots", "2", "--out", str(out),
                    "--evidence", str(_evidence(tmp_path)))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "1 of 1 run(s) have no committed run of the same identity" in done.stdout
    assert "nothing to compare" in done.stdout
