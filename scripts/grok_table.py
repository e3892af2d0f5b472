"""Print the grok family's curve over training steps from a sweep's index.csv (markdown).

Usage:
    harness sweep --family grok --revisions all --tasks grok/modular_addition --out OUT
    python scripts/grok_table.py OUT [--steps 200,300,400]

Columns: train and held-out exact match, held-out target log-prob (the natural boundary's
" 46": the learnt space, ~0, plus the number) and held-out p_tok, each the mean over examples.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

COLUMNS = (("train", "exact_str_match"), ("heldout", "exact_str_match"),
           ("heldout", "target_logprob"), ("heldout", "p_tok"))
TASK = "grok/modular_addition"


def table(index: Path, steps: set[int] | None = None) -> str:
    values: dict[int, dict[tuple[str, str], float]] = {}
    with index.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["family"] != "grok" or not row["task"].startswith(TASK + "/"):
                continue
            key = (row["task"].rsplit("/", 1)[1], row["metric"])
            if key in COLUMNS and row["step"]:
                values.setdefault(int(row["step"]), {})[key] = float(row["mean"])
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
    parser.add_argument("out", type=Path, help="the sweep's --out folder (holds index.csv)")
    parser.add_argument("--steps", help="comma-separated steps to show (default: all)")
    args = parser.parse_args(argv)
    index = args.out / "index.csv"
    if not index.is_file():
        print(f"grok_table: {index} missing; run the sweep first (see --help)", file=sys.stderr)
        return 2
    steps = {int(s) for s in args.steps.split(",")} if args.steps else None
    print(table(index, steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
