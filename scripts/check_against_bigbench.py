#!/usr/bin/env python3
"""Check our prompt rendering against BIG-bench 1.0.0's own formatting code.

Usage:
    python scripts/check_against_bigbench.py --sdist bigbench-1.0.0.tar.gz
    python scripts/check_against_bigbench.py --sdist ... \
        --write-digests tests/data/bigbench_prompt_digests.json
    python scripts/check_against_bigbench.py --sdist ... --all   # every JSON task
        (after scripts/fetch_bigbench_tasks.py --all; --tasks-dir for another folder)

BIG-bench's `default_format_fn` and `make_nshot_dataset` are loaded from `json_task.py`
inside the sdist (the rest of that module needs TensorFlow, so only those two functions are
compiled, untouched) and run on every task at 0, 1 and 3 shots, in full and with
`max_examples=7`. Every prompt, choice list and target list must equal ours. With
`--write-digests`, a sha256 per (task, shots, limit) of BIG-bench's own output is written:
tests/test_tasks.py checks our rendering against it on every CI run, without the sdist.
Without --sdist the sdist is downloaded from the package index (~360 MB, sha256 checked).

`--all` compares every JSON task under tasks/bigbench-all at 0, 1 and 3 shots. Full query
sets are compared where a (sub)task has at most --max-queries examples; above that the
first --max-queries queries of the same draw are compared at 1 and 3 shots (those prompts
are the full run's first ones; both implementations cost queries x examples there, hours
for the largest tasks on two cores) while 0 shots stays complete. A task our loader refuses
or BIG-bench's code cannot render is listed with the reason, never silently dropped.
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

from harness.errors import HarnessError  # noqa: E402
from harness.tasks import Task, available_tasks, load_tasks, render  # noqa: E402

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


def bigbench_formatted(fns: dict, path: Path) -> tuple[dict, list[dict]]:
    """BIG-bench's JsonTask steps before shots: read (ordered), drop duplicates, format."""
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
    return data, formatted


def bigbench_nshot(fns: dict, data: dict, formatted: list[dict], shots: int,
                   limit: int | None) -> list[dict]:
    """BIG-bench's make_nshot_dataset on formatted examples, as JsonTask calls it."""
    n_queries = len(formatted) if limit is None else min(limit, len(formatted))
    samples = fns["make_nshot_dataset"](
        formatted, shots, random_seed=42,
        separator=data.get("few_shot_example_separator", "\n"), max_examples=n_queries)
    prefix = str(data.get("task_prefix", ""))
    return [{"prompt": prefix + s["input"], "choices": list(s.get("choice", [])),
             "targets": [str(t) for t in s["target"]]} for s in samples]


def bigbench_prompts(fns: dict, path: Path, shots: int, limit: int | None) -> list[dict]:
    """Run BIG-bench's code as JsonTask does (dedup, format once, then n-shot)."""
    data, formatted = bigbench_formatted(fns, path)
    return bigbench_nshot(fns, data, formatted, shots, limit)


def digest(records: list[dict]) -> str:
    text = "\n".join(json.dumps(r, ensure_ascii=False, sort_keys=True) for r in records)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def ours(task: Task, shots: int, limit: int | None) -> list[dict]:
    return [{"prompt": p.text, "choices": list(p.choices), "targets": list(p.targets)}
            for p in render(task, shots, limit)]


def n_differing(theirs: list[dict], mine: list[dict]) -> int:
    return sum(a != b for a, b in zip(mine, theirs)) + abs(len(mine) - len(theirs))


def check_bundled(fns: dict) -> tuple[int, int, dict[str, str]]:
    """The three bundled tasks, in full and with limit 7: (prompts, differing, digests)."""
    digests: dict[str, str] = {}
    n_prompts = n_mismatch = 0
    for task in load_tasks(["emoji_movie", "periodic_elements", "arithmetic"]):
        for shots in SHOTS:
            for limit in LIMITS:
                theirs = bigbench_prompts(fns, task.path, shots, limit)
                bad = n_differing(theirs, ours(task, shots, limit))
                n_prompts += len(theirs)
                if bad:
                    print(f"MISMATCH {task.name} shots={shots} limit={limit}: {bad} prompts",
                          file=sys.stderr)
                n_mismatch += bad
                digests[f"{task.name}|{shots}|{limit or 'all'}"] = digest(theirs)
    return n_prompts, n_mismatch, digests


def check_leaf(fns: dict, task: Task, max_queries: int, counts: collections.Counter) -> None:
    """One (sub)task at 0, 1 and 3 shots; adds to `counts` per shot count."""
    try:
        data, formatted = bigbench_formatted(fns, task.path)
    except Exception as exc:  # BIG-bench's own code refuses what our loader took: a difference
        print(f"MISMATCH {task.name}: BIG-bench's formatting raises {type(exc).__name__}: "
              f"{str(exc)[:200]}", file=sys.stderr)
        counts["bigbench_refused"] += 1
        return
    for shots in SHOTS:
        if len(formatted) < shots + 1:
            print(f"SKIP {task.name} shots={shots}: only {len(formatted)} distinct examples",
                  file=sys.stderr)
            counts[f"skipped_too_few_examples|{shots}"] += 1
            continue
        limit = None if shots == 0 or len(formatted) <= max_queries else max_queries
        theirs = bigbench_nshot(fns, data, formatted, shots, limit)
        bad = n_differing(theirs, ours(task, shots, limit))
        if bad:
            print(f"MISMATCH {task.name} shots={shots} limit={limit}: {bad} of {len(theirs)} "
                  "prompts", file=sys.stderr)
        counts[f"prompts|{shots}"] += len(theirs)
        counts[f"differ|{shots}"] += bad
        counts[f"partial|{shots}"] += limit is not None


def _task_bytes(tasks_dir: Path, name: str) -> int:
    return sum(p.stat().st_size for p in (tasks_dir / name).rglob("task.json"))


def check_all(fns: dict, tasks_dir: Path, max_queries: int, skip: frozenset[str] = frozenset()
              ) -> int:
    """Every JSON task under `tasks_dir` but those in `skip` (done by an interrupted run),
    smallest first, so a run cut short has compared as many tasks as it could; prints the
    counts per shot count."""
    counts: collections.Counter = collections.Counter()
    refused = []
    n_leaves = 0
    names = sorted((n for n in available_tasks(tasks_dir) if n not in skip),
                   key=lambda n: _task_bytes(tasks_dir, n))
    for number, name in enumerate(names, start=1):
        try:
            leaves = load_tasks(name, tasks_dir)
        except HarnessError as exc:
            refused.append(f"{name}: {exc}")
            continue
        before = counts.copy()
        for task in leaves:
            n_leaves += 1
            check_leaf(fns, task, max_queries, counts)
        # per-task counts, so an interrupted run still says what it compared
        per_shot = ", ".join(f"shots={s}: {counts[f'prompts|{s}'] - before[f'prompts|{s}']} "
                             f"prompts, {counts[f'differ|{s}'] - before[f'differ|{s}']} differ"
                             for s in SHOTS)
        print(f"[{number}/{len(names)}] {name}: {len(leaves)} (sub)task(s); {per_shot}",
              file=sys.stderr, flush=True)
    for line in refused:
        print(f"REFUSED {line}", file=sys.stderr)
    print(f"{len(names) - len(refused)} of {len(names)} JSON tasks loaded ({n_leaves} (sub)tasks); "
          f"{len(refused)} refused by the loader (listed above)")
    for shots in SHOTS:
        print(f"shots={shots}: {counts[f'prompts|{shots}']} prompts compared, "
              f"{counts[f'differ|{shots}']} differ; {counts[f'partial|{shots}']} (sub)tasks "
              f"compared on their first {max_queries} queries; "
              f"{counts[f'skipped_too_few_examples|{shots}']} skipped (too few examples)")
    if counts["bigbench_refused"]:
        print(f"{counts['bigbench_refused']} (sub)tasks refused by BIG-bench's code but not by ours")
    failed = any(counts[f"differ|{s}"] for s in SHOTS) or refused or counts["bigbench_refused"]
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdist", type=Path, help="bigbench-1.0.0.tar.gz (else downloaded)")
    parser.add_argument("--write-digests", type=Path, help="write BIG-bench's digests here")
    parser.add_argument("--all", action="store_true", help="every JSON task under --tasks-dir")
    parser.add_argument("--tasks-dir", type=Path, default=REPO / "tasks" / "bigbench-all",
                        help="with --all: the folder of tasks (default tasks/bigbench-all)")
    parser.add_argument("--max-queries", type=int, default=1000,
                        help="with --all: above this many examples, 1- and 3-shot prompts are "
                             "compared on the first N queries of the draw (default 1000)")
    parser.add_argument("--skip", type=Path, metavar="FILE",
                        help="with --all: task names (one a line) to leave out, e.g. those an "
                             "interrupted run's log shows done")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.sdist:
            check_sdist(args.sdist)
        sdist = args.sdist or download_sdist(Path(tmp))
        fns = bigbench_functions(sdist)
    if args.all:
        skip = frozenset(args.skip.read_text(encoding="utf-8").split()) if args.skip else frozenset()
        return check_all(fns, args.tasks_dir, args.max_queries, skip)

    n_prompts, n_mismatch, digests = check_bundled(fns)
    print(f"{n_prompts} prompts compared with BIG-bench 1.0.0, {n_mismatch} differ")
    if args.write_digests:
        args.write_digests.parent.mkdir(parents=True, exist_ok=True)
        args.write_digests.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
        print(f"wrote {len(digests)} digests to {args.write_digests}")
    return 1 if n_mismatch else 0


if __name__ == "__main__":
    sys.exit(main())
