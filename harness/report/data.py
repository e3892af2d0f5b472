"""What the report shows, gathered from a results folder: runs, grouped into series. No plotting.

A *run* is one summary.json (one model checkpoint on one task at one shot count). Runs of one
(task, shots, demonstration labels) form a *block*; inside a block runs are grouped by family
(the sweep index's "family"; "other" when a model has none, e.g. a hub id), and a group never
mixes dtypes or boundary conventions ("pythia+bfloat16" is its own group). Each group gives
  * one size series: every model of the group at its final training step, ordered along the
    report's x axis (`harness.report.axes`: parameters, training compute or held-out loss; a
    model without a value there is left out and named in `Block.left_out`; when all sizes share
    the final step the series says which one);
  * one step series per model with two or more training steps, ordered by step.
A series of one point is shown in tables and drawn as a marker, never analysed.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from harness.emergence import Estimate, split_seed
from harness.errors import HarnessError
from harness.index import is_heldout_loss
from harness.metrics import METRICS
from harness.report.axes import ScaleAxis, scale_axis
from harness.results import SCORES_FILE, read_scores
from harness.scale import training_compute

OTHER = "other"  # the group of models that belong to no family

# The metrics drawn as panels, by family (rows of a figure); the verdict weighs these.
PANELS: dict[str, tuple[str, ...]] = {
    "exact match": ("exact_str_match", "exact_match_raw", "case_insensitive_str_match"),
    "multiple choice": ("multiple_choice_grade", "multiple_choice_grade_norm"),
    "log-likelihood": ("target_logprob", "target_logprob_per_token", "correct_choice_prob"),
    "partial credit": ("digit_accuracy", "token_edit_distance"),
}
PANEL_METRICS: tuple[str, ...] = tuple(name for names in PANELS.values() for name in names)


@dataclass(frozen=True, eq=False)
class Run:
    """One summary.json, with the sweep index's family information beside it."""

    folder: Path  # absolute run folder
    rel_dir: str  # the folder relative to the results root, as in the index's run_dir
    model: str
    revision: str
    family: str | None
    step: int | None
    tokens_seen: int | None
    total_params: int
    non_embedding_params: int
    dtype: str
    boundary: str
    task: str
    shots: int
    demo_labels: str
    n: int
    summary: dict[str, Any]
    heldout_bpb: float | None = None  # bits per byte of the same weights (`index.join_heldout_loss`)
    heldout_task: str | None = None  # the text it was measured on: loss/<family>-corpus or loss/reference

    @property
    def training_compute(self) -> float | None:
        """6·N·D FLOPs (`harness.scale.training_compute`); None where the tokens seen are unknown."""
        return training_compute(self.non_embedding_params, self.tokens_seen)

    @property
    def metrics(self) -> dict[str, dict[str, Any]]:
        return self.summary.get("metrics", {})

    @property
    def group(self) -> str:
        """The family, or "other", qualified by a non-default dtype or boundary."""
        name = self.family or OTHER
        if self.dtype != "float32":
            name += f"+{self.dtype}"
        if self.boundary != "natural":
            name += f"+{self.boundary}-boundary"
        return name

    @property
    def label(self) -> str:
        """'pythia-70m@step1000' (what a table row and a series point are called)."""
        return f"{self.model}@{self.revision}"

    def params(self, key: str = "params") -> int:
        """Total parameters for "total", else non-embedding ones (what orders runs on any axis)."""
        return self.total_params if key == "total" else self.non_embedding_params

    def mean(self, metric: str) -> float:
        """The summary's mean of `metric`, NaN when the run has none."""
        entry = self.metrics.get(metric)
        value = None if entry is None else entry.get("mean")
        return math.nan if value is None else float(value)


@dataclass(frozen=True)
class Series:
    """Runs of one group along one scale axis, sorted by `x`: training step, or for a size series
    the position on the report's x axis (parameters, FLOPs, or 1/bits per byte: `ScaleAxis.x`)."""

    kind: Literal["size", "step"]
    group: str
    name: str  # legend label: "mini (step120)", "mini-56k"
    title: str  # sentence label: "mini sizes at step120", "mini-56k over training steps"
    runs: tuple[Run, ...]
    x: tuple[float, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(run.label for run in self.runs)


@dataclass(frozen=True)
class Block:
    """Every run of one (task, shots, demonstration labels), with its series."""

    task: str
    shots: int
    demo_labels: str
    runs: tuple[Run, ...]
    size_series: tuple[Series, ...]
    step_series: tuple[Series, ...]
    left_out: tuple[str, ...] = ()  # notes naming the models without a position on the x axis

    @property
    def setting(self) -> str:
        """'0-shot' or '3-shot, flipped labels'."""
        text = f"{self.shots}-shot"
        return text if self.demo_labels == "true" else f"{text}, {self.demo_labels} labels"

    @property
    def slug(self) -> str:
        """File-name part: 'arithmetic-2_digit_addition-shots0'."""
        labels = "" if self.demo_labels == "true" else f"-{self.demo_labels}"
        return f"{slugify(self.task)}-shots{self.shots}{labels}"

    @property
    def top_task(self) -> str:
        """'arithmetic' for 'arithmetic/2_digit_addition@scratchpad'."""
        return self.task.split("/")[0].split("@")[0]

    def metrics(self) -> list[str]:
        """Metrics with a value in some run, in the order of harness.metrics.METRICS."""
        present = {name for run in self.runs for name, entry in run.metrics.items()
                   if entry.get("mean") is not None}
        return [name for name in METRICS if name in present] + sorted(present - set(METRICS))


def slugify(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in text).strip("-")


# --------------------------------------------------------------------------------------
# Loading


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise HarnessError(f"{path} is unreadable ({exc}); run `harness rescore {path.parent}` to "
                           "rebuild it") from None


def load_runs(results_dir: Path) -> list[Run]:
    """Every run under `results_dir`/runs, with what the index would say of it (`harness.index.row`,
    from the summary alone: the report writes no index): family, step, tokens seen and held-out
    bits per byte, joined from the same weights' loss run by `harness.index.join_heldout_loss`."""
    from harness.index import join_heldout_loss, row

    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise HarnessError(f"no results folder {results_dir}; run `harness eval` or `harness sweep` "
                           "first, or name the folder that holds runs/")
    paths = sorted((results_dir / "runs").rglob("summary.json"))
    if not paths:
        raise HarnessError(f"no summaries (runs/**/summary.json) under {results_dir}; run `harness "
                           "eval` or `harness sweep` with --out pointing there first")
    summaries, records = [], []
    for path in paths:
        summary = _read_json(path)
        try:
            records.append(row(summary, path.parent.relative_to(results_dir).as_posix()))
        except (KeyError, TypeError, AttributeError) as exc:
            raise _lacks(path, exc) from None
        summaries.append((path, summary))
    return [_run(path, summary, record)
            for (path, summary), record in zip(summaries, join_heldout_loss(records))]


def _lacks(path: Path, exc: Exception) -> HarnessError:
    return HarnessError(f"{path} lacks a field the report needs ({exc}); run `harness rescore "
                        f"{path.parent}` to rebuild it")


def _run(path: Path, summary: dict[str, Any], record: dict[str, Any]) -> Run:
    """A Run from its summary and its index row (`harness.index.row`, losses joined)."""
    try:
        return Run(
            folder=path.parent, rel_dir=record["run_dir"], model=record["model"],
            revision=record["revision"], family=record.get("family"), step=record.get("step"),
            tokens_seen=record.get("tokens_seen"), total_params=int(record["total_params"]),
            non_embedding_params=int(record["non_embedding_params"]), dtype=record["dtype"],
            boundary=record["boundary"], task=record["task"], shots=int(record["shots"]),
            demo_labels=record["demo_labels"], n=int(record["n"]), summary=summary,
            heldout_bpb=record.get("heldout_bpb"), heldout_task=record.get("heldout_task"))
    except (KeyError, TypeError, ValueError) as exc:
        raise _lacks(path, exc) from None


# --------------------------------------------------------------------------------------
# Grouping


def _by(items: Iterable[Run], key) -> dict[Any, list[Run]]:
    groups: dict[Any, list[Run]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


def _final(runs: Sequence[Run]) -> Run:
    """The latest checkpoint: highest step; a revision without a step (e.g. 'main') counts as last."""
    return max(runs, key=lambda run: (run.step is None, run.step or 0, run.revision))


def loss_text(runs: Sequence[Run]) -> str | None:
    """The held-out text most of the runs with a held-out loss were measured on (ties: by name);
    None when none has one. Bits per byte on different texts do not compare."""
    texts = Counter(run.heldout_task for run in runs if run.heldout_bpb is not None)
    return max(texts, key=lambda t: (texts[t], str(t))) if texts else None


def _placed(group: str, finals: Sequence[Run], axis: ScaleAxis) -> tuple[list[Run], tuple[str, ...]]:
    """The checkpoints with a position on `axis`, sorted by it, and notes naming those left out.

    Bits per byte measured on different texts do not compare: on the loss axis a series keeps
    the text most of its models were measured on."""
    placed = [run for run in finals if axis.x(run) is not None]
    notes = []
    missing = sorted(run.label for run in finals if axis.x(run) is None)
    if missing:
        notes.append(f"{group}: {', '.join(missing)} left out of the size series: {axis.missing}")
    texts = Counter(run.heldout_task for run in placed) if axis.key == "loss" else Counter()
    if len(texts) > 1:
        text = loss_text(placed)
        other = sorted(run.label for run in placed if run.heldout_task != text)
        placed = [run for run in placed if run.heldout_task == text]
        notes.append(f"{group}: {', '.join(other)} left out of the size series: held-out loss measured "
                     f"on another text than {text} (bits per byte on different texts do not compare)")
    return sorted(placed, key=lambda run: (axis.x(run), run.model)), tuple(notes)


def seed_number(model: str) -> int:
    """A model's seed token (`pico-s2-56k`: 2; -1 for the unseeded model), for ordering seeds."""
    seed = split_seed(model)[1]
    return -1 if seed is None else seed


def _one_per_seed_group(models: dict[str, list[Run]]) -> dict[str, list[Run]]:
    """The models that stand for their seed group (`pico-56k`, `pico-s2-56k`, ...): the unseeded
    one, else the lowest seed. The others are its band (harness.report.analysis.seed_view)."""
    chosen: dict[str, str] = {}
    for model in sorted(models, key=seed_number):
        chosen.setdefault(split_seed(model)[0], model)
    return {model: models[model] for model in models if model in chosen.values()}


def _size_series(group: str, runs: Sequence[Run], axis: ScaleAxis) -> tuple[Series | None, tuple[str, ...]]:
    """The group's size series on `axis` (None when no model has a position on it), and notes
    naming the models left out."""
    models = _one_per_seed_group(_by(runs, lambda r: r.model))
    finals, notes = _placed(group, [_final(same) for same in models.values()], axis)
    if not finals:
        return None, notes
    steps = {run.revision for run in finals}
    if len(finals) == 1:
        name, title = finals[0].label, finals[0].label
    elif group.startswith(OTHER):
        name, title = f"{group} (no family)", f"{group} models (no family)"
    elif len(steps) == 1 and len(finals) > 1:
        name, title = f"{group} ({finals[0].revision})", f"{group} sizes at {finals[0].revision}"
    else:
        name, title = group, f"{group} sizes, each at its final checkpoint"
    if axis.key == "loss":  # groups may be measured on different texts: the legend says which
        name += f", bits per byte on {finals[0].heldout_task}"
    return Series("size", group, name, title, tuple(finals),
                  tuple(float(axis.x(run)) for run in finals)), notes  # type: ignore[arg-type]


def _step_series(group: str, model: str, runs: Sequence[Run]) -> Series | None:
    by_step: dict[int, Run] = {}
    for run in sorted(runs, key=lambda r: r.revision, reverse=True):  # 'main' before 'step143000'
        if run.step is not None:
            by_step[run.step] = run
    if len(by_step) < 2:
        return None
    ordered = tuple(by_step[step] for step in sorted(by_step))
    qualifier = group[len(ordered[0].family or OTHER):]  # "+bfloat16" etc.
    name = f"{model}{qualifier}"
    return Series("step", group, name, f"{name} over training steps", ordered,
                  tuple(float(run.step) for run in ordered))  # type: ignore[arg-type]


def build_blocks(runs: Sequence[Run], x_axis: str | ScaleAxis = "params") -> list[Block]:
    """Runs grouped into blocks (task, shots, labels) and series, in a stable order; size series
    along `x_axis` (`harness.report.axes`), leaving out the models without a position on it.

    Held-out loss runs are left out: they measure a model's scale (the index joins them as
    `heldout_bpb`, an x axis here), not an ability whose emergence is judged."""
    axis = x_axis if isinstance(x_axis, ScaleAxis) else scale_axis(x_axis)  # unknown: one clear error
    keyed = _by([r for r in runs if not is_heldout_loss(r.task)],
                lambda r: (r.task, r.shots, r.demo_labels))
    return [_block(key, block_runs, axis)
            for key, block_runs in sorted(keyed.items(), key=lambda kv: _task_order(kv[0]))]


def _block(key: tuple[str, int, str], block_runs: Sequence[Run], axis: ScaleAxis) -> Block:
    groups = _by(block_runs, lambda r: r.group)
    names = sorted(groups, key=lambda g: (g.startswith(OTHER), g))
    size_series, left_out = [], []
    for g in names:
        series, notes = _size_series(g, groups[g], axis)
        size_series += [series] if series is not None else []
        left_out += notes
    step_series = []
    for g in names:
        models = _one_per_seed_group(_by(groups[g], lambda r: r.model))
        for model in sorted(models, key=lambda m: (models[m][0].params(axis.key), m)):
            step = _step_series(g, model, models[model])
            step_series += [step] if step is not None else []
    ordered = tuple(sorted(block_runs, key=lambda r: (r.group.startswith(OTHER), r.group, r.params(axis.key),
                                                      r.model, r.step or 0, r.revision)))
    return Block(*key, ordered, tuple(size_series), tuple(step_series), tuple(left_out))


_OPERATIONS = ("addition", "subtraction", "multiplication", "division")


def detail_blocks(blocks: Sequence[Block]) -> set[str]:
    """Slugs of the blocks drawn in full (every metric, reliability diagrams): per task, the
    fewest shots with true labels (or, without true labels, the fewest shots). The other
    settings of a task are drawn where they are compared (the shots and relabelling
    sections, the subtask overviews) and listed in full in the tables; a report of every
    setting x subtask x metric would run to hundreds of figures.
    """
    best: dict[str, tuple[bool, int]] = {}
    for block in blocks:
        key = (block.demo_labels != "true", block.shots)
        best[block.task] = min(best.get(block.task, key), key)
    return {b.slug for b in blocks if (b.demo_labels != "true", b.shots) == best[b.task]}


def _task_order(key: tuple[str, int, str]) -> tuple:
    """Arithmetic subtasks by operation then digits ('2_digit_addition' before '1_digit_subtraction')."""
    task, shots, labels = key
    top, _, sub = task.partition("/")
    sub_name = sub.split("@")[0]
    digits, _, operation = sub_name.partition("_digit_")
    if digits.isdigit() and operation in _OPERATIONS:
        return (top, _OPERATIONS.index(operation), int(digits), task, shots, labels)
    return (top, 99, 0, task, shots, labels)


# --------------------------------------------------------------------------------------
# Per-example scores, aligned across runs


class ScoreCache:
    """Each run's per-example scores as stored at scoring time (scores.json.gz), read once.

    The report never scores: `harness rescore` is the one way to update these. A run that kept
    neither examples nor scores (summaries only) has no examples here, and its statistics say
    "no CI"; a run that kept its examples but has no stored scores was scored before scores were
    stored, and is an error that names `harness rescore`.
    """

    def __init__(self) -> None:
        self._tables: dict[Path, dict[str, np.ndarray]] = {}
        self._positions: dict[Path, dict[int, int]] = {}

    def table(self, run: Run) -> dict[str, np.ndarray]:
        """Columns: "idx" and every stored score; empty columns for a summaries-only run."""
        if run.folder not in self._tables:
            if (run.folder / SCORES_FILE).exists() or _has_examples(run.folder):
                table = read_scores(run.folder)
            else:
                table = {"idx": np.zeros(0, dtype=np.int64)}
            self._tables[run.folder] = table
            # a repeated idx keeps its last row, as the runner's resume does
            self._positions[run.folder] = {int(i): row for row, i in enumerate(table["idx"])}
        return self._tables[run.folder]

    def idxs(self, run: Run) -> set[int]:
        """Example indices the run has scores for."""
        self.table(run)
        return set(self._positions[run.folder])

    def column(self, run: Run, name: str, idxs: Sequence[int]) -> np.ndarray:
        """One score for the examples `idxs` (NaN where the run has no such score)."""
        table = self.table(run)
        values = table.get(name)
        if values is None:
            return np.full(len(idxs), math.nan)
        positions = self._positions[run.folder]
        return values[np.array([positions[i] for i in idxs], dtype=np.int64)]

    def all_rows(self, run: Run, name: str) -> np.ndarray:
        """One score for every example of the run (each idx once)."""
        return self.column(run, name, sorted(self.idxs(run)))


def _has_examples(folder: Path) -> bool:
    return (folder / "examples.jsonl").exists() or (folder / "examples.jsonl.gz").exists()


def common_examples(cache: ScoreCache, runs: Sequence[Run]) -> list[int]:
    """Example indices that every run has scores for, sorted."""
    common: set[int] | None = None
    for run in runs:
        idxs = cache.idxs(run)
        common = idxs if common is None else common & idxs
    return sorted(common or ())


def score_matrix(cache: ScoreCache, runs: Sequence[Run], metric: str, idxs: Sequence[int]) -> np.ndarray:
    """(n_runs, n_examples) per-example values of a per-example metric, examples aligned by idx."""
    if not runs:
        return np.zeros((0, len(idxs)))
    return np.vstack([cache.column(run, metric, idxs) for run in runs]).astype(np.float64)


# --------------------------------------------------------------------------------------
# Summary values and sub-series (what several sections read)


def summary_value(run: Run, metric: str) -> Estimate:
    """A summary's mean and 95% CI of `metric` (NaN where the run has none)."""
    entry = run.metrics.get(metric) or {}

    def get(key: str) -> float:
        value = entry.get(key)
        return math.nan if value is None else float(value)

    return Estimate(get("mean"), get("ci_low"), get("ci_high"))


def has_values(runs: Sequence[Run], metric: str) -> bool:
    return any(not math.isnan(run.mean(metric)) for run in runs)


def size_label(run: Run) -> str:
    """'16k' for pico-16k of family pico (what matches sizes across families); else the model."""
    prefix = f"{run.family}-" if run.family else ""
    return run.model[len(prefix):] if prefix and run.model.startswith(prefix) else run.model


def subseries(series: Series, runs: Sequence[Run], name: str | None = None) -> Series:
    """`series` restricted to `runs` (kept in the series' order)."""
    keep = [i for i, run in enumerate(series.runs) if any(run is other for other in runs)]
    return Series(series.kind, series.group, name or series.name, series.title,
                  tuple(series.runs[i] for i in keep), tuple(series.x[i] for i in keep))
