"""Run tasks through a model: render prompts, ask the backend, store raw records, score.

For each (task, shots): prompts are rendered (BIG-bench's exact strings), examples already
in the run folder are skipped, the rest go to the backend in chunks; each chunk's raw
records are appended to examples.jsonl *before* any scoring, so a killed run resumes where
it stopped. Scoring (`summarize_run`) reads only the stored records: `harness rescore` is
the same function without a model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import demos, distributed, results
from harness.answers import StopRule, extract_answer
from harness.errors import HarnessError
from harness.io import atomic_write_json
from harness.locations import portable
from harness.models.base import Backend, GenRequest, LoglikRequest
from harness.records import ExampleRecord
from harness.repo import git_state
from harness.tasks import Prompt, Task, check_shots_and_limit, load_tasks, render

log = logging.getLogger(__name__)

# Generation budget per top-level task, in tokens: arithmetic answers are at most 11
# characters, so 16 tokens leave room for a short preamble ("The answer is 1234"); titles
# and element names get 32. Early stopping ends most generations well before the budget.
MAX_NEW_TOKENS = {"arithmetic": 16}
DEFAULT_MAX_NEW_TOKENS = 32


@dataclass(frozen=True)
class GenerationSettings:
    """What shapes a generation; part of the run identity."""

    max_new_tokens: int | None = None  # None: the task's default (MAX_NEW_TOKENS)
    early_stop: bool = True  # stop once the post-processed answer can no longer change
    max_chars: int | None = None  # BIG-bench evaluate-script cut (30); off by default

    def budget(self, task: Task) -> int:
        if self.max_new_tokens is not None:
            return self.max_new_tokens
        if task.variant is not None:
            return task.variant.max_new_tokens
        return MAX_NEW_TOKENS.get(task.name.split("/")[0], DEFAULT_MAX_NEW_TOKENS)

    def to_json(self, task: Task) -> dict[str, Any]:
        return {"max_new_tokens": self.budget(task), "early_stop": self.early_stop,
                "max_chars": self.max_chars}


@dataclass(frozen=True)
class EvalSettings:
    tasks: tuple[str, ...] = ("emoji_movie", "periodic_elements", "arithmetic")
    shots: tuple[int, ...] = (0,)
    limit: int | None = None
    out: Path = Path("results")
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    chunk_size: int = 128  # examples per write to examples.jsonl (the resume granularity)
    overwrite: bool = False
    demo_labels: str = "true"  # "flipped" / "unrelated": relabelled demonstrations
    n_boot: int = 1000
    boot_seed: int = 0
    command: str | None = None  # what the user typed, recorded as provenance
    tasks_dir: Path | None = None  # where task names resolve; None: the bundled tasks


def prompt_sha256(prompt: Prompt) -> str:
    payload = "\x1f".join([prompt.text, "\x1e".join(prompt.choices), "\x1e".join(prompt.targets)])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def task_record(task: Task) -> dict[str, Any]:
    return {"name": task.name, "sha256": task.sha256, "path": portable(task.path),
            "preferred_score": task.preferred_score, "metrics": list(task.metrics),
            "output_regex": task.output_regex, "stop_string": task.stop_string,
            "n_examples": len(task.examples),
            "chance_multiple_choice_grade": task.chance_multiple_choice_grade}


def target_context(task: Task, prompt: Prompt, generation: str | None) -> str | None:
    """Where the targets are scored: after the prompt, or, for a variant with an answer
    marker (scratchpad), after the model's own text up to the marker; None when the model
    never wrote the marker (the target log-prob is then a counted NaN)."""
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
    contexts = [target_context(task, p, text) for p, text in zip(prompts, texts)]

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
            target_context=context[len(prompt.text):] if context else "",
            demo_target=prompt.demo_target,
        ))
    return records


def evaluate_task(backend: Backend, task: Task, shots: int, settings: EvalSettings,
                  progress_bar: Any = None) -> dict[str, Any]:
    """Run (or resume) one task at one shot count; write and return its summary."""
    check_shots_and_limit(task, shots, settings.limit)
    ranks = distributed.current()
    prompts = render(task, shots, settings.limit,
                     relabel=demos.relabeler(task, settings.demo_labels))
    model = backend.info.to_json()
    identity = results.run_identity(model, task_record(task), shots,
                                    settings.generation.to_json(task), settings.demo_labels)
    folder = results.run_dir(settings.out, model, task.name, shots, settings.demo_labels)
    manifest, problem, cause = None, None, None
    if ranks.is_main:
        try:
            manifest = results.check_or_claim(folder, identity, settings.overwrite)
        except HarnessError as exc:
            problem, cause = str(exc), exc  # the message travels to every rank, the cause stays
    problem = distributed.broadcast(problem)
    if problem:
        raise HarnessError(problem) from cause
    distributed.barrier()
    done = results.load_done(folder)
    todo = [p for p in prompts if (p.idx, prompt_sha256(p)) not in done]
    started = time.perf_counter()
    if progress_bar is not None:
        progress_bar.set_postfix_str(f"{task.name} shots={shots}", refresh=False)
        progress_bar.update(len(prompts) - len(todo))
    for begin in range(0, len(todo), settings.chunk_size):
        chunk = todo[begin:begin + settings.chunk_size]
        # every rank takes every world-th example; rank 0 writes them all, once
        mine = chunk[ranks.rank::ranks.world]
        records = run_chunk(backend, task, mine, settings.generation) if mine else []
        gathered = distributed.gather(records)
        if ranks.is_main:
            order = {p.idx: i for i, p in enumerate(chunk)}
            results.append_records(folder / "examples.jsonl",
                                   sorted(gathered, key=lambda r: order[r.idx]))
        distributed.barrier()
        if progress_bar is not None:
            progress_bar.update(len(chunk))
    wall_s = time.perf_counter() - started
    if not ranks.is_main:
        return distributed.broadcast(None)
    manifest["model"] = model
    manifest["task"] = task_record(task)
    manifest["sessions"].append({
        "finished": results.now(), "wall_s": round(wall_s, 2), "new_examples": len(todo),
        "reused_examples": len(prompts) - len(todo),
        "batch_size": backend.batch_size, "device": model["device"],
        "peak_gpu_mb": backend.peak_memory_mb(),
        "processes": ranks.world, "limit": settings.limit, "command": settings.command,
        "git": git_state(), "versions": results.library_versions(),
    })
    atomic_write_json(folder / "manifest.json", manifest)
    wanted = {(p.idx, prompt_sha256(p)) for p in prompts}
    summary = summarize_run(folder, wanted=wanted, n_boot=settings.n_boot, seed=settings.boot_seed)
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
                     "bootstrap": {"n": n_boot, "seed": seed, "ci": 0.95}, "shot_seed": 42},
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


def evaluate(backend: Backend, settings: EvalSettings, progress: bool = True
             ) -> list[dict[str, Any]]:
    """Evaluate every requested task and shot count with one loaded model."""
    tasks = load_tasks(settings.tasks, settings.tasks_dir)
    for task in tasks:
        demos.relabeler(task, settings.demo_labels)  # fails early on an unsupported task
        for shots in settings.shots:
            check_shots_and_limit(task, shots, settings.limit)
    total = sum(min(len(t.examples), settings.limit or len(t.examples))
                for t in tasks for _ in settings.shots)
    summaries = []
    bar = None
    if progress and distributed.current().is_main:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=backend.info.name, unit="ex", dynamic_ncols=True,
                   file=sys.stderr)
    try:
        for task in tasks:
            for shots in settings.shots:
                summaries.append(evaluate_task(backend, task, shots, settings, bar))
    finally:
        if bar is not None:
            bar.close()
    return summaries
