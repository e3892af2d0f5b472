"""Usage:
    python -m harness.family train --family pico [--out families/pico] [--jobs 2]
    python -m harness.family train --family mini --out /tmp/mini
    python -m harness.family list
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from harness.errors import HarnessError
from harness.family.recipes import RECIPES
from harness.repo import REPO


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.family", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train (or resume) a family")
    train.add_argument("--family", default="pico", choices=sorted(RECIPES))
    train.add_argument("--out", type=Path, help="output folder (default families/<family>)")
    train.add_argument("--jobs", type=int, default=1, help="sizes trained in parallel")
    train.add_argument("--threads", type=int, help="torch threads per job (default: cores/jobs)")
    train.add_argument("--sizes", help="comma-separated subset of sizes")
    sub.add_parser("list", help="list the recipes and their sizes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.command == "list":
            for name, recipe in RECIPES.items():
                sizes = ", ".join(s.name for s in recipe.sizes)
                print(f"{name}: {recipe.steps} steps x {recipe.batch_size} x {recipe.seq_len} "
                      f"({recipe.style}); sizes {sizes}")
            return 0
        from harness.family.train import train_family

        recipe = RECIPES[args.family]
        out = args.out or REPO / "families" / recipe.family
        sizes = args.sizes.split(",") if args.sizes else None
        manifest = train_family(recipe, out, jobs=args.jobs, sizes=sizes, threads=args.threads)
        for size in manifest["sizes"]:
            print(f"{size['name']}: {size['non_embedding_params']:,} non-embedding params, "
                  f"eval loss {size['final_eval_loss']:.4f}, {size['train_time_s']:.0f} s")
        print(f"wrote {out / 'family.json'}")
        return 0
    except HarnessError as exc:
        print(f"harness.family: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
