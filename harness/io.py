"""Crash-safe file writes: nothing is ever left half-written under its final name."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from harness.errors import HarnessError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_dirs(folder: Path) -> None:
    """`mkdir -p`, with a failure (a read-only or virtual file system such as /proc, no
    permission, a file in the way) as one clear line that keeps its cause."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HarnessError(f"cannot create the folder {folder} ({exc.strerror or exc}); choose "
                           "another --out, or fix its permissions") from exc


def check_writable(folder: Path) -> None:
    """Fail now, in one line, if results cannot be written under `folder` (created if need be),
    rather than after a model has loaded."""
    make_dirs(folder)
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise HarnessError(f"cannot write in {folder} ({exc.strerror or exc}); choose another "
                           "--out, or fix its permissions") from exc


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """`atomic_write_text` for bytes (a gzip file)."""
    path = Path(path)
    make_dirs(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise HarnessError(f"cannot write in {path.parent} ({exc.strerror or exc}); choose "
                           "another --out, or fix its permissions") from exc
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise HarnessError(f"cannot write {path} ({exc.strerror or exc}); free disk space or "
                           "choose another --out; existing results were left untouched") from exc


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
