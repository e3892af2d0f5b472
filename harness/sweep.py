"""Sweeps: many checkpoints of one family, one model in memory at a time, resumable.

A sweep is a list of (model, revision) points, planned into RunSpecs (harness.plan). Each
point is loaded, its specs executed (`run_checkpoint`, the unit of work a scheduler calls),
and freed before the next. A point whose runs are all finished is skipped without loading
it; a half-finished run resumes at example level (harness.runner). One
progress bar with ETA covers the whole sweep. After each checkpoint its summaries go into
the results index (harness.index: results/index.parquet, one row per run).

`--shard i/N` runs the i-th of N disjoint slices of the sweep's runs (checkpoint x task x
shots), so a plain job array covers a sweep without a scheduler: every shard computes the
same ordered list of runs from the same arguments and takes its own contiguous block.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import distributed, index
from harness.emergence.seeds import split_seed
from harness.errors import HarnessError
from harness.models.registry import LADDER_MODELS, PYTHIA_SIZES, family_aliases, resolve, step_folders
from harness.plan import (  # Point, ModelOptions, Shard: the sweep's API, defined with the plan
    EvalSettings,
    ModelOptions,
    Point,
    RunSpec,
    Shard,
    by_checkpoint,
    plan,
)
from harness.runner import evaluate_run

log = logging.getLogger(__name__)

# Real pretrained models from three families, by total parameters (published: 135M, 268M,
# 494M, 1.54B): a cross-family series, not one family's scaling.
LADDER_FAMILY = LADDER_MODELS


def _family_of(alias: str) -> str:
    """`pico-16k`, `pico-s2-16k` -> `pico`: a trained family's alias without its size."""
    return split_seed(alias)[0].rsplit("-", 1)[0]


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
        # a family's seed variants (pico-s2-16k) are members of it, sizes like any other
        members = {alias: folder for alias, folder in family_aliases().items()
                   if _family_of(alias) == family}
        if not members:
            known = sorted({_family_of(a) for a in family_aliases()} | {"pythia", "ladder"})
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


def run_checkpoint(specs: Sequence[RunSpec], progress_bar: Any = None) -> list[dict[str, Any]]:
    """Load the one checkpoint of `specs`, execute them, free the model; their summaries.

    The unit of work of a sweep: a scheduler (a Ray task, a job array element) calls this
    with one checkpoint's specs from `harness.plan.plan`, and needs nothing else.
    """
    from harness.models import load_model

    first = specs[0]
    if any((spec.point, spec.options) != (first.point, first.options) for spec in specs):
        raise HarnessError("run_checkpoint takes the specs of one checkpoint; group them with "
                           "harness.plan.by_checkpoint")
    options = first.options
    backend = load_model(first.point.model, first.point.revision, dtype=options.dtype,
                         device=options.device, batch_size=options.batch_size,
                         boundary=options.boundary, allow_pickle=options.allow_pickle)
    try:
        return [evaluate_run(backend, spec, progress_bar) for spec in specs]
    finally:
        backend.close()
        del backend
        gc.collect()


def run_sweep(points: Sequence[Point], settings: EvalSettings,
              options: ModelOptions | None = None, *, progress: bool = True,
              shard: Shard | None = None) -> list[dict[str, Any]]:
    """Evaluate this shard's runs (every point x task x shot count by default); return
    their summaries. Each point's summaries enter the results index as soon as it is done.
    A checkpoint whose runs are all finished is skipped without loading it."""
    work = by_checkpoint(plan(settings, points, options or ModelOptions(), shard or Shard()))
    bar = None
    if progress and distributed.current().is_main:
        from tqdm import tqdm

        total = sum(spec.n_examples for _, specs in work for spec in specs)
        bar = tqdm(total=total, unit="ex", desc="sweep", dynamic_ncols=True, file=sys.stderr)
    summaries: list[dict[str, Any]] = []
    try:
        for number, (_, specs) in enumerate(work, start=1):
            label = f"{specs[0].model}@{specs[0].revision}"
            if all(spec.is_finished() for spec in specs):
                log.info("[%d/%d] %s: finished earlier, skipped", number, len(work), label)
                if bar is not None:
                    bar.update(sum(spec.n_examples for spec in specs))
                continue
            if bar is not None:
                bar.set_description(f"[{number}/{len(work)}] {label}")
            done = run_checkpoint(specs, bar)
            if distributed.current().is_main:
                index.update(settings.out, done)
            summaries.extend(done)
    finally:
        if bar is not None:
            bar.close()
    return summaries
