#!/usr/bin/env python3
"""Check our prompt rendering against BIG-bench 1.0.0's own formatting code.

Usage:
    python scripts/check_against_bigbench.py --sdist bigbench-1.0.0.tar.gz
    python scripts/check_against_bigbench.py --sdist ... \
        --write-digests tests/data/bigbench_prompt_digests.json

BIG-bench's `default_format_fn` and `make_nshot_dataset` are loaded from `json_task.py`
inside the sdist (the rest of that module needs TensorFlow, so only those two functions are
compiled, untouched) and run on every task at 0, 1 and 3 shots, in full and with
`max_examples=7`. Every prompt, choice list and target list must equal ours. With
`--write-digests`, a sha256 per (task, shots, limit) of BIG-bench's own output is written:
tests/test_tasks.py checks our rendering against it on every CI run, without the sdist.
Without --sdist the sdist is downloaded from the package index (~360 MB, sha256 checked).
"""

from __future__ import annotations

import argparse
import ast
import collections
import copy
import hashlib
import json
import sys
import tarfile
import tempfile
import typing
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.tasks import load_tasks, render  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fetch_bigbench_tasks import check_sdist, download_sdist  # noqa: E402

SHOTS = (0, 1, 3)
LIMITS = (None, 7)
JSON_TASK = "bigbench-1.0.0/bigbench/api/json_task.py"


def bigbench_functions(sdist: Path) -> dict[str, typing.Any]:
    with tarfile.open(sdist, "r:gz") as tar:
        handle = tar.extractfile(JSON_TASK)
        assert handle is not None, f"{JSON_TASK} not in {sdist}"
        source = handle.read().decode("utf-8")
    namespace: dict[str, typing.Any] = {"np": np, "copy": copy, **vars(typing)}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name in ("default_format_fn",
                                                                "make_nshot_dataset"):
            exec(compile(ast.Module([node], []), JSON_TASK, "exec"), namespace)
    return namespace


def bigbench_prompts(fns: dict, path: Path, shots: int, limit: int | None) -> list[dict]:
    """Run BIG-bench's code as JsonTask does (dedup, format once, then n-shot)."""
    data = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=collections.OrderedDict)
    seen, distinct = set(), []
    for example in data["examples"]:
        serial = json.dumps(example)
        if serial not in seen:
            seen.add(serial)
            distinct.append(example)
    formatted = [
        fns["default_format_fn"](
            copy.deepcopy(example),
            input_prefix=data.get("example_input_prefix", "\nQ: "),
            output_prefix=data.get("example_output_prefix", "\nA: "),
            choice_prefix=data.get("choice_prefix", "\n  choice: "),
            random_seed=42,
            append_choices_to_input=data.get("append_choices_to_input", True),
        )
        for example in distinct
    ]
    n_queries = len(formatted) if limit is None else min(limit, len(formatted))
    samples = fns["make_nshot_dataset"](
        formatted, shots, random_seed=42,
        separator=data.get("few_shot_example_separator", "\n"), max_examples=n_queries)
    prefix = str(data.get("task_prefix", ""))
    return [{"prompt": prefix + s["input"], "choices": list(s.get("choice", [])),
             "targets": [str(t) for t in s["target"]]} for s in samples]


def digest(records: list[dict]) -> str:
    text = "\n".join(json.dumps(r, ensure_ascii=False, sort_keys=True) for r in records)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdist", type=Path, help="bigbench-1.0.0.tar.gz (else downloaded)")
    parser.add_argument("--write-digests", type=Path, help="write BIG-bench's digests here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.sdist:
            check_sdist(args.sdist)
        sdist = args.sdist or download_sdist(Path(tmp))
        fns = bigbench_functions(sdist)

    digests: dict[str, str] = {}
    n_prompts = n_mismatch = 0
    for task in load_tasks(["emoji_movie", "periodic_elements", "arithmetic"]):
        for shots in SHOTS:
            for limit in LIMITS:
                theirs = bigbench_prompts(fns, task.path, shots, limit)
                ours = [{"prompt": p.text, "choices": list(p.choices),
                         "targets": list(p.targets)} for p in render(task, shots, limit)]
                n_prompts += len(theirs)
                bad = sum(a != b for a, b in zip(ours, theirs)) + abs(len(ours) - len(theirs))
                if bad:
                    print(f"MISMATCH {task.name} shots={shots} limit={limit}: {bad} prompts",
                          file=sys.stderr)
                n_mismatch += bad
                digests[f"{task.name}|{shots}|{limit or 'all'}"] = digest(theirs)
    print(f"{n_prompts} prompts compared with BIG-bench 1.0.0, {n_mismatch} differ")
    if args.write_digests:
        args.write_digests.parent.mkdir(parents=True, exist_ok=True)
        args.write_digests.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
        print(f"wrote {len(digests)} digests to {args.write_digests}")
    return 1 if n_mismatch else 0


if __name__ == "__main__":
    sys.exit(main())
