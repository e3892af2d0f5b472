"""Sweeps: many checkpoints of one family, one model in memory at a time, resumable.

A sweep is a list of (model, revision) points. Each is loaded, evaluated on every task and
shot count, and freed before the next. A point whose runs are all finished is skipped
without loading it; a half-finished run resumes at example level (harness.runner). One
progress bar with ETA covers the whole sweep. `build_index` gathers every summary under a
results root into results/index.json and a tidy results/index.csv (one row per model x
task x shots x metric) for pandas or a notebook.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import demos, distributed, results
from harness.errors import HarnessError
from harness.io import atomic_write_json, atomic_write_text
from harness.locations import locate
from harness.models.registry import LADDER_ALIASES, PYTHIA_SIZES, family_aliases, resolve, step_folders
from harness.runner import EvalSettings, evaluate_task, prompt_sha256
from harness.tasks import check_shots_and_limit, load_tasks, render

log = logging.getLogger(__name__)

# Tokens per optimiser step, for the "tokens seen" axis (Pythia: 1024 sequences x 2048).
PYTHIA_TOKENS_PER_STEP = 2_097_152
# Real pretrained models from three families, by total parameters (published: 135M, 268M,
# 494M, 1.54B): a cross-family series, not one family's scaling.
LADDER_FAMILY = ("smollm2-135m", *LADDER_ALIASES)


@dataclass(frozen=True)
class Point:
    model: str
    revision: str | None


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


def _finished(out: Path, point: Point, dtype: str, boundary: str, settings: EvalSettings,
              tasks: Sequence) -> bool:
    """True when every run of `point` already has records for all requested examples.

    Decided without loading the model: a pending run (or a changed task file or generation
    setting) means False, and the model is loaded; the loaded model's full identity is then
    checked by the runner before anything is reused.
    """
    if dtype not in ("auto", "float32", "fp32"):
        return False
    source = resolve(point.model, point.revision)
    model = {"name": source.name, "revision": source.revision, "dtype": "float32",
             "boundary": boundary}
    for task in tasks:
        for shots in settings.shots:
            folder = results.run_dir(out, model, task.name, shots, settings.demo_labels)
            summary = folder / "summary.json"
            if not summary.exists():
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
            if not wanted <= set(results.load_done(folder)):
                return False
    return True


def run_sweep(points: Sequence[Point], settings: EvalSettings, *, dtype: str = "auto",
              device: str = "auto", batch_size: str = "auto", boundary: str = "natural",
              allow_pickle: bool = False, progress: bool = True) -> list[dict[str, Any]]:
    """Evaluate every point on every task and shot count; return all summaries."""
    from harness.models import load_model

    tasks = load_tasks(settings.tasks)
    for task in tasks:
        for shots in settings.shots:
            check_shots_and_limit(task, shots, settings.limit)
    for point in points:  # fail on a bad name or revision before the first load
        resolve(point.model, point.revision)
    per_point = sum(min(len(t.examples), settings.limit or len(t.examples))
                    for t in tasks for _ in settings.shots)
    bar = None
    if progress and distributed.current().is_main:
        from tqdm import tqdm

        bar = tqdm(total=per_point * len(points), unit="ex", desc="sweep", dynamic_ncols=True,
                   file=sys.stderr)
    summaries: list[dict[str, Any]] = []
    try:
        for number, point in enumerate(points, start=1):
            label = f"{point.model}@{resolve(point.model, point.revision).revision}"
            if _finished(settings.out, point, dtype, boundary, settings, tasks):
                log.info("[%d/%d] %s: finished earlier, skipped", number, len(points), label)
                if bar is not None:
                    bar.update(per_point)
                continue
            if bar is not None:
                bar.set_description(f"[{number}/{len(points)}] {label}")
            backend = load_model(point.model, point.revision, dtype=dtype, device=device,
                                 batch_size=batch_size, boundary=boundary,
                                 allow_pickle=allow_pickle)
            try:
                for task in tasks:
                    for shots in settings.shots:
                        summaries.append(evaluate_task(backend, task, shots, settings, bar))
            finally:
                backend.close()
                del backend
                gc.collect()
    finally:
        if bar is not None:
            bar.close()
    if distributed.current().is_main:
        build_index(settings.out)
    return summaries


# ---------------------------------------------------------------------------- index


def _step(revision: str) -> int | None:
    match = re.fullmatch(r"step(\d+)", revision or "")
    return int(match.group(1)) if match else None


def _family_info(model: dict[str, Any]) -> dict[str, Any]:
    """Family, size label, training step and tokens seen of a model, where known."""
    name, revision = model["name"], model["revision"]
    step = _step(revision)
    pythia = re.fullmatch(r"pythia-([0-9.]+[mb])(-deduped)?", name)
    if pythia:
        step = 143000 if revision == "main" else step
        return {"family": "pythia" + (pythia.group(2) or ""), "size": pythia.group(1),
                "step": step, "tokens_seen": None if step is None else step * PYTHIA_TOKENS_PER_STEP}
    source = locate(model["source"])
    manifest = source.parent.parent / "family.json" if source else None
    if manifest is not None and manifest.is_file():
        data = json.loads(manifest.read_text(encoding="utf-8"))
        recipe = data.get("recipe", {})
        per_step = recipe.get("batch_size", 0) * recipe.get("seq_len", 0)
        return {"family": data.get("family"), "size": source.parent.name, "step": step,
                "tokens_seen": None if step is None else step * per_step}
    return {"family": None, "size": name, "step": step, "tokens_seen": None}


INDEX_FIELDS = ("model", "revision", "family", "size", "step", "tokens_seen", "total_params",
                "non_embedding_params", "dtype", "boundary", "task", "shots", "demo_labels", "n", "metric",
                "family_of_metric", "mean", "ci_low", "ci_high", "n_valid", "n_nan", "chance",
                "higher_is_better", "run_dir")


def build_index(out: Path) -> list[dict[str, Any]]:
    """Gather every summary.json under `out`/runs into index.json and a tidy index.csv."""
    out = Path(out)
    rows: list[dict[str, Any]] = []
    summaries = []
    for path in sorted((out / "runs").rglob("summary.json")):
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise HarnessError(f"{path} is unreadable ({exc}); run `harness rescore "
                               f"{path.parent}` to rebuild it") from None
        model = summary["model"]
        info = _family_info(model)
        run = str(path.parent.relative_to(out))
        summaries.append({"run_dir": run, **info, "summary": summary})
        for metric, entry in summary["metrics"].items():
            rows.append({
                "model": model["name"], "revision": model["revision"], **info,
                "total_params": model["total_params"],
                "non_embedding_params": model["non_embedding_params"], "dtype": model["dtype"],
                "boundary": model["boundary"], "task": summary["task"]["name"],
                "shots": summary["shots"], "demo_labels": summary.get("demo_labels", "true"),
                "n": summary["n"], "metric": metric,
                "family_of_metric": entry.get("family"), "mean": entry.get("mean"),
                "ci_low": entry.get("ci_low"), "ci_high": entry.get("ci_high"),
                "n_valid": entry.get("n"), "n_nan": entry.get("n_nan"),
                "chance": entry.get("chance"), "higher_is_better": entry.get("higher_is_better"),
                "run_dir": run,
            })
    if not summaries:
        return rows
    atomic_write_json(out / "index.json", {"built": results.now(), "runs": summaries})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=INDEX_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "index.csv", buffer.getvalue())
    return rows
