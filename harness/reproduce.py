"""Check outputs against the committed evidence: the same identity must give the same outputs.

Run identity is content (harness.results.run_identity), so a run made here and a committed
run with the same identity must agree: generations and post-processed answers identical,
per-token log-probs within `TOLERANCE` (fp32). Two uses:

* `check_runs(folders, evidence)`: after `harness eval`, compare what was just computed
  with the committed run of the same identity, example by example (no model needed);
* `reproduce(committed_runs(evidence), k, seed)`: `harness reproduce`, re-run a seeded sample of k examples
  of every committed run whose model is available on this machine, and compare.

Nothing is written: the evidence is only read, and re-run examples stay in memory.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import results
from harness.errors import HarnessError
from harness.records import ExampleRecord

TOLERANCE = 1e-4  # per-token log-prob, fp32: the batch-size invariance bound


@dataclass(frozen=True)
class Comparison:
    """One run compared with its committed twin."""

    setting: str  # the committed run folder, relative to the evidence root
    examples: int  # examples present on both sides and compared
    generations_identical: int
    answers_identical: int
    max_abs_delta: float  # largest per-token |delta log-prob| over choices and targets
    differing: tuple[int, ...]  # idx of examples outside tolerance or with another generation
    problem: str = ""  # why nothing could be compared (model or task changed, ...)

    @property
    def ok(self) -> bool:
        return not self.problem and not self.differing and self.examples > 0


def _logprob_delta(new: Sequence[Sequence[float]], old: Sequence[Sequence[float]]) -> float:
    """Largest per-token difference; infinite when the tokenisation differs."""
    if len(new) != len(old) or any(len(a) != len(b) for a, b in zip(new, old)):
        return math.inf
    deltas = [abs(x - y) for a, b in zip(new, old) for x, y in zip(a, b)
              if not (math.isnan(x) and math.isnan(y))]
    return max(deltas, default=0.0)


def compare_records(setting: str, new: Iterable[ExampleRecord], old: dict[tuple[int, str], ExampleRecord],
                    tolerance: float = TOLERANCE) -> Comparison:
    """Compare records with the committed ones of the same (idx, prompt sha256)."""
    pairs = [(r, old[(r.idx, r.prompt_sha256)]) for r in new if (r.idx, r.prompt_sha256) in old]
    same_generation = same_answer = 0
    worst = 0.0
    differing = []
    for mine, theirs in pairs:
        # stored records carry float32-rounded log-probs; round ours the same way
        mine = ExampleRecord.from_json(json.loads(json.dumps(mine.to_json())))
        gen_ok = mine.generation == theirs.generation
        answer_ok = mine.answer == theirs.answer
        delta = max(_logprob_delta(mine.choice_logprobs, theirs.choice_logprobs),
                    _logprob_delta(mine.target_logprobs, theirs.target_logprobs))
        same_generation += gen_ok
        same_answer += answer_ok
        worst = max(worst, delta)
        if not (gen_ok and answer_ok and delta <= tolerance):
            differing.append(mine.idx)
    return Comparison(setting=setting, examples=len(pairs), generations_identical=same_generation,
                      answers_identical=same_answer, max_abs_delta=worst,
                      differing=tuple(sorted(differing)),
                      problem="" if pairs else "no example in common")


def evidence_index(evidence: Path) -> dict[str, Path]:
    """Committed run folders under `evidence`/runs keyed by their identity."""
    found: dict[str, Path] = {}
    for run in committed_runs(evidence):
        found.setdefault(results.identity_key(run.manifest["identity"]), run.folder)
    return found


def _relative(folder: Path, evidence: Path) -> str:
    try:
        return folder.relative_to(evidence / "runs").as_posix()
    except ValueError:
        return folder.as_posix()


def check_runs(folders: Sequence[Path], evidence: Path, tolerance: float = TOLERANCE
               ) -> tuple[list[Comparison], list[Path]]:
    """Compare each run folder with the committed run of the same identity.

    Returns the comparisons and the folders that have no committed twin.
    """
    known = evidence_index(evidence)
    compared, unmatched = [], []
    for folder in folders:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        twin = known.get(results.identity_key(manifest["identity"]))
        if twin is None or twin.resolve() == folder.resolve():
            unmatched.append(folder)
            continue
        mine = results.load_done(folder).values()
        compared.append(compare_records(_relative(twin, evidence), mine,
                                        results.load_done(twin, partial_tail_ok=False), tolerance))
    return compared, unmatched


# ------------------------------------------------------------------ re-running a sample


@dataclass(frozen=True)
class CommittedRun:
    folder: Path
    manifest: dict[str, Any]
    setting: str  # the folder relative to the evidence's runs/, as comparisons name it

    @property
    def model_key(self) -> tuple[str, str, str, str]:
        model = self.manifest["model"]
        return (model["name"], model["revision"], model["dtype"], model["boundary"])


def committed_runs(evidence: Path) -> list[CommittedRun]:
    runs = []
    for folder in results.find_runs(Path(evidence) / "runs"):
        try:
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            manifest["identity"] = results.upgrade_identity(manifest["identity"])
        except (OSError, ValueError, KeyError) as exc:
            raise HarnessError(f"{folder}/manifest.json is unreadable ({exc}); the evidence is "
                               "damaged: restore it from git") from None
        runs.append(CommittedRun(folder, manifest, _relative(folder, Path(evidence))))
    return runs


def sample_keys(keys: Iterable[tuple[int, str]], k: int, seed: int, setting: str
                ) -> list[tuple[int, str]]:
    """k keys drawn reproducibly per run (the same draw on every machine)."""
    ordered = sorted(keys)
    rng = random.Random(f"{seed}:{setting}")
    return sorted(rng.sample(ordered, min(k, len(ordered))))


def _rerun(backend, run: CommittedRun, k: int, seed: int, tolerance: float) -> Comparison:
    from harness.plan import prompt_sha256, spec_of_committed
    from harness.runner import run_chunk

    identity = run.manifest["identity"]
    setting = run.setting
    info = backend.info
    if (info.weights_fingerprint, info.tokenizer_fingerprint) != (identity["weights"],
                                                                   identity["tokenizer"]):
        return Comparison(setting, 0, 0, 0, math.inf, (), "the model here has other weights "
                          "or another tokenizer than the committed run")
    try:
        spec = spec_of_committed(run.manifest)
    except HarnessError as exc:
        return Comparison(setting, 0, 0, 0, math.inf, (), f"the task does not load here ({exc})")
    if spec.task.sha256 != identity["task_sha256"]:
        return Comparison(setting, 0, 0, 0, math.inf, (), "the task file differs from the "
                          "committed run's (sha256)")
    prompts = {(p.idx, prompt_sha256(p)): p for p in spec.prompts}
    committed = results.load_done(run.folder, partial_tail_ok=False)
    chosen = sample_keys(set(committed) & set(prompts), k, seed, setting)
    if not chosen:
        return Comparison(setting, 0, 0, 0, math.inf, (), "no committed prompt is rendered "
                          "the same way here")
    records = run_chunk(backend, spec.task, [prompts[key] for key in chosen],
                        spec.settings.generation)
    return compare_records(setting, records, committed, tolerance)


def reproduce(runs: Sequence[CommittedRun], k: int = 3, seed: int = 0,
              models: Sequence[str] | None = None, tolerance: float = TOLERANCE,
              device: str = "cpu", on_run: Callable[[Comparison | None], None] | None = None
              ) -> tuple[list[Comparison], list[str]]:
    """Re-run k seeded examples of every committed run (`committed_runs(evidence)`) whose
    model loads here; compare.

    Returns the comparisons and a line per model that could not be loaded on this machine
    (e.g. a hub model without network). One model is in memory at a time.
    """
    from harness.models import load_model

    if not runs:
        raise HarnessError("no committed runs to reproduce")
    groups: dict[tuple[str, str, str, str], list[CommittedRun]] = {}
    for run in runs:
        if models is None or run.model_key[0] in models:
            groups.setdefault(run.model_key, []).append(run)
    comparisons: list[Comparison] = []
    skipped: list[str] = []
    for (name, revision, dtype, boundary), group in groups.items():
        try:
            backend = load_model(name, revision, dtype=dtype, device=device, boundary=boundary)
        except HarnessError as exc:
            skipped.append(f"{name}@{revision} ({len(group)} runs): not available here ({exc})")
            if on_run is not None:
                for _ in group:
                    on_run(None)
            continue
        try:
            for run in group:
                comparison = _rerun(backend, run, k, seed, tolerance)
                comparisons.append(comparison)
                if on_run is not None:
                    on_run(comparison)
        finally:
            backend.close()
    return comparisons, skipped


def table(comparisons: Sequence[Comparison]) -> str:
    """One line per run: setting, examples, generations identical, max |delta log-prob|."""
    rows = [("setting", "examples", "generations identical", "max |Δ log-prob|", "status")]
    for c in comparisons:
        status = "ok" if c.ok else (c.problem or f"differs: idx {', '.join(map(str, c.differing[:8]))}")
        delta = "-" if math.isinf(c.max_abs_delta) and c.problem else f"{c.max_abs_delta:.1e}"
        rows.append((c.setting, str(c.examples), f"{c.generations_identical}/{c.examples}", delta,
                     status))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in rows)


def verdict(comparisons: Sequence[Comparison], tolerance: float = TOLERANCE) -> str:
    """One sentence: does this machine reproduce the committed evidence?"""
    if not comparisons:
        return "no committed run has the same identity: nothing to compare"
    examples = sum(c.examples for c in comparisons)
    generations = sum(c.generations_identical for c in comparisons)
    finite = [c.max_abs_delta for c in comparisons if not math.isinf(c.max_abs_delta)]
    worst = max(finite, default=math.inf)
    bad = [c for c in comparisons if not c.ok]
    head = (f"{len(comparisons)} run(s), {examples} examples compared with the committed "
            f"evidence: generations identical {generations}/{examples}, max |Δ log-prob| "
            f"{worst:.1e} (tolerance {tolerance:.0e})")
    if not bad:
        return f"REPRODUCED: {head}"
    return f"DRIFT in {len(bad)} run(s): {head}"
