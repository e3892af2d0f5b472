"""The results index: one Parquet row per run, updated in place as runs finish.

`<results>/index.parquet` holds one row per run folder (`runs/<model>/<task>/shots<N>`):

* identity: `run_dir`, model, revision, weights and tokenizer fingerprints, dtype, boundary,
  task, task sha256, shots, demonstration labels, n;
* scale axes: family, size, step, tokens seen, total and non-embedding parameters, training
  compute (6·N·D, `harness.scale.training_compute`; null where the tokens are unknown), and
  the model's held-out loss: `heldout_bpb` (bits per byte) and `heldout_task` (which text),
  joined from the same weights' loss run (a `loss/...` task) when the results hold one;
* provenance: model source, git commit and dirty flag, harness version, scored time, wall_s;
* every metric `m` of the run as flat columns `m.mean`, `m.ci_low`, `m.ci_high`, `m.n_nan`,
  `m.chance` (a metric a run lacks is null there).

Per-example scores stay in the run folders. A sweep calls `update` with the summaries it
just wrote: the existing file is read, those runs' rows are replaced, and the file is
written back atomically under a lock (shards of one sweep may share a results folder), so
a run costs one read and one write of the index, never a re-read of every summary.json.
`rebuild` scans all summaries (after copying runs in, or to recover a deleted index).
Reading it is one line: `harness.index.load("results")` (a pandas DataFrame), or
`pandas.read_parquet("results/index.parquet")`, or DuckDB's `read_parquet`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.locations import locate
from harness.scale import training_compute

INDEX_FILE = "index.parquet"
METRIC_FIELDS = ("mean", "ci_low", "ci_high", "n_nan", "chance")


def family_info(model: dict[str, Any]) -> dict[str, Any]:
    """Family, size label, training step and tokens seen of a stored model record, from the
    model registry's `lineage` (the one place that knows a model's family)."""
    from harness.models.registry import lineage

    return lineage(model["name"], model["revision"], locate(model.get("source") or "")).to_json()


def row(summary: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """The index row of one run's summary.json (`run_dir` relative to the results root)."""
    model, task = summary["model"], summary["task"]
    provenance = summary.get("provenance") or {}
    git = provenance.get("git") or {}
    scale = family_info(model)
    record: dict[str, Any] = {
        "run_dir": run_dir, "model": model["name"], "revision": model["revision"],
        "weights_fingerprint": model.get("weights_fingerprint"),
        "tokenizer_fingerprint": model.get("tokenizer_fingerprint"),
        "dtype": model["dtype"], "boundary": model["boundary"], "task": task["name"],
        "task_sha256": task.get("sha256"), "shots": summary["shots"],
        "demo_labels": summary.get("demo_labels", "true"), "n": summary["n"],
        **scale,
        "total_params": model.get("total_params"),
        "non_embedding_params": model.get("non_embedding_params"),
        "training_compute": training_compute(model.get("non_embedding_params"),
                                             scale["tokens_seen"]),
        "source": model.get("source"), "git_commit": git.get("commit"),
        "git_dirty": git.get("dirty"),
        "harness_version": (provenance.get("versions") or {}).get("harness"),
        "scored": provenance.get("scored"), "wall_s": provenance.get("wall_s"),
    }
    for metric, entry in summary["metrics"].items():
        for field in METRIC_FIELDS:
            record[f"{metric}.{field}"] = entry.get(field)
    return record


LOSS_TASK_GROUP = "loss/"
REFERENCE_LOSS_TASK = "loss/reference"


def is_heldout_loss(task: str) -> bool:
    """A held-out loss task (harness.heldout): a scale axis of the model, not an ability."""
    return task.startswith(LOSS_TASK_GROUP)


def _weights_key(r: dict[str, Any]) -> tuple[str, str | None]:
    return (r.get("weights_fingerprint") or f"{r['model']}@{r['revision']}", r.get("dtype"))


def join_heldout_loss(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row with `heldout_task` and `heldout_bpb`: the bits per byte of the same weights
    (and dtype) on their family's own corpus (`loss/<family>-corpus`) where the rows hold that
    run, else on the reference text (`loss/reference`), else None."""
    losses: dict[tuple[str, str | None], dict[str, float]] = {}
    for r in rows:
        bpb = r.get("bits_per_byte.mean")
        if is_heldout_loss(r["task"]) and bpb is not None and bpb == bpb:
            losses.setdefault(_weights_key(r), {})[r["task"]] = bpb
    joined = []
    for r in rows:
        found = losses.get(_weights_key(r), {})
        own = f"{LOSS_TASK_GROUP}{r.get('family')}-corpus"
        task = own if own in found else REFERENCE_LOSS_TASK if REFERENCE_LOSS_TASK in found else None
        joined.append({**r, "heldout_task": task, "heldout_bpb": found.get(task)})
    return joined


def _read_summary(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise HarnessError(f"{path} is unreadable ({exc}); run `harness rescore "
                           f"{path.parent}` to rebuild it") from None


def _table(rows: list[dict[str, Any]]):
    """Rows with differing keys (tasks have different metrics) as one table; a key a row
    lacks is null there. (`Table.from_pylist` would take the columns of the first row only.)"""
    import pyarrow as pa

    columns = list(dict.fromkeys(key for r in rows for key in r))
    return pa.table({key: [r.get(key) for r in rows] for key in columns})


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """An exclusive lock on the index for one read-modify-write (POSIX advisory lock)."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / (INDEX_FILE + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write(table, path: Path) -> None:
    import pyarrow.parquet as pq

    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    pq.write_table(table, partial, compression="zstd")
    os.replace(partial, path)


def _read(path: Path):
    import pyarrow.parquet as pq

    try:
        # through one open handle: a writer's os.replace then cannot swap the file between
        # pyarrow's footer read and its data reads (it opens a path more than once)
        with open(path, "rb") as handle:
            return pq.read_table(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HarnessError(f"{path} is not a readable Parquet index ({reason}); run `harness "
                           f"index {path.parent}` to rebuild it") from None


def update(out: Path, summaries: Iterable[dict[str, Any]]) -> int:
    """Insert or replace the rows of these runs in `out`/index.parquet; return the row count.

    Each summary's run folder is derived from its model, task, shots and labels exactly as
    the run writer names it, so the same run always maps to the same row.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from harness.results import run_dir

    out = Path(out)
    new_rows = []
    for summary in summaries:
        folder = run_dir(Path("."), summary["model"], summary["task"]["name"], summary["shots"],
                         summary.get("demo_labels", "true"))
        new_rows.append(row(summary, folder.as_posix()))
    if not new_rows:
        return 0
    new = _table(new_rows)
    path = out / INDEX_FILE
    with _locked(out):
        old = _read(path)
        if old is not None and old.num_rows:
            replaced = pc.is_in(old["run_dir"], value_set=new["run_dir"])
            if pc.any(replaced).as_py():  # a rerun: drop its old row (a copy of the table)
                old = old.filter(pc.invert(replaced))
            new = pa.concat_tables([old, new], promote_options="permissive")
        new = _table(join_heldout_loss(new.to_pylist()))  # a loss run changes other rows
        _write(new, path)
    return new.num_rows


def write_rows(out: Path, rows: list[dict[str, Any]]) -> int:
    """Replace `out`/index.parquet by these rows (from `row`); return their count."""
    with _locked(Path(out)):
        _write(_table(join_heldout_loss(rows)), Path(out) / INDEX_FILE)
    return len(rows)


def rebuild(out: Path) -> int:
    """Rewrite `out`/index.parquet from every summary.json under `out`/runs."""
    out = Path(out)
    rows = [row(_read_summary(path), path.parent.relative_to(out).as_posix())
            for path in sorted((out / "runs").rglob("summary.json"))]
    return write_rows(out, rows)


def _load_table(root: Path | str, columns: list[str] | None):
    path = Path(root) / INDEX_FILE
    table = _read(path)
    if table is None:
        raise HarnessError(f"no index at {path}; run `harness index {root}` (or a sweep) first")
    missing = [c for c in columns or [] if c not in table.column_names]
    if missing:
        raise HarnessError(f"{path} has no column(s) {missing}; run `harness index {root}` to "
                           "rebuild it with this harness's columns")
    return table.select(columns) if columns else table


def load(root: Path | str = "results", columns: list[str] | None = None):
    """The index of a results root as a pandas DataFrame (one row per run)."""
    return _load_table(root, columns).to_pandas()


def records(root: Path | str = "results", columns: list[str] | None = None
            ) -> list[dict[str, Any]]:
    """The index as a list of dicts, one per run, without pandas (a missing value is None,
    not NaN: a run without a training step keeps `step` None)."""
    return _load_table(root, columns).to_pylist()
