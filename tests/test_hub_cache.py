"""The Pythia path offline: a Hugging Face cache laid out as the Hub client writes it.

Tests cannot reach the Hub, but `from_pretrained` reads the same cache whether the Hub
client just filled it or `harness fetch` did on another machine: `models--<owner>--<name>/`
with `refs/<revision>` holding a commit hash, `snapshots/<commit>/` of relative symlinks
into `blobs/`. The pico checkpoints stand in for Pythia's weights (GPT-NeoX both).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import reproduce, results

REPO = Path(__file__).resolve().parents[1]
PICO = REPO / "families" / "pico" / "pico-16k"


def lay_out_hub_cache(hub: Path, repo_id: str, revisions: dict[str, Path]) -> dict[str, str]:
    """Write `revisions` (name -> checkpoint folder) as the Hub client caches them."""
    repo = hub / f"models--{repo_id.replace('/', '--')}"
    commits = {}
    for revision, folder in revisions.items():
        files = sorted(p for p in folder.iterdir() if p.is_file())
        commit = hashlib.sha1("".join(p.name + hashlib.sha256(p.read_bytes()).hexdigest()
                                      for p in files).encode()).hexdigest()
        snapshot = repo / "snapshots" / commit
        snapshot.mkdir(parents=True, exist_ok=True)
        (repo / "blobs").mkdir(exist_ok=True)
        for path in files:
            blob = repo / "blobs" / hashlib.sha256(path.read_bytes()).hexdigest()
            if not blob.exists():
                blob.write_bytes(path.read_bytes())
            (snapshot / path.name).symlink_to(os.path.relpath(blob, snapshot))
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / revision).write_text(commit)  # the client writes no newline
        commits[revision] = commit
    return commits


def _harness(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=600, env={**os.environ, **env})


@pytest.fixture(scope="module")
def hub_home(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    home = tmp_path_factory.mktemp("hf_home")
    commits = lay_out_hub_cache(home / "hub", "EleutherAI/pythia-14m",
                                {"main": PICO / "step4000", "step1000": PICO / "step1000"})
    return home, commits


@pytest.mark.parametrize("revision", ["step1000", "main"])
def test_eval_pythia_from_the_cache_through_from_pretrained(hub_home, tmp_path, revision):
    home, commits = hub_home
    env = {"HF_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    done = _harness("eval", "--model", "pythia-14m", "--revision", revision, "--tasks",
                    "arithmetic/1_digit_addition", "--limit", "3", "--out", str(tmp_path),
                    "--no-check", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads((tmp_path / "runs" / f"pythia-14m@{revision}" / "arithmetic" /
                           "1_digit_addition" / "shots0" / "manifest.json").read_text())
    # the revision resolved through refs/ to its snapshot: the commit is the fingerprint
    assert manifest["identity"]["weights"] == commits[revision]
    assert manifest["model"]["source"] == "EleutherAI/pythia-14m"
    assert manifest["model"]["non_embedding_params"] == 12_768
    # and the outputs are those of the checkpoint behind that revision
    local = {"main": "step4000", "step1000": "step1000"}[revision]
    committed = REPO / "results" / "runs" / f"pico-16k@{local}" / "arithmetic" / "1_digit_addition"
    ours = results.load_done(tmp_path / "runs" / f"pythia-14m@{revision}" / "arithmetic" /
                             "1_digit_addition" / "shots0")
    same = reproduce.compare_records("x", ours.values(), results.load_done(committed / "shots0"))
    assert same.ok and same.examples == 3


def test_a_revision_missing_from_the_cache_is_one_clear_line(hub_home, tmp_path):
    home, _ = hub_home
    done = _harness("eval", "--model", "pythia-14m", "--revision", "step2000", "--tasks",
                    "arithmetic/1_digit_addition", "--limit", "1", "--out", str(tmp_path),
                    env={"HF_HOME": str(home), "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: error: ")
    assert "EleutherAI/pythia-14m" in lines[0] and "step2000" in lines[0]


def test_fetch_without_a_reachable_hub_fails_with_one_line(tmp_path):
    # an endpoint that refuses connections: no test ever reaches the real Hub
    env = {"HF_HOME": str(tmp_path), "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"}
    done = _harness("fetch", "--family", "pythia", "--sizes", "14m", "--revisions", "step1000",
                    env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("harness: error: cannot fetch EleutherAI/pythia-14m@step1000")
    assert "machine with internet" in lines[0]


def test_fetch_refuses_local_models(tmp_path):
    done = _harness("fetch", "--models", "pico-16k", env={"HF_HOME": str(tmp_path)})
    assert done.returncode == 2
    assert "not a hub model" in done.stderr
