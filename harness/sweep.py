"""Sweeps: many checkpoints of one family, one model in memory at a time, resumable.

A sweep is a list of (model, revision) points. Each is loaded, evaluated on every task and
shot count, and freed before the next. A point whose runs are all finished is skipped
without loading it; a half-finished run resumes at example level (harness.runner). One
progress bar with ETA covers the whole sweep. After each checkpoint its summaries go into
the results index (harness.index: results/index.parquet, one row per run).

`--shard i/N` runs the i-th of N disjoint slices of the sweep's runs (checkpoint x task x
shots), so a plain job array covers a sweep without a scheduler: every shard computes the
same ordered list of runs from the same arguments and takes its own contiguous block.
"""

from __future__ import annotations

import gc
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import demos, distributed, index, results
from harness.errors import HarnessError
from harness.models.registry import LADDER_ALIASES, PYTHIA_SIZES, family_aliases, resolve, step_folders
from harness.runner import EvalSettings, evaluate_task, prompt_sha256
from harness.tasks import Task, check_shots_and_limit, load_tasks, render

log = logging.getLogger(__name__)

# Real pretrained models from three families, by total parameters (published: 135M, 268M,
# 494M, 1.54B): a cross-family series, not one family's scaling.
LADDER_FAMILY = ("smollm2-135m", *LADDER_ALIASES)


@dataclass(frozen=True)
class Point:
    model: str
    revision: str | None


@dataclass(frozen=True)
class Shard:
    """The `index`-th (0-based) of `count` slices of a sweep: `--shard i/N`."""

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


def plan(points: Sequence[Point], tasks: Sequence[Task], shots: Sequence[int],
         shard: Shard = Shard()) -> list[tuple[Point, list[tuple[Task, int]]]]:
    """The runs of a sweep (checkpoint x task x shots, in that order) that `shard` does,
    grouped by checkpoint so that each model is loaded once."""
    units = [(point, task, n) for point in points for task in tasks for n in shots]
    grouped: dict[Point, list[tuple[Task, int]]] = {}
    for point, task, n in shard.select(units):
        grouped.setdefault(point, []).append((task, n))
    return list(grouped.items())


def expand(models: str | None = None, family: str | None = None, sizes: str | None = None,
           revisions: str | None = None) -> list[Point]:
    """The points of a sweep from CLI-style arguments.

    `--models a,b` or `--family pythia --sizes 70m,160m` or `--family pico` (all sizes);
    `--revisions step1000,step8000` crosses every model with those revisions, and
    `--revisions all` takes every checkpoint of a local family.
    """
    if bool(models) == bool(family):
        raise HarnessError("give either --models M1,M2,... or --family F (with --sizes)")
    names: list[str]
    if models:
        names = [m.strip() for m in models.split(",") if m.strip()]
    elif family in ("pythia", "pythia-deduped"):
        chosen = [s.strip() for s in (sizes or "").split(",") if s.strip()]
        if not chosen:
            raise HarnessError(f"--family {family} needs --sizes, e.g. 70m,160m,410m "
                               f"(sizes: {', '.join(PYTHIA_SIZES)})")
        suffix = "-deduped" if family.endswith("deduped") else ""
        names = [f"pythia-{s}{suffix}" for s in chosen]
    elif family == "ladder":
        if sizes:
            raise HarnessError("--family ladder has no --sizes; use --models with some of: "
                               f"{', '.join(LADDER_FAMILY)}")
        names = list(LADDER_FAMILY)
    else:
        members = {alias: folder for alias, folder in family_aliases().items()
                   if alias.rsplit("-", 1)[0] == family}
        if not members:
            known = sorted({a.rsplit("-", 1)[0] for a in family_aliases()} | {"pythia", "ladder"})
            raise HarnessError(f"unknown family {family!r}; known: {', '.join(known)}")
        if sizes:
            wanted = [f"{family}-{s.strip()}" for s in sizes.split(",") if s.strip()]
            missing = [w for w in wanted if w not in members]
            if missing:
                raise HarnessError(f"{family} has no size(s) {missing}; sizes: "
                                   f"{', '.join(sorted(members))}")
            names = wanted
        else:
            names = list(members)
    if not revisions:
        return [Point(n, None) for n in names]
    points = []
    for name in names:
        if revisions == "all":
            source = resolve(name)
            folder = Path(source.location).parent
            points.extend(Point(name, s.name) for s in step_folders(folder))
        else:
            points.extend(Point(name, r.strip()) for r in revisions.split(",") if r.strip())
    return points


@dataclass(frozen=True)
class ModelOptions:
    """How every checkpoint of a sweep is loaded (the `harness.models.load_model` options)."""

    dtype: str = "auto"
    device: str = "auto"
    batch_size: str = "auto"
    boundary: str = "natural"
    allow_pickle: bool = False


def _run_finished(out: Path, model: dict[str, Any], task: Task, shots: int,
                  settings: EvalSettings) -> bool:
    """True when the run folder already has records for all requested examples."""
    folder = results.run_dir(out, model, task.name, shots, settings.demo_labels)
    if not (folder / "summary.json").exists():
        return False
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    identity = manifest.get("identity", {})
    if (identity.get("task_sha256") != task.sha256
            or identity.get("generation") != settings.generation.to_json(task)):
        return False
    relabel = demos.relabeler(task, settings.demo_labels)
    wanted = {(p.idx, prompt_sha256(p))
              for p in render(task, shots, settings.limit, relabel=relabel)}
    return wanted <= set(results.load_done(folder))


def _finished(out: Path, point: Point, options: ModelOptions, settings: EvalSettings,
              runs: Sequence[tuple[Task, int]]) -> bool:
    """True when every run of `point` in `runs` is finished, decided without loading the
    model: a pending run (or a changed task file or generation setting) means False, and
    the model is loaded; the loaded model's full identity is then checked by the runner
    before anything is reused."""
    if options.dtype not in ("auto", "float32", "fp32"):
        return False
    source = resolve(point.model, point.revision)
    model = {"name": source.name, "revision": source.revision, "dtype": "float32",
             "boundary": options.boundary}
    return all(_run_finished(out, model, task, shots, settings) for task, shots in runs)


def _run_point(point: Point, runs: Sequence[tuple[Task, int]], settings: EvalSettings,
               options: ModelOptions, bar: Any) -> list[dict[str, Any]]:
    from harness.models import load_model

    backend = load_model(point.model, point.revision, dtype=options.dtype, device=options.device,
                         batch_size=options.batch_size, boundary=options.boundary,
                         allow_pickle=options.allow_pickle)
    try:
        return [evaluate_task(backend, task, shots, settings, bar) for task, shots in runs]
    finally:
        backend.close()
        del backend
        gc.collect()


def units(points: Sequence[Point], settings: EvalSettings, shard: Shard = Shard()
          ) -> list[tuple[Point, list[tuple[Task, int]]]]:
    """This shard's runs grouped by checkpoint (`plan`), after checking every task, shot
    count and model name, so that a bad one fails before the first load. A unit (one
    checkpoint and its runs) is what a scheduler places: one model load per unit."""
    tasks = load_tasks(settings.tasks, settings.tasks_dir)
    for task in tasks:
        for shots in settings.shots:
            check_shots_and_limit(task, shots, settings.limit)
    for point in points:
        resolve(point.model, point.revision)
    return plan(points, tasks, settings.shots, shard)


def unit_finished(point: Point, runs: Sequence[tuple[Task, int]], settings: EvalSettings,
                  options: ModelOptions) -> bool:
    """True when every run of this unit is finished (decided without loading the model)."""
    return _finished(settings.out, point, options, settings, runs)


def run_unit(point: Point, runs: Sequence[tuple[Task, int]], settings: EvalSettings,
             options: ModelOptions, bar: Any = None) -> list[dict[str, Any]]:
    """Load `point` once, evaluate its runs (each resumes where it stopped) and return their
    summaries; the work of one unit wherever it runs (harness.ray_sweep's Ray tasks)."""
    return _run_point(point, runs, settings, options, bar)


def run_sweep(points: Sequence[Point], settings: EvalSettings,
              options: ModelOptions = ModelOptions(), *, progress: bool = True,
              shard: Shard = Shard()) -> list[dict[str, Any]]:
    """Evaluate this shard's runs (every point x task x shot count by default); return
    their summaries. Each point's summaries enter the results index as soon as it is done."""
    work = units(points, settings, shard)
    bar = None
    if progress and distributed.current().is_main:
        from tqdm import tqdm

        total = sum(min(len(t.examples), settings.limit or len(t.examples))
                    for _, runs in work for t, _ in runs)
        bar = tqdm(total=total, unit="ex", desc="sweep", dynamic_ncols=True, file=sys.stderr)
    summaries: list[dict[str, Any]] = []
    try:
        for number, (point, runs) in enumerate(work, start=1):
            label = f"{point.model}@{resolve(point.model, point.revision).revision}"
            if _finished(settings.out, point, options, settings, runs):
                log.info("[%d/%d] %s: finished earlier, skipped", number, len(work), label)
                if bar is not None:
                    bar.update(sum(min(len(t.examples), settings.limit or len(t.examples))
                                   for t, _ in runs))
                continue
            if bar is not None:
                bar.set_description(f"[{number}/{len(work)}] {label}")
            done = _run_point(point, runs, settings, options, bar)
            if distributed.current().is_main:
                index.update(settings.out, done)
            summaries.extend(done)
    finally:
        if bar is not None:
            bar.close()
    return summaries
