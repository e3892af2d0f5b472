"""The timed part of each engine, run in a process of its own (`bench.py --worker JOB`).

A job loads one model with one engine (load time measured apart), then runs each of its
workloads `repeats` times and records every wall time, the per-request outputs of the last
repeat, and the process's resident-memory high-water mark (VmHWM; reset after the load
where Linux allows it, so the run's own peak is visible too).

ours:   `harness.models.load_model(...)`, then `backend.loglikelihood` / `backend.generate`
        on requests built from the workload rows; timed around that call.
lmeval: `lm_eval.models.huggingface.HFLM(pretrained=<folder>)` and `lm_eval.simple_evaluate`
        on the generated task configs; its model call (`lm.loglikelihood` /
        `lm.generate_until`) is timed by a wrapper, and the whole `simple_evaluate` apart
        (dataset loading, request building, metrics: lm-eval's own overhead).
"""

from __future__ import annotations

import json
import logging
import os
import re
import resource
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench_lmeval.workloads import LMEVAL_PREFIX, Doc, Workload, read_workload

ENGINES = ("ours", "lmeval")
MODES = ("exact", "early")  # generate: no stop rule (EOS or budget) / our default early stop


@dataclass(frozen=True)
class Job:
    engine: str  # "ours" or "lmeval"
    model: str  # ours: what load_model takes; lmeval: a local folder (or hub id)
    workloads: tuple[str, ...]  # paths written by workloads.write_workload
    out: str  # where the result JSON goes
    lmeval_dir: str = ""  # include_path holding the generated YAML + JSONL
    modes: tuple[str, ...] = ("exact",)  # for generate workloads
    repeats: int = 3
    dtype: str = "float32"
    device: str = "cpu"
    batch_size: str = "auto"  # ours: auto or rows; lmeval: rows
    threads: int | None = None
    softmax_dtype: str | None = None  # lmeval: "float32" for bf16 runs (ours always is)
    extras: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Job:
        data = dict(data)
        data["workloads"] = tuple(data["workloads"])
        data["modes"] = tuple(data["modes"])
        return cls(**data)


# ------------------------------------------------------------------ memory


def _status_mb(key: str) -> float | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) / 1024 if match else None


def peak_rss_mb() -> float:
    """Resident-memory high-water mark of this process (VmHWM; ru_maxrss off Linux)."""
    hwm = _status_mb("VmHWM")
    if hwm is not None:
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _gpu_reset(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _gpu_peak_mb(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    import torch

    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**20


# ------------------------------------------------------------------ requests


def continuations(doc: Doc, kind: str) -> tuple[str, ...]:
    """What is scored after `doc.prompt`: every choice, or the target."""
    return doc.choices if kind == "multiple_choice" else (doc.target,)


def _loglik_outputs(workload: Workload, flat: list[tuple[float, int, bool]]) -> list[dict]:
    """Regroup per-request (log-prob, n_tokens, all-greedy) into one record per doc."""
    outputs, at = [], 0
    for doc in workload.docs:
        n = len(continuations(doc, workload.kind))
        part = flat[at:at + n]
        at += n
        outputs.append({"logprobs": [p[0] for p in part], "n_tokens": [p[1] for p in part],
                        "greedy": [p[2] for p in part]})
    return outputs


# ------------------------------------------------------------------ ours


def _load_ours(job: Job):
    from harness.models import load_model

    return load_model(job.model, dtype=job.dtype, device=job.device, batch_size=job.batch_size)


def _request_tokens(backend, workload: Workload) -> int | None:
    """Context + continuation tokens over all requests (what a one-pass-per-request engine
    runs through the model): the numerator of tokens/s."""
    encode = getattr(backend, "encode_pair", None)
    if encode is None:
        return None
    if workload.kind == "generate":
        return sum(len(backend.tokenizer(d.prompt)["input_ids"]) for d in workload.docs)
    return sum(sum(map(len, encode(d.prompt, c))) for d in workload.docs
               for c in continuations(d, workload.kind))


def _model_flops(backend, workload: Workload, outputs: list[dict]) -> int | None:
    """Model FLOPs of the workload as our engine runs it (bench_lmeval.ceiling)."""
    from bench_lmeval import ceiling

    dims = ceiling.model_dims(backend.model)
    if workload.kind == "generate":
        prompts = [len(backend.tokenizer(d.prompt, add_special_tokens=True)["input_ids"])
                   for d in workload.docs]
        return ceiling.generation_flops(dims, prompts, [o["n_tokens"] for o in outputs])
    return ceiling.loglik_flops(dims, (backend.encode_pair(d.prompt, c) for d in workload.docs
                                       for c in continuations(d, workload.kind)))


def _run_ours_once(backend, workload: Workload, mode: str) -> tuple[float, list[dict]]:
    from harness.answers import StopRule
    from harness.models.base import GenRequest, LoglikRequest

    if workload.kind == "generate":
        requests = [GenRequest(context=d.prompt, max_new_tokens=workload.max_new_tokens,
                               stop=StopRule(d.stop_string, d.output_regex)
                               if mode == "early" else None)
                    for d in workload.docs]
        start = time.perf_counter()
        generations = backend.generate(requests)
        seconds = time.perf_counter() - start
        return seconds, [{"text": g.text, "n_tokens": g.n_tokens, "stop": g.stop_reason}
                         for g in generations]
    requests = [LoglikRequest(d.prompt, c) for d in workload.docs
                for c in continuations(d, workload.kind)]
    start = time.perf_counter()
    scores = backend.loglikelihood(requests)
    seconds = time.perf_counter() - start
    flat = [(float(sum(s.logprobs)), len(s.logprobs), all(s.is_greedy)) for s in scores]
    return seconds, _loglik_outputs(workload, flat)


# ------------------------------------------------------------------ lm-eval


def _load_lmeval(job: Job):
    from lm_eval.models.huggingface import HFLM

    kwargs: dict[str, Any] = {"pretrained": job.model, "dtype": job.dtype, "device": job.device,
                              "batch_size": int(job.batch_size)}
    if job.softmax_dtype:
        kwargs["softmax_dtype"] = job.softmax_dtype
    return HFLM(**kwargs)


class _TimedCalls:
    """Wraps `lm.<method>` (an instance attribute shadows the class's): sums the seconds
    spent in the model call and keeps the Instances it was given."""

    def __init__(self, lm, method: str) -> None:
        self.lm, self.method, self.seconds, self.instances = lm, method, 0.0, []
        self.original = getattr(lm, method)

    def __enter__(self) -> _TimedCalls:
        def timed(requests, *args, **kwargs):
            start = time.perf_counter()
            out = self.original(requests, *args, **kwargs)
            self.seconds += time.perf_counter() - start
            self.instances.extend(requests)
            return out

        setattr(self.lm, self.method, timed)
        return self

    def __exit__(self, *exc) -> None:
        delattr(self.lm, self.method)


def prompt_mismatches(workload: Workload, instances) -> list[str]:
    """Requests lm-eval sent whose strings differ from the workload's (should be none)."""
    problems = []
    for inst in instances:
        doc = workload.docs[inst.doc_id]
        if workload.kind == "generate":
            expected = doc.prompt
            got = inst.args[0]
        else:
            expected = (doc.prompt, continuations(doc, workload.kind)[inst.idx])
            got = tuple(inst.args[:2])
        if got != expected:
            problems.append(f"doc {inst.doc_id} request {inst.idx}: lm-eval {got!r} vs ours "
                            f"{expected!r}")
    return problems


def _run_lmeval_once(lm, task_manager, workload: Workload) -> dict:
    import lm_eval

    task = LMEVAL_PREFIX + workload.name
    method = "generate_until" if workload.kind == "generate" else "loglikelihood"
    start = time.perf_counter()
    with _TimedCalls(lm, method) as calls:
        results = lm_eval.simple_evaluate(model=lm, tasks=[task], task_manager=task_manager,
                                          log_samples=True, bootstrap_iters=0, num_fewshot=0)
    end_to_end = time.perf_counter() - start
    samples = sorted(results["samples"][task], key=lambda s: s["doc_id"])
    if [s["doc_id"] for s in samples] != list(range(len(workload.docs))):
        raise RuntimeError(f"{task}: lm-eval logged docs {[s['doc_id'] for s in samples][:10]}.., "
                           f"expected 0..{len(workload.docs) - 1}")
    if workload.kind == "generate":
        outputs = [{"text": s["filtered_resps"][0], "n_tokens": None} for s in samples]
    else:
        flat = []
        for doc, sample in zip(workload.docs, samples):
            for cont, (logprob, greedy) in zip(continuations(doc, workload.kind),
                                               sample["filtered_resps"], strict=True):
                n_tokens = len(lm._encode_pair(doc.prompt, cont)[1]) if doc.prompt else None
                flat.append((float(logprob), n_tokens, bool(greedy)))
        outputs = _loglik_outputs(workload, flat)
    metrics = {k: v for k, v in results["results"][task].items()
               if isinstance(v, (int, float)) and not k.endswith("_stderr,none")}
    return {"seconds": calls.seconds, "end_to_end_s": end_to_end, "outputs": outputs,
            "mismatches": prompt_mismatches(workload, calls.instances), "metrics": metrics}


# ------------------------------------------------------------------ the job


def _warm_up(job: Job, engine, task_manager, workload: Workload, mode: str) -> None:
    """One untimed pass over the first doc through the same path: first calls pay for
    thread pools, lazy imports and allocator growth, which no repeat should carry."""
    first = replace(workload, docs=workload.docs[:1])
    if job.engine == "ours":
        _run_ours_once(engine, first, mode)
    else:
        import lm_eval

        lm_eval.simple_evaluate(model=engine, tasks=[LMEVAL_PREFIX + workload.name],
                                task_manager=task_manager, limit=1, bootstrap_iters=0,
                                num_fewshot=0)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("torch", "transformers", "lm_eval", "datasets", "emergence-harness"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def run_job(job: Job, progress=None) -> dict:
    """Load, then run every workload `repeats` times; return the result record."""
    import torch

    if job.threads:
        torch.set_num_threads(job.threads)
    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    say = progress or (lambda message: None)
    if job.engine not in ENGINES:
        raise ValueError(f"unknown engine {job.engine!r}; engines: {ENGINES}")
    start = time.perf_counter()
    if job.engine == "ours":
        # imports are timed apart from the model load
        import transformers  # noqa: F401

        import harness.models.hf  # noqa: F401
    else:
        import lm_eval.models.huggingface  # noqa: F401
        from lm_eval.tasks import TaskManager
    import_s = time.perf_counter() - start
    start = time.perf_counter()
    if job.engine == "ours":
        engine = _load_ours(job)
        task_manager = None
    else:
        engine = _load_lmeval(job)
        task_manager = TaskManager(include_path=job.lmeval_dir, include_defaults=False)
    load_s = time.perf_counter() - start
    record: dict[str, Any] = {"engine": job.engine, "load_s": load_s, "import_s": import_s,
                              "rss_after_load_mb": _status_mb("VmRSS"), "runs": [],
                              "threads": torch.get_num_threads(), "versions": _versions()}
    if job.device.startswith("cuda"):
        record["device_name"] = torch.cuda.get_device_name(torch.device(job.device))
    if job.engine == "ours":
        record["model_info"] = engine.info.to_json()
        # the folder transformers loaded (a converted GGUF lives in the harness cache):
        # lm-eval is given this folder, so both engines read identical weights and tokenizer
        record["model_folder"] = getattr(engine.model, "name_or_path", None)
        # what `harness eval` does on a CPU by default (cli.py, --malloc-tuning)
        from harness import allocator

        record["malloc_tuned"] = (engine.device == "cpu" and allocator.wanted(os.environ)
                                  and allocator.keep_freed_memory())
    say(f"{job.engine}: imports {import_s:.1f} s, model load {load_s:.1f} s")
    if job.engine == "ours" and job.extras.get("ceiling"):
        from bench_lmeval import ceiling

        record["ceiling"] = ceiling.measure(engine.model, repeats=job.repeats)
        say("ceiling: matmul {:.1f} GFLOP/s, raw forward {:.1f} GFLOP/s".format(
            record["ceiling"]["matmul"]["flops_per_s"] / 1e9,
            record["ceiling"]["raw_forward"]["flops_per_s"] / 1e9))
    for path in job.workloads:
        workload = read_workload(Path(path))
        modes = job.modes if workload.kind == "generate" else ("exact",)
        for mode in modes:
            peak_before = peak_rss_mb()
            reset = reset_peak_rss()
            _gpu_reset(job.device)
            run: dict[str, Any] = {"workload": workload.name, "mode": mode, "wall_s": [],
                                   "end_to_end_s": []}
            _warm_up(job, engine, task_manager, workload, mode)
            for repeat in range(job.repeats):
                if job.engine == "ours":
                    seconds, outputs = _run_ours_once(engine, workload, mode)
                else:
                    answer = _run_lmeval_once(engine, task_manager, workload)
                    seconds, outputs = answer["seconds"], answer["outputs"]
                    run["end_to_end_s"].append(answer["end_to_end_s"])
                    run["prompt_mismatches"] = answer["mismatches"][:5]
                    run["n_prompt_mismatches"] = len(answer["mismatches"])
                    run["lmeval_metrics"] = answer["metrics"]
                run["wall_s"].append(seconds)
                say(f"{job.engine} {workload.name} [{mode}] repeat {repeat + 1}/{job.repeats}: "
                    f"{seconds:.2f} s")
            run["outputs"] = outputs
            # the process's peak (load included), and the run's own when VmHWM could be reset
            run["peak_rss_mb"] = max(peak_before, peak_rss_mb())
            run["run_peak_rss_mb"] = peak_rss_mb() if reset else None
            run["gpu_peak_mb"] = _gpu_peak_mb(job.device)
            if job.engine == "ours":
                run["request_tokens"] = _request_tokens(engine, workload)
                run["model_flops"] = _model_flops(engine, workload, outputs)
            record["runs"].append(run)
    return record


def worker_main(job_path: str) -> None:
    """Entry point of the worker process: read the job, run it, write the result."""
    job = Job.from_json(json.loads(Path(job_path).read_text(encoding="utf-8")))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    def say(message: str) -> None:
        print(f"[bench worker] {message}", file=__import__("sys").stderr, flush=True)

    record = run_job(job, say)
    out = Path(job.out)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, out)
