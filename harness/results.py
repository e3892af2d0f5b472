"""Where results live, what identifies a run, and how raw records are written.

Layout (contract):
    <out>/runs/<model>@<revision>[+<dtype>][+bigbench-boundary]/<task>[@variant]/shots<N>[-labels]/
        manifest.json   identity of the run (the cache key) + provenance of each session
        examples.jsonl  one ExampleRecord per example, appended as examples finish
        summary.json    every metric's mean and CI, written atomically after scoring

`run_identity` is the one function that defines a run, by content: weights and tokenizer
fingerprints, dtype, boundary, task name and file sha256, shots, demonstration labels and
generation settings. Where the model came from (alias, path, package, hub id and revision)
is provenance, kept in the manifest's `model` record: the same weights loaded from another
folder, machine or package install are the same run. A folder whose manifest holds another
identity is never reused or overwritten without --overwrite.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.io import atomic_write_bytes, atomic_write_json, make_dirs
from harness.records import ExampleRecord, packed_path, read_records
from harness.repo import REPO as REPO  # re-exported: the report reads it from here
from harness.tasks import SEED as SHOT_SEED  # an identity without a shot seed means this one

# 2: content only (version 1 also held the model's name, revision and load path)
IDENTITY_VERSION = 2


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+=-]+", "-", text).strip("-") or "model"


def model_folder_name(model: dict[str, Any]) -> str:
    """`<model>@<revision>`, plus `+<dtype>` unless float32 and `+bigbench-boundary`."""
    name = f"{_safe(model['name'])}@{_safe(model['revision'])}"
    if model["dtype"] != "float32":
        name += f"+{model['dtype']}"
    if model["boundary"] != "natural":
        name += f"+{model['boundary']}-boundary"
    return name


def run_identity(model: dict[str, Any], task: dict[str, Any], shots: int,
                 generation: dict[str, Any], demo_labels: str = "true",
                 shot_seed: int = SHOT_SEED) -> dict[str, Any]:
    """The cache key of a run: everything that changes what a model outputs, nothing else."""
    identity = {
        "version": IDENTITY_VERSION,
        "weights": model["weights_fingerprint"], "tokenizer": model["tokenizer_fingerprint"],
        "dtype": model["dtype"], "boundary": model["boundary"],
        "task": task["name"], "task_sha256": task["sha256"], "shots": shots,
        "demo_labels": demo_labels, "generation": generation,
    }
    # Only another seed than BIG-bench's is written: every run made with 42 keeps the
    # identity it always had, so committed evidence still matches it.
    if shot_seed != SHOT_SEED:
        identity["shot_seed"] = shot_seed
    return identity


def upgrade_identity(identity: dict[str, Any]) -> dict[str, Any]:
    """An identity of any earlier version in today's form (same run, same key)."""
    if identity.get("version") == 1:
        identity = {k: v for k, v in identity.items() if k not in ("model", "source", "revision")}
        identity = {**identity, "version": IDENTITY_VERSION,
                    "demo_labels": identity.get("demo_labels", "true")}
    return identity


def identity_key(identity: dict[str, Any]) -> str:
    """A hashable, order-independent form of an identity (for lookups across folders)."""
    return json.dumps(upgrade_identity(identity), sort_keys=True)


def run_dir(out: Path, model: dict[str, Any], task_name: str, shots: int,
            demo_labels: str = "true") -> Path:
    shots_part = f"shots{shots}" if demo_labels == "true" else f"shots{shots}-{demo_labels}"
    return Path(out) / "runs" / model_folder_name(model) / task_name / shots_part


def check_or_claim(folder: Path, identity: dict[str, Any], overwrite: bool) -> dict[str, Any]:
    """Make sure `folder` belongs to `identity`; return its manifest (created if new)."""
    manifest_path = folder / "manifest.json"
    if manifest_path.exists():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            existing = upgrade_identity(manifest["identity"])
        except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise HarnessError(f"{manifest_path} is unreadable; move the folder away or pass "
                               "--overwrite to start it afresh") from None
        if existing == identity:
            manifest["identity"] = identity
            return manifest
        if not overwrite:
            changed = sorted(k for k in set(existing) | set(identity)
                             if existing.get(k) != identity.get(k))
            detail = ", ".join(f"{k}: {existing.get(k)!r} -> {identity.get(k)!r}"
                               for k in changed[:3])
            raise HarnessError(f"{folder} holds results of a different run ({detail}); pass "
                               "--overwrite to replace them, or --out to write elsewhere")
        shutil.rmtree(folder)
    manifest = {"identity": identity, "sessions": []}
    atomic_write_json(manifest_path, manifest)
    return manifest


def append_records(path: Path, records: list[ExampleRecord]) -> None:
    """Append complete lines and fsync. A partial last line (a killed writer) is cut first."""
    make_dirs(path.parent)
    if path.exists() and path.stat().st_size:
        with open(path, "rb+") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                data = path.read_bytes()
                handle.truncate(data.rfind(b"\n") + 1)
    payload = "".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in records)
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise HarnessError(f"cannot write {path} ({exc.strerror or exc}); free disk space and "
                           "rerun: finished examples are kept and the run resumes") from exc


def load_done(folder: Path, partial_tail_ok: bool = True) -> dict[tuple[int, str], ExampleRecord]:
    """Finished records of a run folder keyed by (idx, prompt sha256); duplicates collapse."""
    records = read_records(folder / "examples.jsonl", partial_tail_ok=partial_tail_ok)
    return {(r.idx, r.prompt_sha256): r for r in records}


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("numpy", "torch", "transformers", "tokenizers", "accelerate"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", "?")
    from harness import __version__

    versions["harness"] = __version__
    return versions


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def find_runs(root: Path) -> list[Path]:
    """Run folders (holding examples.jsonl[.gz]) under `root`, which may itself be one."""
    root = Path(root)
    if (root / "manifest.json").exists():
        return [root]
    return sorted({p.parent for pattern in ("examples.jsonl", "examples.jsonl.gz")
                   for p in root.rglob(pattern)})


def pack(folder: Path) -> tuple[int, int]:
    """Fold a finished run's examples.jsonl into examples.jsonl.gz (for committing results).

    Reading is unchanged (`read_records` reads both); a later resume appends to a new
    examples.jsonl beside the packed file. Returns (bytes before, bytes after).
    """
    import gzip

    plain = folder / "examples.jsonl"
    packed = packed_path(plain)
    if not plain.exists():
        return (0, 0)
    read_records(plain, partial_tail_ok=False)  # refuse to pack a damaged or unfinished file
    before = plain.stat().st_size + (packed.stat().st_size if packed.exists() else 0)
    old = gzip.decompress(packed.read_bytes()) if packed.exists() else b""
    data = gzip.compress(old + plain.read_bytes(), compresslevel=9, mtime=0)
    tmp = packed.with_name(packed.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, packed)
    plain.unlink()
    return before, len(data)


SCORES_FILE = "scores.json.gz"  # per-example scores, written when a run is scored (`summarize_run`)


def write_scores(folder: Path, table: dict[str, list[float]]) -> None:
    """Per-example scores as gzip'd JSON columns (NaN as null, floats exactly as computed)."""
    import gzip

    columns = {name: [None if math.isnan(v) else v for v in values] for name, values in table.items()}
    columns["idx"] = [int(v) for v in table["idx"]]
    text = json.dumps({"format": 1, "columns": columns}, separators=(",", ":"))
    data = gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)
    atomic_write_bytes(Path(folder) / SCORES_FILE, data)


def read_scores(folder: Path) -> dict[str, np.ndarray]:
    """The columns `write_scores` wrote: "idx" (int) and one float array per score (NaN for null)."""
    import gzip

    path = Path(folder) / SCORES_FILE
    try:
        data = json.loads(gzip.decompress(path.read_bytes()))
        columns = data["columns"]
        table = {name: np.array([math.nan if v is None else v for v in values], dtype=np.float64)
                 for name, values in columns.items() if name != "idx"}
        table["idx"] = np.array(columns["idx"], dtype=np.int64)
    except FileNotFoundError:
        raise HarnessError(f"{path} is missing: per-example scores are stored when a run is scored; "
                           f"run `harness rescore {folder}` to write them") from None
    except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise HarnessError(f"{path} is damaged ({exc}); run `harness rescore {folder}` to rewrite "
                           "it") from None
    if any(values.shape != table["idx"].shape for values in table.values()):
        raise HarnessError(f"{path}: columns of different lengths; run `harness rescore {folder}`")
    return table
