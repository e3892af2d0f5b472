"""The raw output of a model on one example: one line of examples.jsonl.

Written before any scoring; every metric is a pure function of these records, so a new
metric re-scores old runs (`harness rescore`) without running a model again.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from harness.errors import HarnessError


@dataclass(frozen=True)
class ExampleRecord:
    """Everything a model produced for one query, with what it is scored against.

    Per-token lists are in the model's tokens after the run's boundary convention (see
    `harness.models.base.BOUNDARIES`): under "natural" a continuation " hydrogen" carries the
    prompt's trailing space. `choices` keep task-file order; `choice_logprobs[i]` belongs to
    `choices[i]`; `target_logprobs[j]` to `targets[j]`.
    """

    task: str
    idx: int  # index of the example in its task.json
    shots: int
    prompt: str
    prompt_sha256: str
    shot_idxs: tuple[int, ...]
    targets: tuple[str, ...]
    choices: tuple[str, ...] = ()
    target_scores: tuple[float, ...] = ()
    # generation (None when the task has no generative metric)
    generation: str | None = None  # raw greedy text after the prompt
    generation_n_tokens: int = 0
    generation_stop: str = ""  # "rule", "eos" or "max_new_tokens"
    answer: str | None = None  # generation after BIG-bench post-processing
    answer_matched: bool | None = None  # did the output regex match anything
    answer_tokens: tuple[str, ...] = ()
    # log-likelihoods, per token
    choice_logprobs: tuple[tuple[float, ...], ...] = ()
    choice_greedy: tuple[tuple[bool, ...], ...] = ()
    target_logprobs: tuple[tuple[float, ...], ...] = ()
    target_greedy: tuple[tuple[bool, ...], ...] = ()
    target_tokens: tuple[tuple[str, ...], ...] = ()
    # text between the prompt and the scored targets, a suffix of the scoring context
    # (harness.runner.scoring_context): the model's own scratchpad under a variant with an
    # answer marker, else ""
    target_context: str = ""
    # with relabelled demonstrations: the answer of a model that follows them
    demo_target: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("choice_logprobs", "target_logprobs"):
            data[name] = [[_float32(v) for v in row] for row in data[name]]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExampleRecord:
        names = {f.name for f in fields(cls)}
        missing = {"task", "idx", "shots", "prompt", "prompt_sha256", "targets"} - set(data)
        if missing:
            raise ValueError(f"missing field(s) {sorted(missing)}")
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown field(s) {sorted(unknown)}")
        values = {}
        for name, value in data.items():
            values[name] = _tuples(value) if isinstance(value, list) else value
        return cls(**values)


def _float32(value: float) -> float:
    """The shortest decimal that still reads back as the same float32 (9 significant digits).

    Models compute log-probs in float32; printing the float64 they are held in would store
    8 meaningless digits per number and double the size of examples.jsonl.
    """
    return float(f"{value:.9g}")


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def packed_path(path: Path) -> Path:
    """examples.jsonl -> examples.jsonl.gz (finished runs, packed by `harness pack`)."""
    return Path(path).with_name(Path(path).name + ".gz")


def read_records(path: Path, strict: bool = True, partial_tail_ok: bool = True
                 ) -> list[ExampleRecord]:
    """Read examples.jsonl, after its packed part examples.jsonl.gz when there is one.

    A final line without its newline is what a killed writer leaves: with `partial_tail_ok`
    it is dropped (the runner redoes that example), else it is an error (scoring a file
    that an interrupted run left behind). Any other unreadable line is an error naming file
    and line, unless `strict` is False, in which case it is dropped too.
    """
    packed = packed_path(path)
    records: list[ExampleRecord] = []
    if packed.exists():
        import gzip

        try:
            raw = gzip.decompress(packed.read_bytes())
        except (OSError, EOFError) as exc:
            raise HarnessError(f"{packed}: damaged gzip file ({exc}); restore it from version "
                               "control or delete it and rerun to regenerate it") from None
        records = _parse(packed, raw, strict, partial_tail_ok=False)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return records
    return records + _parse(Path(path), raw, strict, partial_tail_ok)


def _parse(path: Path, raw: bytes, strict: bool, partial_tail_ok: bool) -> list[ExampleRecord]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HarnessError(f"{path}: not UTF-8 (byte {exc.start}); the file is damaged: move it "
                           "away and rerun to regenerate it") from None
    lines = text.split("\n")
    complete, tail = lines[:-1], lines[-1]  # tail is "" when the file ends with a newline
    records = []
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        try:
            records.append(ExampleRecord.from_json(json.loads(line)))
        except (json.JSONDecodeError, ValueError, TypeError) as exc:
            if strict:
                raise HarnessError(f"{path}: line {number} is not a valid example record ({exc}); "
                                   "the file is damaged: delete that line (or the file) and rerun "
                                   "to regenerate it") from None
    if tail and not partial_tail_ok:
        raise HarnessError(f"{path}: line {len(lines)} is incomplete (the run was interrupted "
                           "while writing); rerun the evaluation to finish it")
    return records
