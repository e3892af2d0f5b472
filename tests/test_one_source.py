"""One fact, one place (STYLE.md habit 22): the repository root, the integer regex, the
resampler, the chance level and the git state each have one definition that the others use."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import numpy as np
import pytest

from harness import emergence, stats
from harness.metrics import METRICS
from harness.records import ExampleRecord
from harness.repo import REPO, git_label, git_state
from harness.tasks import chance_grade, default_tasks_dir, load_tasks

PACKAGE = Path(__file__).resolve().parents[1] / "harness"


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        if "report" not in path.relative_to(PACKAGE).parts:  # the report rewrite owns it
            yield path, ast.parse(path.read_text(encoding="utf-8"))


def test_only_repo_py_derives_the_repository_root_from_its_own_file():
    found = [str(path.relative_to(PACKAGE)) for path, tree in _modules()
             for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and node.attr == "parents"]
    assert found == ["repo.py"]
    if "HARNESS_TASKS_DIR" not in os.environ:
        assert default_tasks_dir() == REPO / "tasks" / "bigbench"


def test_only_answers_py_compiles_the_integer_regex():
    found = [str(path.relative_to(PACKAGE)) for path, tree in _modules()
             for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and node.value in ("[-+]?[0-9]+", r"[-+]?\d+")]
    assert found == ["answers.py"]


def test_only_repo_py_asks_git():
    found = sorted({str(path.relative_to(PACKAGE)) for path, tree in _modules()
                    for node in ast.walk(tree)
                    if isinstance(node, ast.Constant) and node.value == "rev-parse"})
    assert found == ["repo.py"]


def test_git_state_of_this_checkout_and_its_label():
    state = git_state()
    if state["commit"] is not None:  # a checkout (an sdist has no .git)
        assert re.fullmatch(r"[0-9a-f]{40}", state["commit"]) and isinstance(state["dirty"], bool)
    assert git_label({"commit": "abc", "dirty": True}) == "abc-dirty"
    assert git_label({"commit": "abc", "dirty": False}) == "abc"
    assert git_label({"commit": None, "dirty": None}) is None


def test_emergence_resamples_exactly_as_stats_does():
    """Paired resamples for curves and the per-metric CI come from one generator of indices."""
    n, n_boot, seed = 37, 25, 5
    counts = np.concatenate(list(emergence.bootstrap._count_chunks(n, n_boot, seed)))
    indices = np.concatenate(list(stats.resample_indices(n, n_boot, seed)))
    assert counts.shape == (n_boot, n)
    assert (counts == stats.resample_counts(indices, n)).all()
    values = np.random.default_rng(0).normal(size=n)
    _, low, high = stats.bootstrap_mean_ci(values, n_boot=n_boot, seed=seed)
    means = counts @ values / n
    assert (low, high) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))


def _mc(idx: int, target_scores: tuple[float, ...]) -> ExampleRecord:
    return ExampleRecord(task="t", idx=idx, shots=0, prompt="Q", prompt_sha256="0" * 64,
                         shot_idxs=(), targets=("a",), choices=tuple("abcde"[:len(target_scores)]),
                         target_scores=target_scores,
                         choice_logprobs=tuple((-1.0,) for _ in target_scores),
                         choice_greedy=tuple((False,) for _ in target_scores))


def test_one_chance_level_for_the_task_and_the_metric():
    assert chance_grade([(1, 0, 0, 0, 0), (0, 1)]) == pytest.approx((0.2 + 0.5) / 2)
    assert chance_grade([]) is None
    records = [_mc(0, (1.0, 0.0, 0.0, 0.0, 0.0)), _mc(1, (0.0, 1.0))]
    assert METRICS["multiple_choice_grade"].chance(records) == pytest.approx(0.35)
    emoji = load_tasks("emoji_movie")[0]
    assert emoji.chance_multiple_choice_grade == chance_grade(
        ex.target_scores for ex in emoji.examples) == pytest.approx(0.2)
