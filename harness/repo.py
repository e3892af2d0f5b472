"""The repository this package runs from, and its git state: one place for both.

`REPO` is the folder that holds `harness/`, `tasks/`, `families/` and `results/` (a checkout, or
the project folder of an editable install). The git state is recorded with every run and
trained family so a number can be traced to the code that made it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# What computes a number: the package and the task files (not results/, which a run changes).
CODE_PATHS = ("harness", "tasks")


def git_state(paths: Sequence[str] = CODE_PATHS) -> dict[str, Any]:
    """{"commit": HEAD's hash, "dirty": whether `paths` (all files when empty) differ from it};
    both None outside a git checkout or without git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=REPO, check=True, timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", *paths],
                                    capture_output=True, text=True, cwd=REPO,
                                    timeout=10).stdout.strip())
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def git_label(state: dict[str, Any]) -> str | None:
    """"<commit>" or "<commit>-dirty" (None without a commit): the one-string form."""
    if state["commit"] is None:
        return None
    return state["commit"] + ("-dirty" if state["dirty"] else "")
