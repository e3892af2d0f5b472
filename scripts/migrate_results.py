"""Rewrite committed results in today's machine-independent form (no re-evaluation).

    python scripts/migrate_results.py [results]

Every manifest's identity is upgraded to the content-only form (harness.results
.upgrade_identity), and every absolute path in a run's manifest.json and summary.json or in
bench/bench.json is written as `harness.locations.portable` writes it (relative to the
repository, or `<dist>==<version>:<file>`). Run it on the machine that made the results:
paths are recognised where they point on that machine. Rebuild the index afterwards
(`harness index results`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from harness.io import atomic_write_json
from harness.locations import is_machine_path, portable
from harness.results import upgrade_identity


def _portable_strings(value: Any) -> Any:
    if isinstance(value, str):
        return portable(value) if is_machine_path(value) else value
    if isinstance(value, list):
        return [_portable_strings(v) for v in value]
    if isinstance(value, dict):
        return {k: _portable_strings(v) for k, v in value.items()}
    return value


def migrate(path: Path) -> bool:
    data = json.loads(path.read_text(encoding="utf-8"))
    new = _portable_strings(data)
    if path.name == "manifest.json":
        new["identity"] = upgrade_identity(new["identity"])
    if new == data:
        return False
    atomic_write_json(path, new)
    return True


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else "results")
    files = [*sorted(root.glob("runs/**/manifest.json")), *sorted(root.glob("runs/**/summary.json")),
             *sorted(root.glob("bench/*.json"))]
    changed = sum(migrate(path) for path in files)
    print(f"migrated {changed} of {len(files)} files under {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
