#!/usr/bin/env python3
"""Re-derive tasks/bigbench/ from BIG-bench's own PyPI release and verify it.

Usage:
    python scripts/fetch_bigbench_tasks.py                 # download, extract, verify
    python scripts/fetch_bigbench_tasks.py --sdist FILE    # use an sdist already on disk
    python scripts/fetch_bigbench_tasks.py --verify-only   # check tasks/bigbench against MANIFEST
    python scripts/fetch_bigbench_tasks.py --all --sdist FILE   # every JSON task -> tasks/bigbench-all/
    python scripts/fetch_bigbench_tasks.py --all --verify-only  # check tasks/bigbench-all/
    harness tasks --dir tasks/bigbench-all                       # list them

The task files are taken byte for byte from the sdist `bigbench==1.0.0` on PyPI
(`bigbench/benchmark_tasks/<task>/.../task.json`, ~360 MB download) and every file is
checked against tasks/bigbench/MANIFEST.sha256. Exits non-zero on any mismatch.

`--all` takes every JSON task of the sdist (1,041 task.json files, 1.7 GB; canaries kept,
as every file is copied unchanged) into `--dest` (default tasks/bigbench-all/, which git
ignores: too large to commit). There the sdist, pinned by its sha256, is the trust anchor:
MANIFEST.sha256 is written from the sdist's bytes and the files on disk are checked against
it. Programmatic tasks (a task.py, no task.json) are code: their names go to PROGRAMMATIC.txt
so `harness tasks --dir` can say why they are skipped; no .py file is ever extracted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

SDIST_NAME = "bigbench"
SDIST_FILE = "bigbench-1.0.0.tar.gz"
# sha256 of bigbench-1.0.0.tar.gz as PyPI publishes it (uploaded 2022-06-30).
SDIST_SHA256 = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"
SDIST_ROOT = "bigbench-1.0.0/bigbench/benchmark_tasks/"
TASKS = ("emoji_movie", "periodic_elements", "arithmetic")
REPO = Path(__file__).resolve().parents[1]
DEST = REPO / "tasks" / "bigbench"
MANIFEST = DEST / "MANIFEST.sha256"
DEST_ALL = REPO / "tasks" / "bigbench-all"
PROGRAMMATIC = "PROGRAMMATIC.txt"  # read by harness.tasks.programmatic_tasks


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(path: Path) -> dict[str, str]:
    """`sha256sum` format: '<hex>  <relative path>' per line."""
    entries = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, rel = line.split(maxsplit=1)
            entries[rel.strip()] = digest
    return entries


def download_sdist(workdir: Path) -> Path:
    """Download bigbench-1.0.0.tar.gz from the package index and check its sha256.

    `pip download` cannot fetch this sdist: pip prepares its metadata, which declares a
    direct-URL dependency (bleurt), and refuses it. So the file is taken from the index pip
    uses (PIP_INDEX_URL, default PyPI) through the standard JSON simple API (PEP 691), and
    both the index's sha256 and the one pinned here must match.
    """
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    request = urllib.request.Request(f"{index}/{SDIST_NAME}/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            listing = json.load(response)
        entry = next(f for f in listing["files"] if f["filename"] == SDIST_FILE)
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        sys.exit(f"error: cannot find {SDIST_FILE} on {index} ({exc}); download it by hand and "
                 "pass --sdist FILE")
    if entry.get("hashes", {}).get("sha256", SDIST_SHA256) != SDIST_SHA256:
        sys.exit(f"error: {index} lists {SDIST_FILE} with another sha256 than the pinned one")
    target = workdir / SDIST_FILE
    print(f"downloading {entry['url']} (~360 MB) ...", file=sys.stderr)
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(entry["url"], timeout=60) as response, open(target, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except OSError as exc:
        sys.exit(f"error: downloading {entry['url']} failed ({exc}); pass --sdist FILE instead")
    if digest.hexdigest() != SDIST_SHA256:
        sys.exit(f"error: {target} has sha256 {digest.hexdigest()}, expected {SDIST_SHA256}")
    return target


def check_sdist(sdist: Path) -> None:
    """Refuse an sdist that is not BIG-bench 1.0.0's (by its pinned sha256)."""
    digest = hashlib.sha256()
    with open(sdist, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != SDIST_SHA256:
        sys.exit(f"error: {sdist} is not {SDIST_FILE} (sha256 {digest.hexdigest()}, expected "
                 f"{SDIST_SHA256})")


def extract_task_files(sdist: Path, tasks: tuple[str, ...] | None = TASKS) -> dict[str, bytes]:
    """{relative path under benchmark_tasks: bytes} of the task.json files of `tasks`
    (None: of every task)."""
    files = {}
    with tarfile.open(sdist, "r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile() or not member.name.startswith(SDIST_ROOT):
                continue
            rel = member.name[len(SDIST_ROOT):]
            if (tasks is None or rel.split("/")[0] in tasks) and rel.endswith("/task.json"):
                handle = tar.extractfile(member)
                assert handle is not None
                files[rel] = handle.read()
    return files


def programmatic_tasks(sdist: Path) -> list[str]:
    """Top-level task folders of the sdist with a task.py and no task.json (code: skipped)."""
    with tarfile.open(sdist, "r:gz") as tar:
        rels = [m.name[len(SDIST_ROOT):] for m in tar.getmembers()
                if m.isfile() and m.name.startswith(SDIST_ROOT)]
    with_json = {r.split("/")[0] for r in rels if r.endswith("/task.json")}
    with_code = {r.split("/")[0] for r in rels if r.endswith("/task.py")}
    return sorted(with_code - with_json)


def verify_tree(expected: dict[str, str], dest: Path = DEST) -> list[str]:
    problems = []
    for rel, digest in sorted(expected.items()):
        path = dest / rel
        if not path.is_file():
            problems.append(f"missing: {_shown(dest / rel)}")
        elif sha256_of(path.read_bytes()) != digest:
            problems.append(f"sha256 differs: {_shown(dest / rel)}")
    return problems


def _shown(path: Path) -> str:
    """A path relative to the repository when it is inside it (messages stay short)."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def fetch_all(sdist: Path, dest: Path) -> int:
    """Extract every JSON task of the sdist into `dest`, write its manifest, verify."""
    files = extract_task_files(sdist, tasks=None)
    if not files:
        sys.exit(f"error: no task.json files found in {sdist}")
    for rel, data in sorted(files.items()):
        _write_atomic(dest / rel, data)
    lines = [f"{sha256_of(data)}  {rel}" for rel, data in sorted(files.items())]
    _write_atomic(dest / "MANIFEST.sha256", ("\n".join(lines) + "\n").encode("utf-8"))
    skipped = programmatic_tasks(sdist)
    _write_atomic(dest / PROGRAMMATIC, ("\n".join(skipped) + "\n").encode("utf-8"))
    for name in ("LICENSE", "NOTICE"):  # BIG-bench's Apache-2.0 license travels with its files
        _write_atomic(dest / name, (DEST / name).read_bytes())
    problems = verify_tree(read_manifest(dest / "MANIFEST.sha256"), dest)
    for problem in problems:
        print(problem, file=sys.stderr)
    n_tasks = len({rel.split("/")[0] for rel in files})
    print(f"extracted and verified {len(files)} task files ({n_tasks} JSON tasks) into "
          f"{_shown(dest)}; {len(skipped)} programmatic tasks skipped (listed in {PROGRAMMATIC})")
    return 1 if problems else 0


def verify_only(manifest: Path, dest: Path) -> int:
    if not manifest.is_file():
        sys.exit(f"error: {_shown(manifest)} does not exist; extract the tasks first")
    expected = read_manifest(manifest)
    problems = verify_tree(expected, dest)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(expected) - len(problems)} files verified, {len(problems)} problems")
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdist", type=Path, help="path to bigbench-1.0.0.tar.gz (skip download)")
    parser.add_argument("--verify-only", action="store_true", help="only check tasks/bigbench")
    parser.add_argument("--write-manifest", action="store_true",
                        help="(maintainers) write MANIFEST.sha256 from the sdist instead of checking")
    parser.add_argument("--all", action="store_true",
                        help="every JSON task of the sdist into --dest (not committed)")
    parser.add_argument("--dest", type=Path, default=DEST_ALL,
                        help="folder for --all (default tasks/bigbench-all, git-ignored)")
    args = parser.parse_args()

    if args.verify_only:
        dest = args.dest if args.all else DEST
        return verify_only(dest / "MANIFEST.sha256", dest)

    with tempfile.TemporaryDirectory() as tmp:
        if args.sdist:
            check_sdist(args.sdist)
        sdist = args.sdist or download_sdist(Path(tmp))
        if args.all:
            return fetch_all(sdist, args.dest)
        files = extract_task_files(sdist)
    if not files:
        sys.exit(f"error: no task files for {TASKS} found in {sdist}")

    if args.write_manifest:
        lines = [f"{sha256_of(data)}  {rel}" for rel, data in sorted(files.items())]
        MANIFEST.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {MANIFEST.relative_to(REPO)} ({len(lines)} files)")

    expected = read_manifest(MANIFEST)
    mismatched = [rel for rel, data in files.items() if expected.get(rel) != sha256_of(data)]
    if mismatched or set(expected) != set(files):
        for rel in sorted(mismatched):
            print(f"sdist file not in manifest or different: {rel}", file=sys.stderr)
        for rel in sorted(set(expected) - set(files)):
            print(f"manifest file not in sdist: {rel}", file=sys.stderr)
        return 1
    for rel, data in sorted(files.items()):
        path = DEST / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    problems = verify_tree(expected)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"extracted and verified {len(files)} task files into {DEST.relative_to(REPO)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
