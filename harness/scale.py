"""Scale axes besides parameters: training compute and held-out loss, as pure functions.

* Training compute C = 6·N·D (Kaplan et al. 2020, "Scaling Laws for Neural Language
  Models", eq. 2.1 and section 2.1): N is the **non-embedding** parameter count (Kaplan's
  convention; embeddings and the output layer's vocabulary projection are excluded, as
  `harness.models.hf_load.parameter_counts` counts them), D the training tokens seen. 6 = 2
  FLOPs per parameter per token forward, 4 backward.
* Tokens seen come from the model registry's lineage (`harness.models.registry.lineage`): a
  trained family's recipe (batch_size x seq_len predicted tokens per step), Pythia's
  published 2,097,152 tokens per step (`main` is step143000). Anything else has no known D:
  its compute stays None, never guessed.

No imports beyond the standard library.
"""

from __future__ import annotations

import math


def _known(value: float | int | None) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def training_compute(non_embedding_params: float | int | None,
                     tokens_seen: float | int | None) -> float | None:
    """6 · N · D in FLOPs (N non-embedding parameters, D tokens seen); None when either is
    unknown (None or NaN)."""
    if not (_known(non_embedding_params) and _known(tokens_seen)):
        return None
    return 6.0 * float(non_embedding_params) * float(tokens_seen)
