"""Print the grok family's curve over training steps from a sweep's index (markdown).

Usage:
    harness sweep --family grok --revisions all --tasks grok/modular_addition --out OUT
    python scripts/grok_table.py OUT [--steps 200,300,400]

Columns: train and held-out exact match, held-out target log-prob (the natural boundary's
" 46": the learnt space, ~0, plus the number) and held-out p_tok, each the mean over examples.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # harness, when the package is not installed

from harness.errors import HarnessError  # noqa: E402
from harness.index import records  # noqa: E402

COLUMNS = (("train", "exact_str_match"), ("heldout", "exact_str_match"),
           ("heldout", "target_logprob"), ("heldout", "p_tok"))
TASK = "grok/modular_addition"


def table(out: Path, steps: set[int] | None = None) -> str:
    values: dict[int, dict[tuple[str, str], float]] = {}
    wanted = ["family", "task", "step", "shots", *{f"{metric}.mean" for _, metric in COLUMNS}]
    for row in records(out, wanted):
        if (row["family"] != "grok" or row["shots"] != 0 or row["step"] is None
                or not row["task"].startswith(TASK + "/")):
            continue
        for subtask, metric in COLUMNS:
            mean = row.get(f"{metric}.mean")
            if row["task"].endswith("/" + subtask) and mean is not None and not math.isnan(mean):
                values.setdefault(int(row["step"]), {})[(subtask, metric)] = float(mean)
    lines = ["| step | train EM | held-out EM | held-out target log-prob | held-out p_tok |",
             "|---|---|---|---|---|"]
    for step in sorted(values):
        if steps and step not in steps:
            continue
        cells = [f"{values[step].get(c, float('nan')):.3f}" for c in COLUMNS]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the sweep's --out folder (holds index.parquet)")
    parser.add_argument("--steps", help="comma-separated steps to show (default: all)")
    args = parser.parse_args(argv)
    steps = {int(s) for s in args.steps.split(",")} if args.steps else None
    try:
        print(table(args.out, steps))
    except HarnessError as exc:
        print(f"grok_table: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
