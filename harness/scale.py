"""Scale axes besides parameters: training compute and held-out loss, as pure functions.

* Training compute C = 6·N·D (Kaplan et al. 2020, "Scaling Laws for Neural Language
  Models", eq. 2.1 and section 2.1): N is the **non-embedding** parameter count (Kaplan's
  convention; embeddings and the output layer's vocabulary projection are excluded, as
  `harness.models.hf_load.parameter_counts` counts them), D the training tokens seen. 6 = 2
  FLOPs per parameter per token forward, 4 backward.
* Tokens seen: a trained family's recipe (batch_size x seq_len predicted tokens per step,
  `harness.family.train`), Pythia's published 2,097,152 tokens per step (1,024 sequences of
  2,048 tokens; `main` is step143000). Anything else has no known D: its compute stays
  None, never guessed.

No imports beyond the standard library.
"""

from __future__ import annotations

import math

# Pythia (Biderman et al. 2023): 1,024 sequences x 2,048 tokens per optimiser step.
PYTHIA_TOKENS_PER_STEP = 2_097_152
PYTHIA_FINAL_STEP = 143_000  # the `main` revision


def _known(value: float | int | None) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def training_compute(non_embedding_params: float | int | None,
                     tokens_seen: float | int | None) -> float | None:
    """6 · N · D in FLOPs (N non-embedding parameters, D tokens seen); None when either is
    unknown (None or NaN)."""
    if not (_known(non_embedding_params) and _known(tokens_seen)):
        return None
    return 6.0 * float(non_embedding_params) * float(tokens_seen)


def pythia_tokens_seen(step: int | None) -> int | None:
    """Tokens a Pythia checkpoint has seen at optimiser step `step` (None: unknown)."""
    return None if step is None else step * PYTHIA_TOKENS_PER_STEP
