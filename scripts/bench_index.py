#!/usr/bin/env python3
"""Time the Parquet results index: full build, one run's update, and load.

Usage:
    python scripts/bench_index.py                    # committed results/, then 50,000 runs
    python scripts/bench_index.py --results results --synthetic 50000 --updates 20

Nothing under the results folder is written: the index is built in a temporary folder from
the committed summaries. The synthetic index repeats the committed runs' rows (real
columns and values) under new run folders and revisions until it has `--synthetic` rows;
an update is one finished run's summary replacing its row (and one adding a new row), as a
sweep does after each checkpoint. For comparison the old index.json is loaded if present.
Wall-clock and CPU seconds are both printed (they differ on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness import index  # noqa: E402

# CPU seconds of every timed call (all threads): on a shared machine the wall clock also counts
# other users' processes, the CPU time of this one does not
CPU_TIMES: list[float] = []


def _timed(fn, *args):
    started, cpu_started = time.perf_counter(), time.process_time()
    value = fn(*args)
    CPU_TIMES.append(time.process_time() - cpu_started)
    return value, time.perf_counter() - started


def _update_times(out: Path, summaries: list[dict], n_updates: int) -> list[float]:
    """Seconds per `index.update` of one run: half replace a row, half add one."""
    times = []
    for k in range(n_updates):
        summary = json.loads(json.dumps(summaries[k % len(summaries)]))
        if k % 2:
            summary["model"]["revision"] = f"bench{k}"  # a new run: one more row
        times.append(_timed(index.update, out, [summary])[1])
    cpu = CPU_TIMES[-n_updates:]
    print(f"  update CPU time: median {statistics.median(cpu):.3f} s, max {max(cpu):.3f} s")
    return times


def _synthetic(rows: list[dict], n_rows: int) -> list[dict]:
    """`n_rows` rows: the real ones, then copies under new revisions and run folders."""
    out = []
    for k in range(n_rows):
        row = dict(rows[k % len(rows)])
        copy_number = k // len(rows)
        if copy_number:
            row["revision"] = f"{row['revision']}-copy{copy_number}"
            row["run_dir"] = f"{row['run_dir']}-copy{copy_number}"
        out.append(row)
    return out


def _report(label: str, n_rows: int, build_s: float, updates: list[float], load_s: float,
            size: int) -> None:
    print(f"{label}: {n_rows} runs, {size / 1e6:.2f} MB; build {build_s:.2f} s; update one run "
          f"median {statistics.median(updates):.3f} s (max {max(updates):.3f} s, "
          f"{len(updates)} updates); load {load_s:.3f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=REPO / "results")
    parser.add_argument("--synthetic", type=int, default=50_000)
    parser.add_argument("--updates", type=int, default=20)
    args = parser.parse_args()

    paths = sorted((args.results / "runs").rglob("summary.json"))
    if not paths:
        sys.exit(f"error: no summaries under {args.results / 'runs'}")
    summaries = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    rows = [index.row(s, p.parent.relative_to(args.results).as_posix())
            for s, p in zip(summaries, paths)]
    with tempfile.TemporaryDirectory() as tmp:
        real, synthetic = Path(tmp) / "real", Path(tmp) / "synthetic"
        real.mkdir()
        synthetic.mkdir()
        _, build_s = _timed(index.write_rows, real, rows)
        _, load_s = _timed(index.load, real)
        print(f"  load CPU time {CPU_TIMES[-1]:.3f} s")
        updates = _update_times(real, summaries, args.updates)
        _report("committed", len(rows), build_s, updates, load_s,
                (real / index.INDEX_FILE).stat().st_size)

        many = _synthetic(rows, args.synthetic)
        _, build_s = _timed(index.write_rows, synthetic, many)
        frame, load_s = _timed(index.load, synthetic)
        print(f"  load CPU time {CPU_TIMES[-1]:.3f} s")
        assert len(frame) == args.synthetic
        updates = _update_times(synthetic, summaries, args.updates)
        _report("synthetic", args.synthetic, build_s, updates, load_s,
                (synthetic / index.INDEX_FILE).stat().st_size)
    old = args.results / "index.json"
    if old.is_file():
        _, old_s = _timed(lambda: json.loads(old.read_text(encoding="utf-8")))
        print(f"for comparison: the old {old.name} ({old.stat().st_size / 1e6:.1f} MB) loads in "
              f"{old_s:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
