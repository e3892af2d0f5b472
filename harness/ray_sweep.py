"""Sweeps on a Ray cluster: one Ray task per checkpoint, written by the serial run writer.

`harness sweep ... --ray [ADDRESS]` plans the sweep exactly as the serial one does
(`harness.plan.plan`: checkpoint x task x shots, `--shard` applied, grouped by checkpoint),
skips checkpoints whose runs are all finished without loading them, and submits one Ray
task per remaining checkpoint. That task loads the model once with the resources it asked
for (one GPU when the sweep runs on CUDA, otherwise CPUs), executes the checkpoint's specs
through the serial sweep's own unit of work (`harness.sweep.run_checkpoint`) and returns
their summaries. A checkpoint's run folders belong to its one task, so each has one writer.

A worker that dies (killed, out of memory, node lost) has its task retried by Ray
(`max_retries`, for tasks whose worker died; an error raised by the harness is not
retried). The retry resumes each run folder at its first missing example, as a rerun after
`kill -9` does, so nothing is evaluated or written twice. The driver adds each finished
checkpoint's summaries to the results index (one locked update per checkpoint) and shows
one progress bar with ETA over checkpoints.

Ray is an optional dependency (`pip install 'emergence-harness[ray]'`), imported only here
and only when a sweep asks for it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness import distributed, index
from harness.errors import HarnessError
from harness.plan import EvalSettings, ModelOptions, Point, RunSpec, Shard, by_checkpoint, plan
from harness.sweep import run_checkpoint

Unit = Callable[[Sequence[RunSpec]], list[dict[str, Any]]]

log = logging.getLogger(__name__)

# Environment variables that decide what a worker loads and where (families, task and model
# caches, offline mode): the driver's values travel with every task, so a worker started by
# `ray start` elsewhere resolves the same models as the command that launched the sweep.
FORWARDED_PREFIXES = ("HARNESS_", "HF_", "TRANSFORMERS_")


@dataclass(frozen=True)
class RayOptions:
    """Where the sweep runs and what one checkpoint's task asks Ray for."""

    # None: a new cluster on this machine's cores; "auto": the one `ray start` began on this
    # machine; "HOST:PORT": that cluster's head. (Ray's own default, a cluster found through
    # the file a previous `ray start` left in /tmp/ray, waits on a head long gone after a
    # job's nodes were killed, so it is never used implicitly.)
    address: str | None = None
    gpus_per_unit: float | None = None  # None: 1 when the sweep's device is CUDA, else 0
    cpus_per_unit: float = 1
    max_retries: int = 3  # re-runs of a checkpoint whose worker died
    malloc_tuning: bool = False  # the command line's --malloc-tuning, applied on CPU workers


@dataclass(frozen=True)
class _Process:
    """Process-wide settings of a worker, chosen by the command line (the worker runs for
    it). Threads are set here, not left to the OMP_NUM_THREADS Ray gives a task: Ray reuses
    a worker for tasks of other sizes, and torch reads that variable once per process."""

    threads: int
    malloc_tuning: bool

    def apply(self) -> None:
        import torch

        torch.set_num_threads(self.threads)
        if self.malloc_tuning:
            from harness import allocator

            allocator.keep_freed_memory()


def _in_worker(unit: Unit, process: _Process, work: Sequence[Sequence[RunSpec]],
               number: int) -> list[dict[str, Any]]:
    """The body of a Ray task: checkpoint `number` of the sweep's work, which travels once
    through Ray's object store rather than with every checkpoint (its tasks and rendered
    prompts are shared by every checkpoint; all three bundled tasks pickle to 11.5 MB)."""
    process.apply()
    return unit(work[number])


def _import_ray():
    try:
        import ray
    except ImportError:
        raise HarnessError("--ray needs Ray: pip install 'emergence-harness[ray]'") from None
    return ray


def _check_reachable(address: str) -> None:
    """A head's HOST:PORT that nothing listens on is one line at once (Ray itself waits on
    it for minutes before it gives up)."""
    match = re.fullmatch(r"(?:ray://)?\[?([^\]/]+?)\]?:(\d+)", address)
    if match is None:  # "auto": Ray finds the address itself
        return
    try:
        socket.create_connection((match.group(1), int(match.group(2))), timeout=5).close()
    except OSError as exc:
        raise HarnessError(f"no Ray head answers at {address} ({exc.strerror or exc}); start one "
                           f"there with `ray start --head --port {match.group(2)}`") from None


def _connect(ray, address: str | None) -> bool:
    """Join (or start) the cluster; True when this call did, so the sweep also leaves it."""
    if address:
        _check_reachable(address)
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address or "local", include_dashboard=False,
                 logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HarnessError(f"cannot start or reach a Ray cluster at {address or 'this machine'} "
                           f"({reason}); pass --ray HOST:PORT of a running head") from None
    return True


def _resources(ray, cluster: RayOptions, device: str) -> dict[str, float]:
    """What one checkpoint's task asks for; an ask the cluster can never meet is an error,
    not a task that waits forever."""
    available = ray.cluster_resources()
    gpus = cluster.gpus_per_unit
    if gpus is None:
        has_gpu = available.get("GPU", 0) >= 1
        gpus = 1.0 if device.startswith("cuda") or (device == "auto" and has_gpu) else 0.0
    for name, wanted in (("GPU", gpus), ("CPU", cluster.cpus_per_unit)):
        if wanted > available.get(name, 0):
            raise HarnessError(f"each checkpoint asks Ray for {wanted:g} {name}(s) but the cluster "
                               f"has {available.get(name, 0):g}; pass --ray-gpus/--ray-cpus")
    return {"num_gpus": gpus, "num_cpus": cluster.cpus_per_unit}


def _worker_specs(specs: Sequence[RunSpec], gpus: float) -> list[RunSpec]:
    # Ray gives a task its own GPU(s) through CUDA_VISIBLE_DEVICES: the driver's `cuda:N`
    # numbering means nothing on a worker, which sees its GPU as `cuda`
    if gpus and specs[0].options.device.startswith("cuda:"):
        options = dataclasses.replace(specs[0].options, device="cuda")
        return [dataclasses.replace(spec, options=options) for spec in specs]
    return list(specs)


def _label(point: Point) -> str:
    return f"{point.model}@{point.revision or 'main'}"


def _collect(ray, pending: dict[Any, int], work: Sequence, on_done: Callable[[int, list], None]
             ) -> None:
    """Wait for every submitted checkpoint; hand each one's summaries to `on_done` as it
    finishes. A failure cancels the rest and is one line naming the checkpoint."""
    from ray.exceptions import RayTaskError

    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            number = pending.pop(ready[0])
            label = _label(work[number][0])
            try:
                done = ray.get(ready[0])
            except RayTaskError as exc:
                if isinstance(exc.cause, HarnessError):
                    raise HarnessError(f"{label}: {exc.cause}") from None
                raise
            except ray.exceptions.RayError as exc:  # the worker died more than max_retries times
                reason = str(exc).splitlines()[0]
                raise HarnessError(f"{label}: its Ray task failed ({type(exc).__name__}: {reason}); "
                                   "rerun the same command to resume") from None
            on_done(number, done)
    finally:
        for ref in pending:
            ray.cancel(ref)


def _submit(ray, work: Sequence[tuple[Point, list[RunSpec]]], todo: Sequence[int],
            cluster: RayOptions, unit: Unit) -> dict[Any, int]:
    """One Ray task per checkpoint in `todo`; returns each task's reference -> its number."""
    resources = _resources(ray, cluster, work[todo[0]][1][0].options.device)
    work_ref = ray.put([_worker_specs(specs, resources["num_gpus"]) for _, specs in work])
    env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_PREFIXES)}
    remote = ray.remote(_in_worker).options(**resources, max_retries=cluster.max_retries,
                                            runtime_env={"env_vars": env})
    process = _Process(threads=max(1, int(cluster.cpus_per_unit)),
                       malloc_tuning=cluster.malloc_tuning and not resources["num_gpus"])
    return {remote.remote(unit, process, work_ref, n): n for n in todo}


def run_sweep_ray(points: Sequence[Point], settings: EvalSettings,
                  options: ModelOptions | None = None, cluster: RayOptions = RayOptions(), *,
                  progress: bool = True, shard: Shard | None = None,
                  unit: Unit = run_checkpoint) -> list[dict[str, Any]]:
    """Evaluate this shard's runs on Ray, one task per checkpoint; return their summaries
    in the sweep's order (as `harness.sweep.run_sweep` does). `unit(specs)` is what each
    task runs: the serial sweep's `run_checkpoint` unless a test replaces it."""
    ray = _import_ray()
    options, shard = options or ModelOptions(), shard or Shard()
    if distributed.current().world > 1:
        raise HarnessError("--ray schedules whole checkpoints itself; start it as one process, "
                           "not under torchrun or accelerate launch")
    # workers may start elsewhere: paths they are given must not depend on this cwd
    settings = dataclasses.replace(
        settings, out=settings.out.resolve(),
        tasks_dir=settings.tasks_dir.resolve() if settings.tasks_dir else None)
    work = by_checkpoint(plan(settings, points, options, shard))
    todo = [n for n, (_, specs) in enumerate(work)
            if not all(spec.is_finished() for spec in specs)]
    log.info("%d of %d checkpoint(s) finished earlier, skipped", len(work) - len(todo), len(work))
    if not todo:
        return []
    started_here = _connect(ray, cluster.address)
    done_by_unit: dict[int, list[dict[str, Any]]] = {}
    bar = None
    try:
        pending = _submit(ray, work, todo, cluster, unit)
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), unit="ckpt", desc="ray sweep", dynamic_ncols=True,
                       file=sys.stderr)

        def finished(number: int, summaries: list[dict[str, Any]]) -> None:
            index.update(settings.out, summaries)
            done_by_unit[number] = summaries
            if bar is not None:
                bar.set_postfix_str(_label(work[number][0]), refresh=False)
                bar.update(1)

        _collect(ray, pending, work, finished)
    finally:
        if bar is not None:
            bar.close()
        if started_here:
            ray.shutdown()
    return [s for n in sorted(done_by_unit) for s in done_by_unit[n]]
