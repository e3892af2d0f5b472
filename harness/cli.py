"""The `harness` command line: parse, call one library function, print.

Every user-fixable problem surfaces as a `HarnessError` and is printed as one line on
stderr with exit status 2; nothing here holds logic the library lacks.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from harness import distributed
from harness.errors import HarnessError

Command = Callable[[argparse.Namespace], int]


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; use 0 or more")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be 1 or more")
    return value


def cmd_tasks(args: argparse.Namespace) -> int:
    from harness.tasks import available_tasks, load_tasks, programmatic_tasks

    rows = [("task", "examples", "choices", "preferred metric", "metrics")]
    total = 0
    for top in available_tasks(args.dir):
        for task in load_tasks(top, args.dir):
            choices = "-" if task.n_choices is None else (
                str(task.n_choices[0]) if task.n_choices[0] == task.n_choices[1]
                else f"{task.n_choices[0]}-{task.n_choices[1]}")
            rows.append((task.name, str(len(task.examples)), choices, task.preferred_score,
                         ",".join(task.metrics)))
            total += len(task.examples)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print(f"{len(rows) - 1} (sub)tasks, {total} examples")
    skipped = programmatic_tasks(args.dir)
    if skipped:
        print(f"skipped {len(skipped)} programmatic task(s), Python code the harness never runs: "
              f"{', '.join(skipped)}")
    return 0


def cmd_prompts(args: argparse.Namespace) -> int:
    from harness.tasks import load_tasks, render

    for task in load_tasks(args.task, args.tasks_dir):
        for prompt in render(task, args.shots, args.limit):
            print(json.dumps(prompt.to_json(), ensure_ascii=False))
    return 0


def _shots_list(text: str) -> tuple[int, ...]:
    values = tuple(_non_negative_int(part) for part in text.split(",") if part.strip())
    if not values:
        raise argparse.ArgumentTypeError("give at least one shot count, e.g. 0 or 0,1,3")
    return values


def _batch_size(text: str) -> str:
    if text != "auto":
        _positive_int(text)
    return text


def _add_tasks_dir(p: argparse.ArgumentParser, flag: str = "--tasks-dir") -> None:
    p.add_argument(flag, dest="tasks_dir" if flag == "--tasks-dir" else "dir", type=Path,
                   default=None, help="folder of BIG-bench tasks that names resolve in (default: "
                   "the bundled tasks/bigbench, or $HARNESS_TASKS_DIR), e.g. tasks/bigbench-all "
                   "from scripts/fetch_bigbench_tasks.py --all")


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--revision", help="hub revision (e.g. step3000) or family checkpoint (stepN)")
    p.add_argument("--batch-size", type=_batch_size, default="auto",
                   help="auto (token budget, backs off on CUDA OOM) or rows per batch")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda[:N]")
    p.add_argument("--dtype", default="auto",
                   help="auto = float32, the reference; bfloat16/float16 are speed modes")
    p.add_argument("--boundary", default="natural", choices=("natural", "bigbench"),
                   help="prompt/continuation tokenisation (natural: trailing space joins the "
                        "continuation; bigbench: separate, as BIG-bench's HF model)")
    p.add_argument("--allow-pickle", action="store_true",
                   help="allow loading pickled (*.bin) weights, which can run code")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tasks", default="emoji_movie,periodic_elements,arithmetic",
                   help="comma-separated tasks or task/subtask (default: all three), or paths "
                        "to a BIG-bench task.json or task folder")
    _add_tasks_dir(p)
    p.add_argument("--shots", type=_shots_list, default=(0,), help="shot counts, e.g. 0 or 0,1,3")
    p.add_argument("--limit", type=_positive_int, default=None,
                   help="at most K examples per subtask (BIG-bench's max_examples draw)")
    p.add_argument("--out", type=Path, default=Path("results"), help="results root (default results)")
    p.add_argument("--max-new-tokens", type=_positive_int, default=None,
                   help="generation budget in tokens (default: 16 for arithmetic, else 32)")
    p.add_argument("--no-early-stop", action="store_true",
                   help="always generate --max-new-tokens tokens (early stopping never changes "
                        "the scored answer; this checks it)")
    p.add_argument("--bigbench-max-chars", type=_positive_int, default=None,
                   help="cut generations to N characters before post-processing, as BIG-bench's "
                        "evaluate script does with 30 (off by default)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a results folder that holds a different run")
    p.add_argument("--demo-labels", default="true", choices=("true", "flipped", "unrelated"),
                   help="answers shown in the few-shot demonstrations: the true ones, a fixed "
                        "wrong mapping (flipped) or unrelated words")
    p.add_argument("--chunk-size", type=_positive_int, default=128,
                   help="examples written per step to examples.jsonl: what a killed run can "
                        "lose (default 128)")


def _settings(args: argparse.Namespace):
    from harness.runner import EvalSettings, GenerationSettings

    return EvalSettings(
        tasks=tuple(t for t in args.tasks.split(",") if t.strip()), shots=args.shots,
        limit=args.limit, out=args.out, overwrite=args.overwrite, chunk_size=args.chunk_size,
        demo_labels=args.demo_labels, tasks_dir=args.tasks_dir,
        generation=GenerationSettings(max_new_tokens=args.max_new_tokens,
                                      early_stop=not args.no_early_stop,
                                      max_chars=args.bigbench_max_chars))


def cmd_eval(args: argparse.Namespace) -> int:
    from harness.display import side_by_side
    from harness.index import update as update_index
    from harness.models import load_model, resolve
    from harness.runner import evaluate
    from harness.tasks import check_shots_and_limit, load_tasks

    settings = _settings(args)
    resolve(args.model, args.revision)  # fail on a typo before loading anything
    for task in load_tasks(settings.tasks, settings.tasks_dir):
        for shots in settings.shots:
            check_shots_and_limit(task, shots, settings.limit)
    started = time.perf_counter()
    backend = load_model(args.model, args.revision, dtype=args.dtype, device=args.device,
                         batch_size=args.batch_size, boundary=args.boundary,
                         allow_pickle=args.allow_pickle)
    loaded = time.perf_counter()
    summaries = evaluate(backend, settings)
    if not distributed.current().is_main:
        return 0
    update_index(settings.out, summaries)  # the results index holds every run, eval's too
    info = backend.info
    print(f"{info.name}@{info.revision}: {info.total_params:,} parameters "
          f"({info.non_embedding_params:,} non-embedding), {info.dtype} on {info.device}, "
          f"batch size {args.batch_size}, boundary {info.boundary}")
    print(side_by_side(summaries))
    print(f"load {loaded - started:.1f} s, evaluation {time.perf_counter() - loaded:.1f} s; "
          f"results in {settings.out / 'runs'}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from harness.display import side_by_side
    from harness.sweep import ModelOptions, Shard, expand, run_sweep

    points = expand(args.models, args.family, args.sizes, args.revisions)
    shard = Shard.parse(args.shard) if args.shard else Shard()
    options = ModelOptions(dtype=args.dtype, device=args.device, batch_size=args.batch_size,
                           boundary=args.boundary, allow_pickle=args.allow_pickle)
    started = time.perf_counter()
    summaries = run_sweep(points, _settings(args), options, shard=shard)
    if not distributed.current().is_main:
        return 0
    if summaries:
        print(side_by_side(summaries, with_model=True))
    print(f"{len(points)} checkpoint(s), {len(summaries)} run(s) evaluated in "
          f"{time.perf_counter() - started:.1f} s (finished runs are skipped)"
          f"{'' if shard.count == 1 else f', shard {shard.index}/{shard.count}'}; index in "
          f"{args.out / 'index.parquet'}")
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from harness.index import INDEX_FILE, rebuild

    started = time.perf_counter()
    n_runs = rebuild(args.results)
    print(f"{args.results / INDEX_FILE}: {n_runs} run(s) indexed in "
          f"{time.perf_counter() - started:.1f} s")
    return 0


def cmd_rescore(args: argparse.Namespace) -> int:
    from harness.display import side_by_side
    from harness.results import find_runs
    from harness.runner import summarize_run

    folders = find_runs(args.path)
    if not folders:
        raise HarnessError(f"no run folders (with examples.jsonl) under {args.path}")
    summaries = [summarize_run(folder) for folder in folders]
    print(side_by_side(summaries, with_model=len({s["model"]["name"] for s in summaries}) > 1))
    print(f"rescored {len(summaries)} run(s) from stored outputs")
    return 0


def cmd_pack(args: argparse.Namespace) -> int:
    from harness.results import find_runs, pack

    folders = find_runs(args.path)
    if not folders:
        raise HarnessError(f"no run folders under {args.path}")
    before = after = 0
    for folder in folders:
        b, a = pack(folder)
        before, after = before + b, after + a
    print(f"packed {len(folders)} run(s): {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report import build_report, figure_files

    index = build_report(args.results, x_axis=args.x)
    print(f"{index} ({len(figure_files(index.parent))} figures, each as PNG and SVG)")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from harness.models import aliases

    table = aliases()
    width = max(len(name) for name in table)
    for name, what in table.items():
        print(f"{name.ljust(width)}  {what}")
    print("also: a hub id (owner/name), a folder saved with save_pretrained, or a .gguf file")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what, and where to read more)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="harness",
        description="Measure emergence: BIG-bench tasks on real checkpoints, every metric side "
                    "by side.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)

    p = sub.add_parser("tasks", help="list tasks and subtasks with example and choice counts")
    _add_tasks_dir(p, "--dir")
    p.set_defaults(func=cmd_tasks)

    p = sub.add_parser("prompts", help="print the exact prompts BIG-bench would give a model (JSONL)")
    p.add_argument("task", help="emoji_movie, periodic_elements[/subtask_N], arithmetic[/3_digit_addition]")
    p.add_argument("--shots", type=_non_negative_int, default=0, help="few-shot examples (default 0)")
    p.add_argument("--limit", type=_positive_int, default=None,
                   help="at most K queries per subtask (BIG-bench's max_examples draw)")
    _add_tasks_dir(p)
    p.set_defaults(func=cmd_prompts)

    p = sub.add_parser("eval", help="evaluate one model on tasks; print every metric side by side")
    p.add_argument("--model", required=True, help="alias (harness models), hub id, folder or .gguf")
    _add_model_options(p)
    _add_run_options(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("sweep", help="evaluate many checkpoints (sizes x training steps)")
    which = p.add_argument_group("checkpoints")
    which.add_argument("--models", help="comma-separated models (aliases, hub ids, folders)")
    which.add_argument("--family", help="pythia, pythia-deduped, pico, pico-scratchpad, ...")
    which.add_argument("--sizes", help="sizes of --family, e.g. 70m,160m,410m")
    which.add_argument("--revisions", help="stepN,stepM,... for every model, or 'all' "
                                           "(every checkpoint of a local family)")
    p.add_argument("--shard", metavar="I/N",
                   help="run only the I-th (0-based) of N disjoint slices of the sweep's runs, "
                        "e.g. $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT in a job array")
    _add_model_options(p)
    _add_run_options(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("index", help="rebuild RESULTS/index.parquet from every summary.json")
    p.add_argument("results", type=Path, nargs="?", default=Path("results"),
                   help="results root holding runs/ (default results)")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("rescore", help="recompute summaries from stored raw outputs (no model)")
    p.add_argument("path", type=Path, nargs="?", default=Path("results/runs"),
                   help="a run folder or a folder of runs (default results/runs)")
    p.set_defaults(func=cmd_rescore)

    p = sub.add_parser("pack", help="gzip finished runs' examples.jsonl (for committing results)")
    p.add_argument("path", type=Path, nargs="?", default=Path("results/runs"))
    p.set_defaults(func=cmd_pack)

    p = sub.add_parser("report", help="figures, emergence verdicts and one HTML page for a results folder")
    p.add_argument("results", type=Path, nargs="?", default=Path("results"),
                   help="results root holding runs/ (default results); writes RESULTS/report/")
    p.add_argument("--x", choices=("non_embedding", "total"), default="non_embedding",
                   help="parameter axis of the figures and size series (default non_embedding)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("models", help="list model aliases")
    p.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `harness prompts ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130
