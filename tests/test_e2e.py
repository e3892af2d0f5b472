"""End to end through the CLI: the real SmolLM2-135M, and a sweep of the mini family."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _harness(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=1200, env={**os.environ, **(env or {})})


@pytest.mark.slow
def test_eval_smollm2_on_every_task(tmp_path):
    done = _harness("eval", "--model", "smollm2-135m", "--limit", "2", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    runs = tmp_path / "runs" / "smollm2-135m@main"
    summaries = sorted(runs.rglob("summary.json"))
    assert len(summaries) == 23  # 20 arithmetic subtasks + emoji_movie + 2 periodic_elements
    for path in summaries:
        summary = json.loads(path.read_text())
        assert summary["n"] == 2
        assert summary["model"]["total_params"] == 134_515_008
        assert summary["settings"]["dtype"] == "float32"
        lines = (path.parent / "examples.jsonl").read_text().splitlines()
        assert len(lines) == 2
        logprob = summary["metrics"]["target_logprob"]["mean"]
        assert -200 < logprob < 0
    emoji = json.loads((runs / "emoji_movie" / "shots0" / "summary.json").read_text())
    assert {"multiple_choice_grade", "exact_str_match", "brier_score"} <= set(emoji["metrics"])
    # the side-by-side table: one row per subtask
    assert "emoji_movie" in done.stdout and "arithmetic/5_digit_division" in done.stdout
    assert "EM" in done.stdout and "MC" in done.stdout and "logp" in done.stdout
    # the same identity as the committed SmolLM2 runs: this machine must reproduce them
    assert "46 examples evaluated now, 0 reused" in done.stdout
    verdict = [line for line in done.stdout.splitlines() if line.startswith("reproduction: ")]
    assert verdict and verdict[-1].startswith("reproduction: REPRODUCED: 23 run(s), 46 examples"), \
        done.stdout[-3000:]
