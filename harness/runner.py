"""Execute planned runs on a loaded model: ask the backend, store raw records, score.

For each `RunSpec` (harness.plan: its prompts rendered and checked there), examples already
in the run folder are skipped, the rest go to the backend in chunks; each chunk's raw
records are appended to examples.jsonl *before* any scoring, so a killed run resumes where
it stopped. Scoring (`summarize_run`) reads only the stored records: `harness rescore` is
the same function without a model.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import distributed, results
from harness.answers import StopRule, extract_answer
from harness.errors import HarnessError
from harness.io import atomic_write_json
from harness.models.base import Backend, GenRequest, LoglikRequest
from harness.plan import (
    EvalSettings,
    GenerationSettings,
    RunSpec,
    plan_loaded,
    prompt_sha256,
    task_record,
)
from harness.records import ExampleRecord
from harness.repo import git_state
from harness.results import SHOT_SEED
from harness.tasks import Prompt, Task

log = logging.getLogger(__name__)


def scoring_context(task: Task, prompt: Prompt, generation: str | None) -> str | None:
    """The whole context the targets are scored after: the prompt, or, for a variant with an
    answer marker (scratchpad), the prompt and the model's own text up to the marker; None
    when the model never wrote the marker (the target log-prob is then a counted NaN)."""
    marker = task.variant.answer_marker if task.variant else None
    if marker is None:
        return prompt.text
    if generation is None or marker not in generation:
        return None
    return prompt.text + generation[:generation.index(marker) + len(marker)]


def _tokenize(backend: Backend, answers: Sequence[str | None], prompts: Sequence[Prompt]
              ) -> tuple[list[tuple[str, ...]], list[tuple[tuple[str, ...], ...]]]:
    """Tokens of each answer (() without a generation) and of each prompt's targets, from one
    tokenizer call over the answers that exist followed by every prompt's targets."""
    present = [i for i, answer in enumerate(answers) if answer is not None]
    tokens = backend.tokenize([answers[i] for i in present]
                              + [t for p in prompts for t in p.targets])
    answer_tokens: list[tuple[str, ...]] = [()] * len(answers)
    for k, i in enumerate(present):
        answer_tokens[i] = tokens[k]
    target_tokens, start = [], len(present)
    for prompt in prompts:
        target_tokens.append(tuple(tokens[start:start + len(prompt.targets)]))
        start += len(prompt.targets)
    return answer_tokens, target_tokens


def run_chunk(backend: Backend, task: Task, prompts: Sequence[Prompt],
              generation: GenerationSettings) -> list[ExampleRecord]:
    """Ask the backend everything about `prompts`; return raw records (no scoring).

    Generation first (a variant may score the target after the model's own text), then
    one batch of log-likelihood requests: every choice, and every target after its context.
    """
    generations = [None] * len(prompts)
    if task.is_generative:
        stop = StopRule(task.stop_string, task.output_regex) if generation.early_stop else None
        gen_requests = [GenRequest(context=p.text, max_new_tokens=generation.budget(task),
                                   stop=stop) for p in prompts]
        generations = backend.generate(gen_requests)
    texts = [g.text if g is not None else None for g in generations]
    contexts = [scoring_context(task, p, text) for p, text in zip(prompts, texts)]

    requests: list[LoglikRequest] = []
    for prompt, context in zip(prompts, contexts):
        requests.extend(LoglikRequest(prompt.text, c) for c in prompt.choices)
        if context is not None:
            requests.extend(LoglikRequest(context, t) for t in prompt.targets)
    scored = dict(zip(requests, backend.loglikelihood(requests)))

    extracted = [extract_answer(t, task.output_regex, task.stop_string, generation.max_chars)
                 if t is not None else (None, None) for t in texts]
    answers = [answer for answer, _ in extracted]
    answer_tokens, target_tokens = _tokenize(backend, answers, prompts)

    records = []
    for i, prompt in enumerate(prompts):
        gen, context = generations[i], contexts[i]
        choices = [scored[LoglikRequest(prompt.text, c)] for c in prompt.choices]
        targets = ([scored[LoglikRequest(context, t)] for t in prompt.targets]
                   if context is not None else [])
        records.append(ExampleRecord(
            task=task.name, idx=prompt.idx, shots=prompt.shots, prompt=prompt.text,
            prompt_sha256=prompt_sha256(prompt), shot_idxs=prompt.shot_idxs,
            targets=prompt.targets, choices=prompt.choices, target_scores=prompt.target_scores,
            generation=gen.text if gen else None,
            generation_n_tokens=gen.n_tokens if gen else 0,
            generation_stop=gen.stop_reason if gen else "",
            answer=answers[i],
            answer_matched=extracted[i][1],
            answer_tokens=answer_tokens[i],
            choice_logprobs=tuple(c.logprobs for c in choices),
            choice_greedy=tuple(c.is_greedy for c in choices),
            target_logprobs=tuple(t.logprobs for t in targets),
            target_greedy=tuple(t.is_greedy for t in targets),
            target_tokens=target_tokens[i],
            target_context=context[len(prompt.text):] if context else "",  # the suffix only
            demo_target=prompt.demo_target,
        ))
    return records


def _claim(folder: Path, identity: dict[str, Any], overwrite: bool) -> dict[str, Any] | None:
    """The run folder's manifest on the main rank (None on the others); a folder of another
    run is one error on every rank."""
    manifest, problem, cause = None, None, None
    if distributed.current().is_main:
        try:
            manifest = results.check_or_claim(folder, identity, overwrite)
        except HarnessError as exc:
            problem, cause = str(exc), exc  # the message travels to every rank, the cause stays
    problem = distributed.broadcast(problem)
    if problem:
        raise HarnessError(problem) from cause
    distributed.barrier()
    return manifest


def _session(backend: Backend, spec: RunSpec, new: int, wall_s: float) -> dict[str, Any]:
    """What one session of a run did, and where: provenance in the manifest."""
    return {"finished": results.now(), "wall_s": round(wall_s, 2), "new_examples": new,
            "reused_examples": spec.n_examples - new,
            "batch_size": backend.batch_size, "device": backend.info.device,
            "peak_gpu_mb": backend.peak_memory_mb(),
            "processes": distributed.current().world, "limit": spec.settings.limit,
            "command": spec.settings.command, "git": git_state(),
            "versions": results.library_versions()}


def evaluate_run(backend: Backend, spec: RunSpec, progress_bar: Any = None) -> dict[str, Any]:
    """Run (or resume) one planned run on its loaded model; write and return its summary."""
    ranks, settings = distributed.current(), spec.settings
    model = backend.info.to_json()
    folder = spec.folder_for(model)
    manifest = _claim(folder, spec.identity(model), settings.overwrite)
    done = results.load_done(folder)
    todo = [p for p in spec.prompts if (p.idx, prompt_sha256(p)) not in done]
    started = time.perf_counter()
    if progress_bar is not None:
        progress_bar.set_postfix_str(f"{spec.task.name} shots={spec.shots}", refresh=False)
        progress_bar.update(spec.n_examples - len(todo))
    for begin in range(0, len(todo), settings.chunk_size):
        chunk = todo[begin:begin + settings.chunk_size]
        # every rank takes every world-th example; rank 0 writes them all, once
        mine = chunk[ranks.rank::ranks.world]
        records = run_chunk(backend, spec.task, mine, settings.generation) if mine else []
        gathered = distributed.gather(records)
        if ranks.is_main:
            order = {p.idx: i for i, p in enumerate(chunk)}
            results.append_records(folder / "examples.jsonl",
                                   sorted(gathered, key=lambda r: order[r.idx]))
        distributed.barrier()
        if progress_bar is not None:
            progress_bar.update(len(chunk))
    if not ranks.is_main:
        return distributed.broadcast(None)
    manifest["model"] = model
    manifest["task"] = task_record(spec.task)
    manifest["sessions"].append(_session(backend, spec, len(todo), time.perf_counter() - started))
    atomic_write_json(folder / "manifest.json", manifest)
    summary = summarize_run(folder, wanted=set(spec.resume_keys), n_boot=settings.n_boot,
                            seed=settings.boot_seed)
    return distributed.broadcast(summary)


def summarize_run(folder: Path, wanted: set[tuple[int, str]] | None = None, n_boot: int = 1000,
                  seed: int = 0) -> dict[str, Any]:
    """Score the stored records of a run folder and write summary.json (no model needed).

    `wanted` restricts scoring to the examples of the current request (a --limit run scores
    its subset even when the folder holds more).
    """
    from harness.metrics import score_table, summarize

    manifest_path = folder / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        model, task, identity = manifest["model"], manifest["task"], manifest["identity"]
    except FileNotFoundError:
        raise HarnessError(f"{folder} has no manifest.json; it is not a run folder") from None
    except (ValueError, KeyError, TypeError):
        raise HarnessError(f"{manifest_path} is damaged or from an interrupted first run; rerun "
                           "the evaluation to rebuild it") from None
    done = results.load_done(folder, partial_tail_ok=False)
    records = sorted((r for key, r in done.items() if wanted is None or key in wanted),
                     key=lambda r: r.idx)
    if not records:
        raise HarnessError(f"{folder}/examples.jsonl holds no finished examples; rerun the "
                           "evaluation")
    sessions = manifest.get("sessions", [])
    last = sessions[-1] if sessions else {}
    summary = {
        "model": model,
        "task": task,
        "shots": identity["shots"],
        "demo_labels": identity.get("demo_labels", "true"),
        "n": len(records),
        "metrics": summarize(records, n_boot=n_boot, seed=seed),
        "settings": {"dtype": model["dtype"], "boundary": model["boundary"],
                     "batch_size": last.get("batch_size"), "device": model["device"],
                     "limit": last.get("limit"), "generation": identity["generation"],
                     "bootstrap": {"n": n_boot, "seed": seed, "ci": 0.95},
                     "shot_seed": identity.get("shot_seed", SHOT_SEED)},
        "provenance": {"git": last.get("git"), "versions": last.get("versions"),
                       "command": last.get("command"),
                       "wall_s": round(sum(s.get("wall_s", 0) for s in sessions), 2),
                       "scored": results.now()},
    }
    no_match = summary["metrics"].get("answer_no_match")
    summary["regex_no_match_rate"] = no_match["mean"] if no_match else None
    # the scores themselves, next to their means: the report reads these and never re-scores
    results.write_scores(folder, score_table(records))
    atomic_write_json(folder / "summary.json", summary)
    return summary


def evaluate_runs(backend: Backend, specs: Sequence[RunSpec], progress: bool = True
                  ) -> list[dict[str, Any]]:
    """Execute planned runs, all of one checkpoint, on its loaded model; their summaries."""
    bar = None
    if progress and distributed.current().is_main:
        from tqdm import tqdm

        bar = tqdm(total=sum(spec.n_examples for spec in specs), desc=backend.info.name,
                   unit="ex", dynamic_ncols=True, file=sys.stderr)
    try:
        return [evaluate_run(backend, spec, bar) for spec in specs]
    finally:
        if bar is not None:
            bar.close()


def evaluate(backend: Backend, settings: EvalSettings, progress: bool = True
             ) -> list[dict[str, Any]]:
    """Evaluate every requested task and shot count with one loaded model."""
    return evaluate_runs(backend, plan_loaded(settings, backend.info.to_json()), progress)
