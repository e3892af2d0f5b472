"""What the runner asks of a model, and what a model answers: typed, immutable records.

A backend answers two kinds of request (the smallest interface that runs every task, as
BIG-bench's `cond_log_prob`/`generate_text`):

* `loglikelihood([LoglikRequest])` -> per-token log-probs and per-token is-greedy of each
  continuation after its context;
* `generate([GenRequest])` -> greedy text, stopped by a stop rule or a token budget.

Sums, means, per-character normalisations and "all tokens greedy" are metrics
(harness.metrics), computed from these per-token values, never by a backend.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

from harness.answers import StopRule

Progress = Callable[[int], None]

BOUNDARIES = ("natural", "bigbench")
"""How a (context, continuation) pair is tokenised.

natural: trailing whitespace of the context joins the continuation, the whole string is
    tokenised once and split at the character boundary ("...A:" + " hydrogen").
bigbench: context and continuation are tokenised separately and the ids concatenated, as
    BIG-bench's own HF model does ("...A: " + "hydrogen").
"""


@dataclass(frozen=True)
class LoglikRequest:
    context: str
    continuation: str


@dataclass(frozen=True)
class TokenScores:
    """Per-token results for one continuation (after the boundary convention is applied)."""

    tokens: tuple[str, ...]
    logprobs: tuple[float, ...]
    is_greedy: tuple[bool, ...]


@dataclass(frozen=True)
class GenRequest:
    """Greedy generation after `context`, at most `max_new_tokens` tokens.

    With a `stop` rule, generation stops as soon as the post-processed answer can no longer
    change (`StopRule.is_final`); the rule is data, so a backend never imports task code.
    """

    context: str
    max_new_tokens: int
    stop: StopRule | None = None


@dataclass(frozen=True)
class Generation:
    text: str
    n_tokens: int
    stop_reason: str  # "rule", "eos" or "max_new_tokens"


@dataclass(frozen=True)
class ModelInfo:
    """Identity and size of a loaded model; part of every run's cache key."""

    name: str  # alias or the name given by the user
    source: str  # hub id, local folder or .gguf path that was loaded
    revision: str
    backend: str
    dtype: str
    device: str
    total_params: int
    non_embedding_params: int
    weights_fingerprint: str  # hub commit, or sha256 of local weight files
    tokenizer_fingerprint: str  # sha256 of the tokenizer's serialised vocabulary and rules
    boundary: str

    def to_json(self) -> dict:
        return asdict(self)


class Backend(Protocol):
    info: ModelInfo
    batch_size: str  # as asked for: "auto" (a token budget) or a row count; for the manifest

    def peak_memory_mb(self) -> float | None:
        """Peak accelerator memory used so far, in MiB; None where it is not measured (CPU)."""
        ...

    def loglikelihood(self, requests: Sequence[LoglikRequest],
                      progress: Progress | None = None) -> list[TokenScores]: ...

    def generate(self, requests: Sequence[GenRequest],
                 progress: Progress | None = None) -> list[Generation]: ...

    def tokenize(self, texts: Sequence[str]) -> list[tuple[str, ...]]: ...

    def close(self) -> None: ...
