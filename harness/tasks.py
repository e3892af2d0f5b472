"""BIG-bench JSON tasks: load, validate and render them exactly as BIG-bench 1.0.0 does.

Behaviour reproduced from BIG-bench 1.0.0 (`bigbench/api/json_task.py`:
`default_format_fn`, `make_nshot_dataset`, `JsonTask.load_and_process_json`;
`bigbench/models/model_utils.py`: `postprocess_output`):

* Each example is formatted once, before shots: choices (keys of `target_scores`, sorted,
  then permuted by a fresh `RandomState(seed)` per example) are appended to the input when
  `append_choices_to_input` is true; the input becomes `input_prefix + input + output_prefix`;
  a missing `target` becomes the first key with the highest score. The choices scored for
  multiple choice keep file order, not the shown order.
* k-shot prompts use one `RandomState(seed)` per (task, k): the queries are drawn first
  (`choice(n, n_queries, replace=False)`), then for each query its shots are drawn from all
  *other* examples and one answer per shot from its targets. Nothing is stripped.
* Generations are post-processed by cutting after a `stop_string` and keeping the first
  match of `output_regex` (the default regex when a task gives neither): `harness.answers`,
  shared with the backends' early stopping.

No model code and no heavy imports here: this module imports with the standard library and
NumPy only (NumPy's legacy `RandomState` is what makes shot sampling bit-identical).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.repo import REPO

log = logging.getLogger(__name__)

SEED = 42  # BIG-bench's default random_seed for formatting and shots.
DEFAULT_REGEX = r"[^\.\?\!\;\n]+"  # BIG-bench's _DEFAULT_REGEX.
DEFAULT_INPUT_PREFIX = "\nQ: "
DEFAULT_OUTPUT_PREFIX = "\nA: "
DEFAULT_CHOICE_PREFIX = "\n  choice: "
DEFAULT_SEPARATOR = "\n"

GENERATIVE_METRICS = frozenset({
    "bleu", "bleurt", "exact_str_match", "case_insensitive_str_match", "sequence_f1",
    "numeric_match_with_0_1_relative_error", "rouge",
})
SCORING_METRICS = frozenset({"log_likelihood"})
MULTIPLE_CHOICE_METRICS = frozenset({
    "multiple_choice_grade", "calibration_multiple_choice_brier_score",
    "expected_calibration_error", "weighted_log_probabilities", "weighted_probabilities",
    "macro_f1",
})
KNOWN_METRICS = GENERATIVE_METRICS | SCORING_METRICS | MULTIPLE_CHOICE_METRICS
REQUIRED_KEYS = ("canary", "name", "description", "keywords")
REQUIRED_KEYS_WITH_EXAMPLES = ("metrics", "examples", "preferred_score")
STRING_KEYS = ("example_input_prefix", "example_output_prefix", "choice_prefix",
               "few_shot_example_separator", "output_regex", "stop_string")


def default_tasks_dir() -> Path:
    """`$HARNESS_TASKS_DIR`, else the repository's tasks/bigbench next to the package."""
    env = os.environ.get("HARNESS_TASKS_DIR")
    return Path(env) if env else REPO / "tasks" / "bigbench"


# Tasks this repository generates, in BIG-bench's format but not from BIG-bench: kept beside
# tasks/bigbench (whose files stay byte-identical to the sdist) and named by their path under
# tasks/, e.g. "grok/modular_addition" (harness.family.grok_task).
PROJECT_TASKS_DIR = REPO / "tasks"
PROJECT_TASK_GROUPS = ("grok", "loss")


def _project_tasks() -> list[str]:
    return sorted(f"{group}/{p.parent.name}" for group in PROJECT_TASK_GROUPS
                  for p in (PROJECT_TASKS_DIR / group).glob("*/task.json"))


def _task_file(root: Path, name: str) -> Path:
    """root/<name>/task.json, or the project's own task of that name."""
    path = root / name / "task.json"
    if not path.is_file() and name.split("/", 1)[0] in PROJECT_TASK_GROUPS:
        own = PROJECT_TASKS_DIR / name / "task.json"
        if own.is_file():
            return own
    return path


@dataclass(frozen=True)
class Example:
    """One example after BIG-bench's formatting (before shots).

    `input` is the full formatted query (prefixes and shown choices included); `choices` are
    the `target_scores` keys in file order with `target_scores` aligned to them.
    """

    idx: int
    raw_input: str
    input: str
    targets: tuple[str, ...]
    choices: tuple[str, ...]
    target_scores: tuple[float, ...]
    # Canonical value of the formatted example: BIG-bench excludes a query from its own
    # shots by value (`x != sample`), not by position.
    value_key: str


@dataclass(frozen=True)
class Variant:
    """Another way to score a task's generations, named after "@" ("arithmetic@scratchpad").

    The prompts stay BIG-bench's; the post-processing regex and generation budget change,
    and with `answer_marker` the target's log-prob is taken after the model's own text up
    to and including the marker (its scratchpad), not right after the prompt.
    """

    name: str
    description: str
    output_regex: str
    max_new_tokens: int
    answer_marker: str | None = None


# Scratchpad answers work the sum digit by digit, then give "so <number>".
SCRATCHPAD_ANSWER_REGEX = r"(?<=so )[-+]?\d+"
VARIANTS = {
    "scratchpad": Variant(
        name="scratchpad", description="scores only the final number, written after 'so '",
        output_regex=SCRATCHPAD_ANSWER_REGEX, max_new_tokens=96, answer_marker="so "),
}


@dataclass(frozen=True)
class Task:
    """A task with examples (a BIG-bench subtask, or a task without subtasks)."""

    name: str  # "emoji_movie", "arithmetic/3_digit_addition"
    path: Path
    sha256: str
    description: str
    metrics: tuple[str, ...]
    preferred_score: str
    output_regex: str | None
    stop_string: str | None
    task_prefix: str
    few_shot_example_separator: str
    append_choices_to_input: bool
    absolute_normalization: bool
    examples: tuple[Example, ...]
    n_duplicates_dropped: int = 0
    variant: Variant | None = None

    @property
    def is_generative(self) -> bool:
        return bool(set(self.metrics) & GENERATIVE_METRICS)

    @property
    def has_choices(self) -> bool:
        return all(ex.choices for ex in self.examples)

    @cached_property
    def n_choices(self) -> tuple[int, int] | None:
        """(min, max) number of choices per example, or None for a generative-only task."""
        counts = [len(ex.choices) for ex in self.examples if ex.choices]
        return (min(counts), max(counts)) if counts else None

    @cached_property
    def chance_multiple_choice_grade(self) -> float | None:
        """BIG-bench's low score for multiple choice over the whole task (`chance_grade`)."""
        if not self.has_choices:
            return None
        return chance_grade(ex.target_scores for ex in self.examples)


def chance_grade(target_scores: Iterable[Sequence[float]]) -> float | None:
    """BIG-bench's low score for multiple choice: mean over examples of mean target score
    (None without examples). The task's chance line and the metric's chance level are both
    this function."""
    means = [np.mean(scores) for scores in target_scores]
    return float(np.mean(means)) if means else None


@dataclass(frozen=True)
class Prompt:
    """One query as a model sees it: the exact prompt string and what is scored after it."""

    task: str
    idx: int  # the query's index in its task.json
    text: str
    choices: tuple[str, ...]
    target_scores: tuple[float, ...]
    targets: tuple[str, ...]
    shots: int
    shot_idxs: tuple[int, ...]
    # With relabelled demonstrations: what a model that follows them would answer here.
    demo_target: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The `harness prompts` record."""
        record = {"task": self.task, "idx": self.idx, "prompt": self.text,
                  "choices": list(self.choices), "targets": list(self.targets)}
        if self.demo_target is not None:
            record["demo_target"] = self.demo_target
        return record


# --------------------------------------------------------------------------------------
# Loading and validation


def _fail(path: Path, what: str, fix: str = "") -> HarnessError:
    message = f"{path}: {what}"
    return HarnessError(f"{message}; {fix}" if fix else message)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _fail(path, f"cannot read task file ({exc.strerror})",
                    "check the path and its permissions") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(path, f"not UTF-8 (bad byte at offset {exc.start})",
                    "task files must be UTF-8 JSON") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(path, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                    "fix the JSON syntax") from None
    if not isinstance(data, dict):
        raise _fail(path, "top level is not a JSON object", "a task file is one object")
    return data


def _check_regex(path: Path, regex: str) -> None:
    try:
        compiled = re.compile(regex)
    except re.error as exc:
        raise _fail(path, f"field 'output_regex': invalid regular expression ({exc})",
                    "fix the pattern") from None
    # BIG-bench takes `re.findall(regex, text)[0]`: with one group that is the group's text
    # (what `extract_answer` returns too); with more it is a tuple, which BIG-bench asserts on.
    if compiled.groups > 1:
        raise _fail(path, f"field 'output_regex': has {compiled.groups} capturing groups, so "
                    "BIG-bench's first-match rule returns tuples (its own code stops there)",
                    "use at most one capturing group, others non-capturing (?:...)")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _numeric_key(value: Any) -> Any:
    """Map a formatted example to a JSON-able value whose equality is Python's `==`."""
    if isinstance(value, dict):
        return {str(k): _numeric_key(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numeric_key(v) for v in value]
    if isinstance(value, (bool, int, float)):
        return float(value)
    return value


@cache
def _shown_order(seed: int, n_choices: int) -> tuple[int, ...]:
    """The order in which BIG-bench shows `n_choices` sorted choices.

    BIG-bench permutes them with a fresh `RandomState(seed)` per example, so the order
    depends on the count only (permuting a length-n array draws exactly what permuting
    range(n) draws). Cached: building a RandomState per example was two thirds of the load
    time of a 57k-example task.
    """
    return tuple(int(i) for i in np.random.RandomState(seed).permutation(n_choices))


def _format_example(path: Path, idx: int, raw: Any, fmt: dict[str, Any], seed: int,
                    needs_target: bool, needs_scores: bool) -> Example:
    where = f"example {idx}"
    if not isinstance(raw, dict):
        raise _fail(path, f"{where}: not a JSON object", "each example is an object with "
                    "'input' and 'target' or 'target_scores'")
    if not isinstance(raw.get("input"), str):
        raise _fail(path, f"{where}: field 'input' missing or not a string",
                    "give each example an 'input' string")
    if "target" not in raw and "target_scores" not in raw:
        raise _fail(path, f"{where}: has neither 'target' nor 'target_scores'",
                    "give a 'target' string (or list) or a 'target_scores' object")
    if needs_target and "target" not in raw:
        raise _fail(path, f"{where}: field 'target' missing, required by the task's "
                    "generative/scoring metrics", "add a 'target'")
    if needs_scores and "target_scores" not in raw:
        raise _fail(path, f"{where}: field 'target_scores' missing, required by the task's "
                    "multiple-choice metrics", "add 'target_scores'")

    sample = json.loads(json.dumps(raw))  # private copy; BIG-bench mutates its samples
    choices: tuple[str, ...] = ()
    scores: tuple[float, ...] = ()
    if "target_scores" in sample:
        table = sample["target_scores"]
        if not isinstance(table, dict) or not table:
            raise _fail(path, f"{where}: field 'target_scores' is not a non-empty object",
                        "map each choice string to a number")
        for choice, score in table.items():
            if not _is_number(score):
                raise _fail(path, f"{where}: field 'target_scores' value for {choice!r} is "
                            f"{score!r}, not a finite number", "use numbers such as 0 and 1")
        best, worst = max(table.values()), min(table.values())
        # BIG-bench checks this only where the target must come from the scores (one 1.0.0
        # example gives a 'target' with an all-zero 'target_scores': it loads there, so here)
        if "target" not in sample and (
                (len(table) == 1 and best == 0) or (len(table) > 1 and best <= worst)):
            raise _fail(path, f"{where}: field 'target_scores' marks no choice as correct",
                        "give the correct choice(s) a higher score than the others")
        if fmt["append_choices"]:
            ordered = sorted(table.keys())
            shown = [ordered[i] for i in _shown_order(seed, len(ordered))]
            sample["input"] = sample["input"] + fmt["choice_prefix"] + fmt["choice_prefix"].join(
                shown)
        if "target" not in sample:
            sample["target"] = [k for k, v in table.items() if v == best][0]
        sample["choice"] = list(table.keys())
        choices = tuple(table.keys())
        scores = tuple(float(v) for v in table.values())

    sample["input"] = fmt["input_prefix"] + sample["input"] + fmt["output_prefix"]
    target = sample["target"]
    if not isinstance(target, list):
        target = [target]
    if not target or not all(isinstance(t, str) for t in target):
        raise _fail(path, f"{where}: field 'target' must be a string or a non-empty list of "
                    "strings", "quote numeric targets as strings")
    sample["target"] = target
    return Example(idx=idx, raw_input=raw["input"], input=sample["input"],
                   targets=tuple(target), choices=choices, target_scores=scores,
                   value_key=json.dumps(_numeric_key(sample), sort_keys=True))


def _check_task_fields(path: Path, data: dict[str, Any]) -> bool:
    """Validate a leaf task's own fields; return its `append_choices_to_input` as BIG-bench
    reads it."""
    for key in REQUIRED_KEYS_WITH_EXAMPLES:
        if key not in data:
            raise _fail(path, f"field {key!r} missing", f"a task with examples needs {key!r}")
    metrics = data["metrics"]
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise _fail(path, "field 'metrics' is not a list of strings")
    unknown = [m for m in metrics if m not in KNOWN_METRICS]
    if unknown:
        raise _fail(path, f"field 'metrics': unsupported metric(s) {unknown}",
                    f"BIG-bench JSON tasks support {sorted(KNOWN_METRICS)}")
    if data["preferred_score"] not in KNOWN_METRICS and data["preferred_score"] not in (
            "rouge1", "rouge2", "rougeLsum"):
        raise _fail(path, f"field 'preferred_score': unknown metric {data['preferred_score']!r}")
    for key in STRING_KEYS:
        if key in data and not isinstance(data[key], str):
            raise _fail(path, f"field {key!r} is not a string")
    if "absolute_normalization" in data and not isinstance(data["absolute_normalization"], bool):
        raise _fail(path, "field 'absolute_normalization' is not true/false")
    append_choices = data.get("append_choices_to_input", True)
    if not isinstance(append_choices, bool):
        # BIG-bench tests the value's truth (`if append_choices_to_input:`), so the string
        # "false" in four 1.0.0 tasks appends the choices; we render what BIG-bench renders.
        log.warning("%s: field 'append_choices_to_input' is %r, not true/false; taken as %s, "
                    "as BIG-bench does", path, append_choices, bool(append_choices))
        append_choices = bool(append_choices)
    if "output_regex" in data:
        _check_regex(path, data["output_regex"])
    if not isinstance(data["examples"], list) or not data["examples"]:
        raise _fail(path, "field 'examples' is not a non-empty list")
    return append_choices


def _load_leaf(path: Path, name: str, data: dict[str, Any], sha256: str, seed: int) -> Task:
    append_choices = _check_task_fields(path, data)
    metrics, examples = data["metrics"], data["examples"]
    fmt = {
        "input_prefix": data.get("example_input_prefix", DEFAULT_INPUT_PREFIX),
        "output_prefix": data.get("example_output_prefix", DEFAULT_OUTPUT_PREFIX),
        "choice_prefix": data.get("choice_prefix", DEFAULT_CHOICE_PREFIX),
        "append_choices": append_choices,
    }
    metric_set = set(metrics)
    needs_target = bool(metric_set & (GENERATIVE_METRICS | SCORING_METRICS))
    needs_scores = bool(metric_set & MULTIPLE_CHOICE_METRICS)

    # BIG-bench drops duplicate examples (same JSON serialisation), keeping order; `idx`
    # stays the position in the file.
    seen: set[str] = set()
    formatted = []
    for idx, raw in enumerate(examples):
        serial = json.dumps(raw)
        if serial in seen:
            continue
        seen.add(serial)
        formatted.append(_format_example(path, idx, raw, fmt, seed, needs_target, needs_scores))
    dropped = len(examples) - len(formatted)
    if dropped:
        log.warning("%s: dropped %d duplicate examples, as BIG-bench does", path, dropped)

    output_regex = data.get("output_regex")
    stop_string = data.get("stop_string")
    if output_regex is None and stop_string is None:
        output_regex = DEFAULT_REGEX
    return Task(
        name=name, path=path, sha256=sha256, description=str(data["description"]),
        metrics=tuple(metrics), preferred_score=data["preferred_score"],
        output_regex=output_regex, stop_string=stop_string,
        task_prefix=str(data.get("task_prefix", "")),
        few_shot_example_separator=data.get("few_shot_example_separator", DEFAULT_SEPARATOR),
        append_choices_to_input=fmt["append_choices"],
        absolute_normalization=data.get("absolute_normalization", False),
        examples=tuple(formatted), n_duplicates_dropped=dropped,
    )


def load_task_file(path: Path, name: str, seed: int = SEED) -> list[Task]:
    """Load one task.json; a container (no `examples`) yields its subtasks, sorted by path."""
    data = _read_json(path)
    for key in REQUIRED_KEYS:
        if key not in data:
            raise _fail(path, f"field {key!r} missing", f"every BIG-bench task has {REQUIRED_KEYS}")
    if "examples" in data:
        sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        return [_load_leaf(path, name, data, sha256, seed)]
    subtask_files = sorted(str(p) for p in path.parent.glob("*/task.json"))
    if not subtask_files:
        raise _fail(path, "has no 'examples' and no sub-folders with a task.json",
                    "a task needs examples or subtasks")
    tasks = []
    for sub in subtask_files:
        sub_path = Path(sub)
        tasks.extend(load_task_file(sub_path, f"{name}/{sub_path.parent.name}", seed))
    return tasks


PROGRAMMATIC_LIST = "PROGRAMMATIC.txt"  # written by scripts/fetch_bigbench_tasks.py --all


def _tasks_root(tasks_dir: Path | None) -> Path:
    root = Path(tasks_dir).expanduser() if tasks_dir else default_tasks_dir()
    if not root.is_dir():
        raise HarnessError(f"task folder {root} does not exist; pass --tasks-dir DIR (or set "
                           "HARNESS_TASKS_DIR), or run scripts/fetch_bigbench_tasks.py")
    return root


def available_tasks(tasks_dir: Path | None = None) -> list[str]:
    """Names of the top-level JSON tasks under `tasks_dir` (default: the bundled ones)."""
    root = _tasks_root(tasks_dir)
    own = _project_tasks() if root == default_tasks_dir() else []  # beside the bundled ones
    return sorted(p.parent.name for p in root.glob("*/task.json")) + own


def programmatic_tasks(tasks_dir: Path | None = None) -> list[str]:
    """Top-level tasks under `tasks_dir` that are Python code (a task.py, no task.json), plus
    those the fetch script listed in PROGRAMMATIC.txt. They are skipped: the harness never
    imports or runs code from a task folder."""
    root = _tasks_root(tasks_dir)
    names = {p.parent.name for p in root.glob("*/task.py")
             if not (p.parent / "task.json").exists()}
    listed = root / PROGRAMMATIC_LIST
    if listed.is_file():
        names |= {line.strip() for line in listed.read_text(encoding="utf-8").splitlines()
                  if line.strip()}
    return sorted(names)


def _programmatic_error(what: str) -> HarnessError:
    return HarnessError(f"{what} is a programmatic BIG-bench task (task.py, no task.json); "
                        "only JSON tasks are supported: the harness never imports or runs code "
                        "from a task folder")


def _path_task(spec: str) -> tuple[Path, str]:
    """(task file, task name) for a `--tasks` entry that is a path: a task.json (or any
    .json file) or a folder holding a task.json. A subtask file keeps its container's name
    in front ("arithmetic/3_digit_addition"), as the bundled names do."""
    path = Path(spec).expanduser()
    if path.is_dir():
        if (path / "task.json").is_file():
            path = path / "task.json"
        elif (path / "task.py").is_file():
            raise _programmatic_error(str(path))
        else:
            raise HarnessError(f"{path}: folder has no task.json; name a BIG-bench task folder "
                               "or its task.json (for a folder of tasks, use --tasks-dir)")
    elif not path.is_file():
        raise HarnessError(f"unknown task {spec!r}: not a task name and no such file or folder")
    if path.name != "task.json":
        return path, path.stem
    name = path.parent.name
    if (path.parent.parent / "task.json").is_file():
        name = f"{path.parent.parent.name}/{name}"
    return path, name


def _split_variant(spec: str) -> tuple[str, Variant | None]:
    """'arithmetic@scratchpad' -> ('arithmetic', VARIANTS['scratchpad']); an existing path
    that happens to hold an '@' is a path."""
    if "@" not in spec or Path(spec).expanduser().exists():
        return spec, None
    name, _, variant_name = spec.rpartition("@")
    if variant_name not in VARIANTS:
        raise HarnessError(f"unknown task variant {variant_name!r} in {spec!r}; variants: "
                           f"{', '.join(VARIANTS)}")
    return name, VARIANTS[variant_name]


def _looks_like_path(spec: str) -> bool:
    return (spec.endswith(".json") or spec.startswith(("/", ".", "~"))
            or Path(spec).expanduser().exists())


def _named_task(name: str, root: Path) -> Path:
    """The task.json of a task named relative to the tasks folder, or a clear error."""
    path = _task_file(root, name)
    if path.is_file():
        return path
    top, _, sub = name.partition("/")
    if top in programmatic_tasks(root) or (root / name / "task.py").is_file():
        raise _programmatic_error(f"{name!r} (in {root})")
    known = available_tasks(root)
    if top in known and sub:
        subs = sorted(p.parent.name for p in (root / top).glob("*/task.json"))
        raise HarnessError(f"unknown subtask {name!r}; {top} has: {', '.join(subs)}")
    raise HarnessError(f"unknown task {name!r}; available: {', '.join(known)} (in {root}; "
                       "a subtask is written task/subtask; a path to a task.json also works)")


def load_tasks(names: str | Iterable[str], tasks_dir: Path | None = None,
               seed: int = SEED) -> list[Task]:
    """Resolve `--tasks` entries to tasks: names under `tasks_dir` ('arithmetic',
    'arithmetic/3_digit_addition', 'arithmetic@scratchpad', comma lists) or paths to a
    BIG-bench task.json or task folder (a container yields its subtasks)."""
    root = _tasks_root(tasks_dir)
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    names = [n.strip() for n in names]
    if not names:
        raise HarnessError(f"no task given; choose from {', '.join(available_tasks(root))}")
    tasks: list[Task] = []
    for spec in names:
        target, variant = _split_variant(spec)
        name = target.strip("/")
        if (root / name / "task.json").is_file() or not _looks_like_path(target):
            path = _named_task(name, root)
        else:
            path, name = _path_task(target)
        loaded = load_task_file(path, name, seed)
        if variant is not None:
            loaded = [replace(t, name=f"{t.name}@{variant.name}", output_regex=variant.output_regex,
                              stop_string=None, variant=variant) for t in loaded]
        tasks.extend(loaded)
    unique = {t.name: t for t in tasks}
    return list(unique.values())


# --------------------------------------------------------------------------------------
# Rendering


def check_shots_and_limit(task: Task, shots: int, limit: int | None) -> None:
    if shots < 0:
        raise HarnessError(f"--shots {shots} is negative; use 0 or more")
    if limit is not None and limit < 1:
        raise HarnessError(f"--limit {limit} must be 1 or more (leave it out for all examples)")
    available = len(task.examples) - 1
    if shots > available:
        raise HarnessError(f"--shots {shots} is too many for {task.name}: it has "
                           f"{len(task.examples)} examples, so at most {available} shots")


def render(task: Task, shots: int, limit: int | None = None, seed: int = SEED,
           relabel: Callable[[Example], str] | None = None) -> list[Prompt]:
    """The prompts BIG-bench's JsonTask gives a model, in BIG-bench's query order.

    `limit` is BIG-bench's `max_examples` for this (sub)task: the first `limit` queries of
    the same random draw, with prompts identical to BIG-bench's for those queries.
    `relabel` replaces each demonstration's answer (harness.demos: flipped or unrelated
    labels); the random draws are unchanged, so the same demonstrations are chosen.
    """
    check_shots_and_limit(task, shots, limit)
    examples = task.examples
    n = len(examples)
    n_queries = n if limit is None else min(limit, n)
    rng = np.random.RandomState(seed)
    if shots == 0:
        order = range(n) if n_queries >= n else rng.choice(n, n_queries, replace=False)
    else:
        order = rng.choice(n, n_queries, replace=False)

    prompts = []
    sep = task.few_shot_example_separator
    for position in order:
        query = examples[int(position)]
        shot_idxs: list[int] = []
        context = ""
        if shots:
            candidates = [ex for ex in examples if ex.value_key != query.value_key]
            drawn = rng.choice(len(candidates), shots, replace=False)
            shot_examples = [candidates[int(i)] for i in drawn]
            # One answer per shot, drawn in shot order (a single target draws nothing).
            answers = [ex.targets[int(rng.choice(len(ex.targets)))] for ex in shot_examples]
            if relabel is not None:
                answers = [relabel(ex) for ex in shot_examples]
            answered = [ex.input + answer for ex, answer in zip(shot_examples, answers)]
            context = sep.join(answered) + sep
            shot_idxs = [ex.idx for ex in shot_examples]
        prompts.append(Prompt(
            task=task.name, idx=query.idx, text=task.task_prefix + context + query.input,
            choices=query.choices, target_scores=query.target_scores, targets=query.targets,
            shots=shots, shot_idxs=tuple(shot_idxs),
            demo_target=relabel(query) if relabel is not None else None,
        ))
    return prompts
