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
  match of `output_regex` (the default regex when a task gives neither).

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError

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
    return Path(env) if env else Path(__file__).resolve().parents[1] / "tasks" / "bigbench"


# Tasks this repository generates, in BIG-bench's format but not from BIG-bench: kept beside
# tasks/bigbench (whose files stay byte-identical to the sdist) and named by their path under
# tasks/, e.g. "grok/modular_addition" (harness.family.grok_task).
PROJECT_TASKS_DIR = Path(__file__).resolve().parents[1] / "tasks"
PROJECT_TASK_GROUPS = ("grok",)


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
    def is_multiple_choice(self) -> bool:
        return bool(set(self.metrics) & MULTIPLE_CHOICE_METRICS)

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
        """BIG-bench's low score for multiple choice: mean over examples of mean target score."""
        if not self.has_choices:
            return None
        return float(np.mean([np.mean(ex.target_scores) for ex in self.examples]))


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
    if compiled.groups:
        raise _fail(path, "field 'output_regex': has capturing groups, so BIG-bench's "
                    "first-match rule returns tuples", "use non-capturing groups (?:...)")


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
        if (len(table) == 1 and best == 0) or (len(table) > 1 and best <= worst):
            raise _fail(path, f"{where}: field 'target_scores' marks no choice as correct",
                        "give the correct choice(s) a higher score than the others")
        if fmt["append_choices"]:
            rng = np.random.RandomState(seed)  # fresh per example, as BIG-bench does
            shown = rng.permutation(sorted(table.keys()))
            sample["input"] = sample["input"] + fmt["choice_prefix"] + fmt["choice_prefix"].join(
                str(c) for c in shown)
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


def _load_leaf(path: Path, name: str, data: dict[str, Any], sha256: str, seed: int) -> Task:
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
    for key in ("append_choices_to_input", "absolute_normalization"):
        if key in data and not isinstance(data[key], bool):
            raise _fail(path, f"field {key!r} is not true/false")
    if "output_regex" in data:
        _check_regex(path, data["output_regex"])
    examples = data["examples"]
    if not isinstance(examples, list) or not examples:
        raise _fail(path, "field 'examples' is not a non-empty list")

    fmt = {
        "input_prefix": data.get("example_input_prefix", DEFAULT_INPUT_PREFIX),
        "output_prefix": data.get("example_output_prefix", DEFAULT_OUTPUT_PREFIX),
        "choice_prefix": data.get("choice_prefix", DEFAULT_CHOICE_PREFIX),
        "append_choices": data.get("append_choices_to_input", True),
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


def available_tasks(tasks_dir: Path | None = None) -> list[str]:
    """Names of the top-level tasks under `tasks_dir`."""
    root = tasks_dir or default_tasks_dir()
    if not root.is_dir():
        raise HarnessError(f"task folder {root} does not exist; set HARNESS_TASKS_DIR or run "
                           "scripts/fetch_bigbench_tasks.py")
    return sorted(p.parent.name for p in root.glob("*/task.json")) + _project_tasks()


def load_tasks(names: str | Iterable[str], tasks_dir: Path | None = None,
               seed: int = SEED) -> list[Task]:
    """Resolve task names ('arithmetic', 'arithmetic/3_digit_addition', comma lists) to tasks."""
    root = tasks_dir or default_tasks_dir()
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    names = [n.strip().strip("/") for n in names]
    if not names:
        raise HarnessError(f"no task given; choose from {', '.join(available_tasks(root))}")
    tasks: list[Task] = []
    for spec in names:
        name, _, variant_name = spec.partition("@")
        variant = None
        if variant_name:
            if variant_name not in VARIANTS:
                raise HarnessError(f"unknown task variant {variant_name!r} in {spec!r}; variants: "
                                   f"{', '.join(VARIANTS)}")
            variant = VARIANTS[variant_name]
        top, _, sub = name.partition("/")
        path = _task_file(root, name)
        if not path.is_file():
            known = available_tasks(root)
            if top in known and sub:
                subs = sorted(p.parent.name for p in (root / top).glob("*/task.json"))
                raise HarnessError(f"unknown subtask {name!r}; {top} has: {', '.join(subs)}")
            raise HarnessError(f"unknown task {name!r}; available: {', '.join(known)} "
                               "(a subtask is written task/subtask)")
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


def extract_answer(text: str, output_regex: str | None, stop_string: str | None,
                   max_chars: int | None = None) -> tuple[str, bool | None]:
    """BIG-bench's post-processing of a generation (`model_utils.postprocess_output`).

    Optionally cut to `max_chars` characters (BIG-bench's evaluate script passes 30, which
    makes long targets unreachable; off by default here). Then cut after the first
    `stop_string` if it occurs at index > 0 (kept). Then keep the first match of
    `output_regex`, or "" when nothing matches. Returns (answer, whether the regex matched;
    None without a regex), so a no-match is never confused with an empty answer.
    """
    if max_chars:
        text = text[:max_chars]
    if stop_string:
        index = text.find(stop_string)
        if index > 0:
            text = text[: index + len(stop_string)]
    if not output_regex:
        return text, None
    match = re.search(output_regex, text)
    return (match.group(0), True) if match else ("", False)


def postprocess(text: str, output_regex: str | None, stop_string: str | None,
                max_chars: int | None = None) -> str:
    """The answer BIG-bench scores: `extract_answer` without the match flag."""
    return extract_answer(text, output_regex, stop_string, max_chars)[0]


_PROBES = ("0", "7", "a", "Z", " ", ".", "\n")


def answer_is_final(text: str, output_regex: str | None, stop_string: str | None) -> bool:
    """True once generating more text cannot change `postprocess(text, ...)`.

    With a stop string: once it occurs at index > 0 (everything after it is cut). With a
    regex: once its first match is followed by a line break (answers are one line) and
    appending any probe character leaves that first match unchanged (it is closed, and no
    earlier match can appear). Without either, never: generate to the token budget.
    """
    if stop_string:
        return text.find(stop_string) > 0
    if not output_regex:
        return False
    match = re.search(output_regex, text)
    if match is None or "\n" not in text[match.end():]:
        return False
    for probe in _PROBES:
        extended = re.search(output_regex, text + probe)
        if extended is None or extended.span() != match.span():
            return False
    return True
