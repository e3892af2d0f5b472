"""The run plan: every run that eval, sweep, reproduce or a scheduler will execute, decided once.

`plan(settings, points, options)` loads the tasks, checks shots, limits and demonstration
labels, resolves every checkpoint name (nothing is loaded) and renders each (task, shots)
prompt set once; it returns one `RunSpec` per run, in checkpoint x task x shots order.
A `RunSpec` is self-contained: the checkpoint and how to load it, the task, shots, labels,
shot seed, generation settings, its prompts and their resume keys, the run folder and the
run's identity. Whoever executes it (`harness.runner.evaluate_run` with a loaded model,
`harness.sweep.run_checkpoint` for one checkpoint's specs, a Ray task, a Slurm array
element through `--shard`) needs nothing else, and decides nothing again.

A finished run is recognised from its folder alone (`RunSpec.is_finished`): the manifest's
identity against the spec's, and the stored examples against the spec's resume keys; the
model's fingerprints are checked later, by the runner, once the model is loaded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from harness import demos, results
from harness.errors import HarnessError
from harness.locations import portable
from harness.tasks import SEED, Prompt, Task, load_tasks, render

# Generation budget per top-level task, in tokens: arithmetic answers are at most 11
# characters, so 16 tokens leave room for a short preamble ("The answer is 1234"); titles
# and element names get 32. Early stopping ends most generations well before the budget.
MAX_NEW_TOKENS = {"arithmetic": 16}
DEFAULT_MAX_NEW_TOKENS = 32
# What `--dtype` names become once loaded (torch's names): a folder and an identity hold these.
DTYPE_NAMES = {"auto": "float32", "fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


@dataclass(frozen=True)
class GenerationSettings:
    """What shapes a generation; part of the run identity."""

    max_new_tokens: int | None = None  # None: the task's default (MAX_NEW_TOKENS)
    early_stop: bool = True  # stop once the post-processed answer can no longer change
    max_chars: int | None = None  # BIG-bench evaluate-script cut (30); off by default

    def budget(self, task: Task) -> int:
        if self.max_new_tokens is not None:
            return self.max_new_tokens
        if task.variant is not None:
            return task.variant.max_new_tokens
        return MAX_NEW_TOKENS.get(task.name.split("/")[0], DEFAULT_MAX_NEW_TOKENS)

    def to_json(self, task: Task) -> dict[str, Any]:
        return {"max_new_tokens": self.budget(task), "early_stop": self.early_stop,
                "max_chars": self.max_chars}


@dataclass(frozen=True)
class EvalSettings:
    """What to run on each checkpoint, and how to store and score it."""

    tasks: tuple[str, ...] = ("emoji_movie", "periodic_elements", "arithmetic")
    shots: tuple[int, ...] = (0,)
    limit: int | None = None
    out: Path = Path("results")
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    chunk_size: int = 128  # examples per write to examples.jsonl (the resume granularity)
    overwrite: bool = False
    demo_labels: str = "true"  # "flipped" / "unrelated": relabelled demonstrations
    n_boot: int = 1000
    boot_seed: int = 0
    command: str | None = None  # what the user typed, recorded as provenance
    tasks_dir: Path | None = None  # where task names resolve; None: the bundled tasks
    shot_seed: int = SEED  # draws the queries of a --limit and each prompt's demonstrations


@dataclass(frozen=True)
class Point:
    """A checkpoint as the user named it: alias, hub id, folder or .gguf, and revision."""

    model: str
    revision: str | None


@dataclass(frozen=True)
class ModelOptions:
    """How a checkpoint is loaded (the `harness.models.load_model` options)."""

    dtype: str = "auto"
    device: str = "auto"
    batch_size: str = "auto"
    boundary: str = "natural"
    allow_pickle: bool = False

    @property
    def dtype_name(self) -> str:
        """The dtype a run folder and identity name ("auto" loads float32, the reference)."""
        return DTYPE_NAMES.get(self.dtype, self.dtype)


@dataclass(frozen=True)
class Shard:
    """The `index`-th (0-based) of `count` slices of a plan: `--shard i/N`."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        """'3/8' -> Shard(3, 8); 0 <= i < N, as Slurm's $SLURM_ARRAY_TASK_ID/COUNT with
        --array=0-(N-1)."""
        left, slash, right = text.partition("/")
        try:
            shard = cls(int(left), int(right)) if slash else None
        except ValueError:
            shard = None
        if shard is None or shard.count < 1 or not 0 <= shard.index < shard.count:
            raise HarnessError(f"--shard {text!r} is not i/N with 0 <= i < N (e.g. 0/4 ... 3/4)")
        return shard

    def select(self, units: Sequence) -> list:
        """This shard's contiguous block of `units`: blocks differ in size by at most one,
        are disjoint and together are `units`; contiguity keeps a checkpoint's runs in as
        few shards as possible, so each shard loads few models."""
        begin = len(units) * self.index // self.count
        end = len(units) * (self.index + 1) // self.count
        return list(units[begin:end])


def prompt_sha256(prompt: Prompt) -> str:
    """The resume key's second half (with the example's idx): what the model was shown."""
    payload = "\x1f".join([prompt.text, "\x1e".join(prompt.choices), "\x1e".join(prompt.targets)])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def task_record(task: Task) -> dict[str, Any]:
    """The task as a manifest and a summary record it."""
    return {"name": task.name, "sha256": task.sha256, "path": portable(task.path),
            "preferred_score": task.preferred_score, "metrics": list(task.metrics),
            "output_regex": task.output_regex, "stop_string": task.stop_string,
            "n_examples": len(task.examples),
            "chance_multiple_choice_grade": task.chance_multiple_choice_grade}


@dataclass(frozen=True)
class RunSpec:
    """One run: a checkpoint (and how to load it) x a task at one shot count, with settings."""

    point: Point  # what the model loader is given
    model: str  # the resolved name results are filed under
    revision: str  # the resolved revision
    options: ModelOptions
    task: Task
    shots: int
    settings: EvalSettings
    prompts: tuple[Prompt, ...] = field(repr=False, compare=False)

    @property
    def n_examples(self) -> int:
        return len(self.prompts)

    @cached_property
    def resume_keys(self) -> frozenset[tuple[int, str]]:
        """(idx, prompt sha256) of every prompt: how stored records are matched to this run."""
        return frozenset((p.idx, prompt_sha256(p)) for p in self.prompts)

    def model_record(self) -> dict[str, Any]:
        """The model as known before loading (name, revision, dtype, boundary)."""
        return {"name": self.model, "revision": self.revision, "dtype": self.options.dtype_name,
                "boundary": self.options.boundary}

    def folder_for(self, model: dict[str, Any]) -> Path:
        """The run folder of this run on `model` (a loaded model's record, or `model_record`)."""
        return results.run_dir(self.settings.out, model, self.task.name, self.shots,
                               self.settings.demo_labels)

    @property
    def folder(self) -> Path:
        return self.folder_for(self.model_record())

    def identity(self, model: dict[str, Any]) -> dict[str, Any]:
        """The run's identity (its cache key) on a loaded model with these fingerprints."""
        return results.run_identity(model, task_record(self.task), self.shots,
                                    self.settings.generation.to_json(self.task),
                                    self.settings.demo_labels, self.settings.shot_seed)

    def is_finished(self) -> bool:
        """True when the folder's manifest holds this run (all but the model's fingerprints,
        unknown before loading) and its examples cover every prompt of this run."""
        folder = self.folder
        if not (folder / "summary.json").exists():
            return False
        try:
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            stored = results.upgrade_identity(manifest["identity"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return False
        wanted = self.identity({**self.model_record(), "weights_fingerprint": None,
                                "tokenizer_fingerprint": None})
        if any(stored.get(key) != value for key, value in wanted.items()
               if key not in ("weights", "tokenizer")):
            return False
        return self.resume_keys <= set(results.load_done(folder))


def render_runs(tasks: Sequence[Task], settings: EvalSettings
                ) -> dict[tuple[str, int], tuple[Prompt, ...]]:
    """Every (task, shots) prompt set, rendered once: the one place shots, limit and
    demonstration labels are checked (a bad one fails here, before any model loads)."""
    rendered = {}
    for task in tasks:
        relabel = demos.relabeler(task, settings.demo_labels)
        for shots in settings.shots:
            rendered[(task.name, shots)] = tuple(render(task, shots, settings.limit,
                                                        seed=settings.shot_seed, relabel=relabel))
    return rendered


def plan(settings: EvalSettings, points: Sequence[Point], options: ModelOptions = ModelOptions(),
         shard: Shard = Shard()) -> list[RunSpec]:
    """This shard's runs: every point x task x shot count, in that order."""
    from harness.models.registry import resolve

    sources = [(point, resolve(point.model, point.revision)) for point in points]  # typos first
    tasks = load_tasks(settings.tasks, settings.tasks_dir)
    rendered = render_runs(tasks, settings)
    specs = [RunSpec(point, source.name, source.revision, options, task, shots, settings,
                     rendered[(task.name, shots)])
             for point, source in sources for task in tasks for shots in settings.shots]
    return shard.select(specs)


def plan_loaded(settings: EvalSettings, model: dict[str, Any]) -> list[RunSpec]:
    """The runs of `settings` on a model that is loaded already (its `ModelInfo` record)."""
    tasks = load_tasks(settings.tasks, settings.tasks_dir)
    rendered = render_runs(tasks, settings)
    point = Point(model["name"], model["revision"])
    options = ModelOptions(dtype=model["dtype"], device=model["device"],
                           boundary=model["boundary"])
    return [RunSpec(point, model["name"], model["revision"], options, task, shots, settings,
                    rendered[(task.name, shots)])
            for task in tasks for shots in settings.shots]


def by_checkpoint(specs: Sequence[RunSpec]) -> list[tuple[Point, list[RunSpec]]]:
    """Specs grouped by checkpoint, in plan order, so that each model is loaded once."""
    grouped: dict[tuple[Point, ModelOptions], list[RunSpec]] = {}
    for spec in specs:
        grouped.setdefault((spec.point, spec.options), []).append(spec)
    return [(point, group) for (point, _), group in grouped.items()]


def spec_of_committed(manifest: dict[str, Any], device: str = "cpu") -> RunSpec:
    """The spec of a committed run, from its manifest (for `harness reproduce`): every
    example of it, rendered here the way the committed run rendered them."""
    identity = results.upgrade_identity(manifest["identity"])
    model = manifest["model"]
    settings = EvalSettings(tasks=(identity["task"],), shots=(identity["shots"],),
                            generation=GenerationSettings(**identity["generation"]),
                            demo_labels=identity["demo_labels"],
                            shot_seed=identity.get("shot_seed", SEED))
    options = ModelOptions(dtype=model["dtype"], device=device, boundary=model["boundary"])
    task, prompts = _committed_prompts(identity["task"], identity["shots"],
                                       identity["demo_labels"], settings.shot_seed)
    return RunSpec(Point(model["name"], model["revision"]), model["name"], model["revision"],
                   options, task, identity["shots"], settings, prompts)


@lru_cache(maxsize=256)
def _committed_prompts(task_name: str, shots: int, demo_labels: str, shot_seed: int
                       ) -> tuple[Task, tuple[Prompt, ...]]:
    """A committed task's prompts, rendered once per process (the same for every checkpoint)."""
    settings = EvalSettings(tasks=(task_name,), shots=(shots,), demo_labels=demo_labels,
                            shot_seed=shot_seed)
    task = load_tasks(task_name)[0]
    return task, render_runs([task], settings)[(task.name, shots)]
