"""
Benchmark this harness against lm-evaluation-harness: one model, the same examples, the same
prompt strings, in one run. Timings, peak memory, and agreement of the two engines' numbers.

    make bench                                    # = python scripts/bench.py (all sections)
    python scripts/bench.py --quick               # smoke run on tiny subsets (minutes on CPU)
    python scripts/bench.py --model path/to/checkpoint --repeats 5
    python scripts/bench.py --workloads emoji_mc,arith_loglik --limit 20
    python scripts/bench.py --render results/bench/bench.json   # tables again, nothing measured

Needs the optional extra: pip install -e ".[bench]" (lm-eval 0.4.x). Writes
results/bench/bench.json and bench.md (--out) and prints the markdown.

Workloads: emoji_mc (emoji_movie, 100 x 5 choices), periodic_mc (periodic_elements/subtask_0,
118 x 118), arith_gen (greedy generation on --arith-tasks), arith_loglik (log-prob of the
target on the same), scaling (time vs 1x/2x/4x examples and choices), gpu (tokens/s and MFU on
random Pythia-shaped models; skipped without CUDA). Each engine's timed part runs in a worker
process of its own per workload, so its peak RSS is its own; model load is timed apart.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

SCRIPT = Path(__file__).resolve()
REPO = SCRIPT.parents[1]
sys.path.insert(0, str(SCRIPT.parent))  # bench_lmeval/
sys.path.insert(1, str(REPO))  # harness, when the package is not installed

from bench_lmeval import compare, gpu, report  # noqa: E402
from bench_lmeval import workloads as wl  # noqa: E402
from bench_lmeval.engines import Job  # noqa: E402
from bench_lmeval.workers import WorkerError, Workers, engine_summary, median  # noqa: E402

from harness.errors import HarnessError  # noqa: E402
from harness.locations import portable  # noqa: E402
from harness.repo import git_label, git_state  # noqa: E402

SECTIONS = ("emoji_mc", "periodic_mc", "arith_gen", "arith_loglik", "scaling", "fewshot", "gpu")
FEWSHOT_SHOTS = (0, 1, 3)


class BenchError(Exception):
    """A failure the CLI reports in one line."""


@dataclass(frozen=True)
class BenchConfig:
    model: str = "smollm2-135m"
    repeats: int = 3
    repeats_for: tuple[tuple[str, int], ...] = ()  # per-workload overrides, e.g. (("periodic_mc", 1),)
    limit: int | None = None  # examples per workload (per subtask for arithmetic)
    quick: bool = False
    out: Path = Path("results/bench")
    workloads: tuple[str, ...] = SECTIONS
    arith_tasks: tuple[str, ...] = ("arithmetic/2_digit_addition", "arithmetic/3_digit_subtraction")
    arith_limit: int = 100  # per subtask when --limit is not given
    device: str = "auto"
    batch_size_ours: str = "auto"
    batch_size_lmeval: int = 32
    threads: int | None = None
    scale_examples: int = 16  # the 1x point of the scaling table
    scale_choices: int = 16
    fewshot_limit: int = 50  # examples per (sub)task and shot count in the few-shot section
    gpu_shapes: tuple[str, ...] = tuple(gpu.PYTHIA_SHAPES)
    gpu_requests: int = 1000  # per arithmetic subtask, 2-shot prompts
    gpu_batch_size_lmeval: int = 64
    gpu_peak_tflops: float | None = None  # default: the data-sheet peak of the device found
    keep: bool = False  # keep the temporary folder (configs, logs)

    def repeats_of(self, workload: str) -> int:
        return dict(self.repeats_for).get(workload, self.repeats)

    def quick_version(self) -> BenchConfig:
        """Tiny subsets: every code path in a few minutes on a laptop CPU."""
        return replace(self, limit=self.limit or 3, scale_examples=2, scale_choices=4,
                       fewshot_limit=2,
                       gpu_shapes=self.gpu_shapes[:1], gpu_requests=32)


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ sections


def build_workloads(config: BenchConfig) -> list[wl.Workload]:
    arith_limit = config.limit or config.arith_limit
    makers = {
        "emoji_mc": lambda: wl.multiple_choice("emoji_mc", "emoji_movie", config.limit),
        "periodic_mc": lambda: wl.multiple_choice("periodic_mc", "periodic_elements/subtask_0",
                                                  config.limit),
        "arith_gen": lambda: wl.generate("arith_gen", config.arith_tasks, arith_limit),
        "arith_loglik": lambda: wl.target_loglik("arith_loglik", config.arith_tasks, arith_limit),
    }
    return [makers[name]() for name in config.workloads if name in makers]


def job_for(config: BenchConfig, engine: str, model: str, paths: list[Path], tmp: Path,
            **overrides) -> Job:
    base = Job(engine=engine, model=model, workloads=tuple(str(p) for p in paths), out="",
               lmeval_dir=str(tmp / "lmeval"), repeats=config.repeats, dtype="float32",
               device=config.device, threads=config.threads,
               batch_size=config.batch_size_ours if engine == "ours"
               else str(config.batch_size_lmeval),
               modes=("exact", "early") if engine == "ours" else ("exact",),
               extras={"ceiling": engine == "ours"})
    return replace(base, **overrides)


def prepare(workload: wl.Workload, tmp: Path) -> Path:
    wl.write_lmeval_task(workload, tmp / "lmeval")
    return wl.write_workload(workload, tmp / "workloads" / f"{workload.name}.json")


def run_workload(config: BenchConfig, workers: Workers, workload: wl.Workload, tmp: Path,
                 state: dict) -> dict:
    path = prepare(workload, tmp)
    say(f"{workload.name}: {len(workload.docs)} docs, {workload.n_requests} requests")
    repeats = config.repeats_of(workload.name)
    ours = workers.run(job_for(config, "ours", config.model, [path], tmp, repeats=repeats))
    state.setdefault("model_folder", ours.get("model_folder"))
    state.setdefault("model_info", ours.get("model_info"))
    state.setdefault("versions", {}).update(ours["versions"])
    state.setdefault("threads", ours["threads"])
    theirs = workers.run(job_for(config, "lmeval", state["model_folder"], [path], tmp,
                                 repeats=repeats))
    state["versions"].update(theirs["versions"])
    for engine, record in (("ours", ours), ("lmeval", theirs)):
        state.setdefault("load_s", {}).setdefault(engine, []).append(record["load_s"])
        state.setdefault("import_s", {}).setdefault(engine, []).append(record["import_s"])
    exact = next(r for r in ours["runs"] if r["mode"] == "exact")
    their_run = theirs["runs"][0]
    result = {"name": workload.name, "kind": workload.kind, "n_docs": len(workload.docs),
              "repeats": repeats,
              "n_requests": workload.n_requests, "max_new_tokens": workload.max_new_tokens,
              "tasks": sorted({d.task for d in workload.docs}),
              "ours": engine_summary(ours, exact), "lmeval": engine_summary(theirs, their_run),
              "agreement": compare.compare(workload.kind, workload.docs, exact["outputs"],
                                           their_run["outputs"])}
    result["ratio"] = result["lmeval"]["median_s"] / result["ours"]["median_s"]
    result["utilisation"] = utilisation(exact.get("model_flops"), ours.get("ceiling"),
                                        result["ours"]["median_s"], result["lmeval"]["median_s"])
    early = next((r for r in ours["runs"] if r["mode"] == "early"), None)
    if early is not None:
        summary = engine_summary(ours, early)
        summary["accuracy"] = compare.generation_accuracy(early["outputs"], workload.docs)
        summary["mean_new_tokens"] = statistics.fmean(o["n_tokens"] for o in early["outputs"])
        summary["lmeval_exact_over_this"] = result["lmeval"]["median_s"] / summary["median_s"]
        summary["utilisation"] = utilisation(early.get("model_flops"), ours.get("ceiling"),
                                             summary["median_s"], None)
        result["ours_early"] = summary
    say(f"{workload.name}: ours {result['ours']['median_s']:.2f} s, lm-eval "
        f"{result['lmeval']['median_s']:.2f} s ({result['ratio']:.2f}x)")
    return result


def utilisation(model_flops: int | None, ceiling: dict | None, ours_s: float,
                lmeval_s: float | None) -> dict | None:
    """Achieved model FLOP/s and its fraction of the machine's matmul ceiling and of the raw
    forward, both measured in our worker right before the timed runs (bench_lmeval.ceiling).
    lm-eval's figure counts the same model FLOPs (the work the task needs) over its time."""
    if not model_flops or not ceiling:
        return None
    matmul, raw = ceiling["matmul"]["flops_per_s"], ceiling["raw_forward"]["flops_per_s"]
    achieved = model_flops / ours_s
    row = {"model_flops": model_flops, "flops_per_s": achieved, "matmul_ceiling": matmul,
           "raw_forward": raw, "of_matmul": achieved / matmul, "of_raw_forward": achieved / raw}
    if lmeval_s:
        row["lmeval_of_matmul"] = model_flops / lmeval_s / matmul
    return row


def run_scaling(config: BenchConfig, workers: Workers, tmp: Path, state: dict) -> list[dict]:
    e, c = config.scale_examples, config.scale_choices
    points = [("examples", e, c), ("examples", 2 * e, c), ("examples", 4 * e, c),
              ("choices", e, c), ("choices", e, 2 * c), ("choices", e, 4 * c)]
    made: dict[tuple[int, int], wl.Workload] = {}
    for _, n_examples, n_choices in points:
        if (n_examples, n_choices) not in made:
            full = wl.multiple_choice(f"scale_e{n_examples}_c{n_choices}",
                                      "periodic_elements/subtask_0", n_choices=n_choices)
            made[(n_examples, n_choices)] = wl.subset(full, full.name, n_examples)
    paths = [prepare(w, tmp) for w in made.values()]
    say(f"scaling: {len(made)} subsets of periodic_elements/subtask_0")
    ours = workers.run(job_for(config, "ours", config.model, paths, tmp, modes=("exact",)))
    state.setdefault("model_folder", ours.get("model_folder"))
    theirs = workers.run(job_for(config, "lmeval", state["model_folder"], paths, tmp))
    by_name = {w.name: w for w in made.values()}
    rows = []
    for sweep, n_examples, n_choices in points:
        workload = made[(n_examples, n_choices)]
        a = next(r for r in ours["runs"] if r["workload"] == workload.name)
        b = next(r for r in theirs["runs"] if r["workload"] == workload.name)
        ours_s, lmeval_s = median(a["wall_s"]), median(b["wall_s"])
        delta = compare.max_abs_delta(a["outputs"], b["outputs"])["max_abs_delta"]
        rows.append({"sweep": sweep, "n_examples": len(by_name[workload.name].docs),
                     "n_choices": n_choices, "n_requests": workload.n_requests,
                     "ours_s": ours_s, "lmeval_s": lmeval_s, "ratio": lmeval_s / ours_s,
                     "max_abs_delta": delta})
    return rows


def fewshot_workloads(config: BenchConfig) -> list[tuple[int, wl.Workload]]:
    """emoji_mc, arith_loglik and arith_gen at 0, 1 and 3 shots (BIG-bench's demonstrations
    inside each prompt string, so both engines read the same text)."""
    made = []
    for shots in FEWSHOT_SHOTS:
        made += [
            (shots, wl.multiple_choice(f"emoji_mc_{shots}shot", "emoji_movie",
                                       config.fewshot_limit, shots=shots)),
            (shots, wl.target_loglik(f"arith_loglik_{shots}shot", config.arith_tasks,
                                     config.fewshot_limit, shots=shots)),
            (shots, wl.generate(f"arith_gen_{shots}shot", config.arith_tasks,
                                config.fewshot_limit, shots=shots))]
    return made


def fewshot_row(shots: int, workload: wl.Workload, ours: dict, theirs: dict) -> dict:
    a = next(r for r in ours["runs"] if r["workload"] == workload.name)
    b = next(r for r in theirs["runs"] if r["workload"] == workload.name)
    ours_s, lmeval_s = median(a["wall_s"]), median(b["wall_s"])
    n = len(workload.docs)
    row = {"workload": workload.name.rsplit("_", 1)[0], "kind": workload.kind, "shots": shots,
           "n_docs": n, "request_tokens": a["request_tokens"], "ours_s": ours_s,
           "lmeval_s": lmeval_s, "ours_ms_per_doc": 1000 * ours_s / n,
           "lmeval_ms_per_doc": 1000 * lmeval_s / n, "ratio": lmeval_s / ours_s,
           "utilisation": utilisation(a.get("model_flops"), ours.get("ceiling"), ours_s,
                                      lmeval_s)}
    if workload.kind == "generate":
        row["identical"] = compare.compare(workload.kind, workload.docs, a["outputs"],
                                           b["outputs"])["identical_generations"]
    else:
        row["max_abs_delta"] = compare.max_abs_delta(a["outputs"], b["outputs"])["max_abs_delta"]
    return row


def run_fewshot(config: BenchConfig, workers: Workers, tmp: Path, state: dict) -> list[dict]:
    made = fewshot_workloads(config)
    paths = [prepare(w, tmp) for _, w in made]
    say(f"fewshot: {len(made)} workloads at {FEWSHOT_SHOTS} shots")
    ours = workers.run(job_for(config, "ours", config.model, paths, tmp, modes=("exact",)))
    state.setdefault("model_folder", ours.get("model_folder"))
    theirs = workers.run(job_for(config, "lmeval", state["model_folder"], paths, tmp))
    return [fewshot_row(shots, w, ours, theirs) for shots, w in made]


def run_gpu(config: BenchConfig, workers: Workers, tmp: Path, state: dict) -> dict:
    reason = gpu.unavailable_reason()
    if reason:
        say(f"gpu: skipped ({reason})")
        return {"skipped": reason}
    if not state.get("model_folder"):  # the tokenizer comes from the benchmark model
        state["model_folder"] = workers.run(job_for(config, "ours", config.model, [], tmp,
                                                    device="cpu"))["model_folder"]
    shots = 2  # 2-shot arithmetic prompts: ~150 tokens, near the 128 of DESIGN's measurement
    workload = wl.target_loglik("gpu_target", config.arith_tasks, config.gpu_requests, shots=shots)
    path = prepare(workload, tmp)
    name, peak, rows, drifts = None, None, [], []
    for shape_name in config.gpu_shapes:
        folder = tmp / "gpu" / shape_name
        built = subprocess.run([sys.executable, str(SCRIPT), "--build-model", shape_name,
                                "--tokenizer", state["model_folder"], "--into", str(folder)],
                               capture_output=True, text=True, cwd=REPO)
        if built.returncode != 0:
            raise BenchError(f"building the random {shape_name} model failed:\n"
                             + built.stderr[-2000:])
        shape = json.loads((folder / "bench_shape.json").read_text())
        # the weights are saved in bf16, so both runs use the same weights: the drift is the
        # arithmetic's alone
        runs = {}
        for dtype in ("float32", "bfloat16"):
            runs[dtype] = workers.run(job_for(config, "ours", str(folder), [path], tmp,
                                              dtype=dtype, device="cuda", batch_size="auto"))
        ours = runs["bfloat16"]
        tokens = ours["runs"][0]["request_tokens"]
        name = ours.get("device_name", "an unnamed device")
        # None (no MFU) for a GPU missing from the table and no --peak-tflops
        peak = config.gpu_peak_tflops or gpu.peak_tflops(name)
        rows.append(gpu.throughput_row(shape, "ours", runs["float32"], tokens,
                                       gpu.peak_tflops(name, "float32"), dtype="float32"))
        rows.append(gpu.throughput_row(shape, "ours", ours, tokens, peak))
        drifts.append({"shape": shape_name, **compare.drift(runs["float32"]["runs"][0]["outputs"],
                                                            ours["runs"][0]["outputs"])})
        if importlib.util.find_spec("lm_eval") is not None:
            theirs = workers.run(job_for(config, "lmeval", str(folder), [path], tmp,
                                         dtype="bfloat16", device="cuda",
                                         batch_size=str(config.gpu_batch_size_lmeval),
                                         softmax_dtype="float32"))
            rows.append(gpu.throughput_row(shape, "lm-eval", theirs, tokens, peak))
        shutil.rmtree(folder, ignore_errors=True)
        say(f"gpu {shape_name}: " + ", ".join(f"{r['engine']} {r['tokens_per_s']:,.0f} tok/s"
                                              for r in rows if r["shape"] == shape_name))
    return {"device_name": name, "peak_tflops": peak, "shots": shots,
            "n_requests": len(workload.docs), "rows": rows, "bf16_drift": drifts}


# ------------------------------------------------------------------ the run


STATIC_NOTES = (
    "Boundary: ours is 'natural' (the prompt's trailing space joins the continuation; the "
    "whole string is tokenised once and split at the character offset); lm-eval's "
    "`_encode_pair` moves trailing spaces the same way but takes the continuation as the "
    "whole string's tokens after those of the context tokenised alone. The two agree "
    "whenever the context's tokens are a prefix of the whole string's, which the token-count "
    "column checks for every continuation.",
    "Generation: both engines run greedy with no stop rule (lm-eval `until: []`, to which it "
    "adds only the EOS string), i.e. exactly max_gen_toks tokens unless EOS; accuracy is "
    "BIG-bench exact_str_match after `harness.answers.extract_answer` on both raw generations. "
    "Our default mode stops as soon as the post-processed answer can no longer change; its "
    "row shows the time and the ratio of lm-eval's no-stop time to it.",
    "lm-eval scores every (context, continuation) pair as its own row (right-padded batches of "
    "a fixed number of rows; one-token continuations sharing a context reuse logits); ours "
    "encodes each distinct context once and scores all its continuations on its KV cache, "
    "in batches filled to a token budget.",
    "Allocator: on a CPU under Linux/glibc our engine lets malloc keep freed activation "
    "buffers for reuse, as `harness eval` does by default (`harness.allocator`; "
    "`--no-malloc-tuning` or `HARNESS_MALLOC_TUNING=0` turns it off), so a forward pass does "
    "not fault fresh pages in for every tensor; lm-eval runs "
    "with the allocator's defaults, as its users run it. Log-probs do not depend on it.",
)


def auto_notes(workloads: list[dict]) -> list[str]:
    notes = []
    for w in workloads:
        agree, theirs = w["agreement"], w["lmeval"]
        if theirs.get("n_prompt_mismatches"):
            notes.append(f"{w['name']}: {theirs['n_prompt_mismatches']} lm-eval requests differ "
                         f"from our strings, e.g. {theirs['prompt_mismatches'][0]}")
        if w["kind"] == "generate":
            first = agree.get("first_difference")
            if first:
                notes.append(f"{w['name']}: {w['n_docs'] - agree['identical_generations']} "
                             f"generations differ, first {first['task']} #{first['idx']}: ours "
                             f"{first['ours']!r} vs lm-eval {first['lmeval']!r}")
            continue
        own = (theirs.get("lmeval_metrics") or {}).get("acc,none")
        if own is not None and abs(own - agree["accuracy_lmeval"]) > 1e-9:
            notes.append(f"{w['name']}: lm-eval's own acc {own:.4f} differs from the accuracy "
                         f"computed here from its log-likelihoods {agree['accuracy_lmeval']:.4f}")
        if agree.get("token_count_mismatches"):
            notes.append(f"{w['name']}: {agree['token_count_mismatches']} continuations are "
                         f"tokenised differently, first (doc, choice) "
                         f"{agree['first_token_count_mismatch']}")
        if not agree.get("within_tolerance", True):
            notes.append(f"{w['name']}: max |delta log-prob| {agree['max_abs_delta']:.2e} is over "
                         f"{compare.TOLERANCE:g}: {agree.get('worst')}")
    return notes


def agreement_failures(bench: dict) -> list[str]:
    """The contract of the comparison: same strings, log-probs within 1e-3, same accuracy."""
    failures = []
    for w in bench["workloads"]:
        agree = w["agreement"]
        if w["lmeval"].get("n_prompt_mismatches"):
            failures.append(f"{w['name']}: lm-eval saw different prompt strings")
        if not agree.get("within_tolerance", True):
            failures.append(f"{w['name']}: max |delta log-prob| {agree['max_abs_delta']:.2e}")
        if agree["accuracy_ours"] != agree["accuracy_lmeval"]:
            failures.append(f"{w['name']}: accuracy {agree['accuracy_ours']:.4f} (ours) vs "
                            f"{agree['accuracy_lmeval']:.4f} (lm-eval)")
    return failures


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def run(config: BenchConfig) -> dict:
    if config.quick:
        config = config.quick_version()
    unknown = set(config.workloads) - set(SECTIONS)
    if unknown:
        raise BenchError(f"unknown workload(s) {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    for shape in config.gpu_shapes:
        try:
            gpu.shape_dims(shape)
        except ValueError as exc:
            raise BenchError(str(exc)) from None
    if importlib.util.find_spec("lm_eval") is None and set(config.workloads) - {"gpu"}:
        raise BenchError("lm-eval is not installed; run: pip install -e '.[bench]'")
    config = replace(config, device=resolve_device(config.device))
    tmp = Path(tempfile.mkdtemp(prefix="harness_bench_"))
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()[0]
    state: dict = {}
    try:
        workers = Workers(tmp, SCRIPT, REPO)
        results = [run_workload(config, workers, w, tmp, state) for w in build_workloads(config)]
        scaling = run_scaling(config, workers, tmp, state) if "scaling" in config.workloads else []
        fewshot = run_fewshot(config, workers, tmp, state) if "fewshot" in config.workloads else []
        gpu_result = run_gpu(config, workers, tmp, state) if "gpu" in config.workloads else None
    finally:
        if config.keep:
            say(f"kept the work folder {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    info = state.get("model_info") or {}
    return {
        "settings": {**asdict(config), "out": portable(config.out)},
        "environment": {
            "device": config.device, "dtype": "float32", "cpu_count": os.cpu_count(),
            "threads": state.get("threads"), "versions": state.get("versions", {}),
            "started": started.isoformat(timespec="seconds"),
            "loadavg_1m_before": load_before, "loadavg_1m_after": os.getloadavg()[0],
            "git": _git_commit()},
        "model": {"name": config.model, "folder": portable(state.get("model_folder") or ""),
                  "info": info},
        "load_s": {k: median(v) for k, v in state.get("load_s", {}).items()},
        "import_s": {k: median(v) for k, v in state.get("import_s", {}).items()},
        "workloads": results, "overall": overall(results), "scaling": scaling, "fewshot": fewshot,
        "gpu": gpu_result,
        "notes": auto_notes(results) + list(STATIC_NOTES),
    }


def overall(workloads: list[dict]) -> dict | None:
    """The workloads together: the sum of each engine's median times (the same work for both).

    With the utilisation of every workload, also the bound the machine sets: each workload's
    model FLOPs at its own measured matmul ceiling is the least time any engine doing that work
    could take, so lm-eval's time over the sum of those is the largest ratio reachable here."""
    if not workloads:
        return None
    ours = sum(w["ours"]["median_s"] for w in workloads)
    theirs = sum(w["lmeval"]["median_s"] for w in workloads)
    result = {"workloads": [w["name"] for w in workloads], "ours_s": ours, "lmeval_s": theirs,
              "ratio": theirs / ours}
    shares = [w.get("utilisation") for w in workloads]
    if all(shares):
        floor = sum(s["model_flops"] / s["matmul_ceiling"] for s in shares)
        result["at_ceiling"] = {"ours_floor_s": floor, "ratio_bound": theirs / floor,
                                "of_bound": floor / ours}
    return result


def _git_commit() -> str | None:
    return git_label(git_state(()))  # dirty: any file of the checkout


def write(bench: dict, out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(bench, indent=1, ensure_ascii=False) + "\n",
                                    encoding="utf-8")
    markdown = report.render_markdown(bench)
    (out / "bench.md").write_text(markdown, encoding="utf-8")
    return markdown


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--model", default=BenchConfig.model, help="alias, local folder or .gguf (our loader)")
    add("--repeats", type=int, default=None, help="timed repeats per workload (3; --quick: 2)")
    add("--repeats-for", default="", help="per-workload repeats, e.g. periodic_mc=1")
    add("--limit", type=int, default=None, help="examples per workload (arithmetic: per subtask)")
    add("--quick", action="store_true", help="tiny subsets: a smoke run")
    add("--out", type=Path, default=BenchConfig.out)
    add("--workloads", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    add("--arith-tasks", default=",".join(BenchConfig.arith_tasks))
    add("--arith-limit", type=int, default=BenchConfig.arith_limit,
        help="arithmetic examples per subtask when --limit is not given")
    add("--device", default="auto", help="auto, cpu or cuda (both engines)")
    add("--batch-size", default="auto", help="ours: auto (token budget) or rows")
    add("--lmeval-batch-size", type=int, default=BenchConfig.batch_size_lmeval)
    add("--threads", type=int, default=None, help="torch threads in both engines")
    add("--scale-examples", type=int, default=BenchConfig.scale_examples)
    add("--scale-choices", type=int, default=BenchConfig.scale_choices)
    add("--fewshot-limit", type=int, default=BenchConfig.fewshot_limit,
        help="examples per (sub)task and shot count in the few-shot section")
    add("--gpu-shapes", default=",".join(BenchConfig.gpu_shapes),
        help="Pythia names, or d<hidden>l<layers>h<heads>")
    add("--gpu-requests", type=int, default=BenchConfig.gpu_requests,
        help="requests per arithmetic subtask in the GPU section")
    add("--peak-tflops", type=float, default=None,
        help="dense bf16 peak of the GPU for MFU (default: from the device name)")
    add("--keep", action="store_true", help="keep the work folder (configs, logs)")
    add("--render", type=Path, metavar="BENCH_JSON",
        help="rewrite bench.md (and the derived overall) from a stored bench.json; measures nothing")
    # internal: the worker processes
    add("--worker", help=argparse.SUPPRESS)
    add("--build-model", help=argparse.SUPPRESS)
    add("--tokenizer", help=argparse.SUPPRESS)
    add("--into", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def repeats_for(text: str) -> tuple[tuple[str, int], ...]:
    """'periodic_mc=1,emoji_mc=5' -> (("periodic_mc", 1), ("emoji_mc", 5))."""
    pairs = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, count = part.partition("=")
        if name not in SECTIONS or not count.isdigit() or int(count) < 1:
            raise BenchError(f"--repeats-for {part!r}: use WORKLOAD=N with N >= 1 and a workload "
                             f"from {', '.join(SECTIONS)}")
        pairs.append((name, int(count)))
    return tuple(pairs)


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    split = lambda text: tuple(part.strip() for part in text.split(",") if part.strip())  # noqa: E731
    return BenchConfig(
        model=args.model, repeats=args.repeats or (2 if args.quick else 3),
        repeats_for=repeats_for(args.repeats_for), limit=args.limit,
        quick=args.quick, out=args.out, workloads=split(args.workloads),
        arith_tasks=split(args.arith_tasks), arith_limit=args.arith_limit, device=args.device,
        batch_size_ours=args.batch_size, batch_size_lmeval=args.lmeval_batch_size,
        threads=args.threads, scale_examples=args.scale_examples,
        scale_choices=args.scale_choices, fewshot_limit=args.fewshot_limit,
        gpu_shapes=split(args.gpu_shapes),
        gpu_requests=args.gpu_requests, gpu_peak_tflops=args.peak_tflops, keep=args.keep)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        from bench_lmeval.engines import worker_main

        worker_main(args.worker)
        return 0
    if args.build_model:
        gpu.build_random_model(args.build_model, args.into, args.tokenizer)
        return 0
    if args.render:  # tables again from a stored run: nothing is measured
        bench = json.loads(args.render.read_text(encoding="utf-8"))
        bench["overall"] = overall(bench["workloads"])
        print(write(bench, args.render.parent))
        return 0
    try:
        bench = run(config_from_args(args))
    except (BenchError, WorkerError, HarnessError) as exc:  # HarnessError: task loading
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    print(write(bench, args.out))
    failures = agreement_failures(bench)
    if failures:
        print("bench: the engines disagree: " + "; ".join(failures), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
