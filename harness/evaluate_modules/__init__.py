"""HuggingFace `evaluate` modules computed by `harness.metrics`.

Load one offline from its folder: `evaluate.load(harness.metrics.evaluate_module_path(name))`.
Each folder holds `<name>.py` (evaluate's convention for local modules); `evaluate` copies that
one file into its module cache, so each module imports only installed packages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from harness.records import ExampleRecord

BIGBENCH_CITATION = """@article{srivastava2023beyond, title={Beyond the Imitation Game: Quantifying and
extrapolating the capabilities of language models}, journal={TMLR}, year={2023}}"""


def info(description: str, inputs_description: str, predictions: Any, references: Any,
         citation: str = BIGBENCH_CITATION):
    """The `evaluate.MetricInfo` of a metric, given its input features."""
    import datasets
    import evaluate

    return evaluate.MetricInfo(
        description=description, citation=citation, inputs_description=inputs_description,
        features=datasets.Features({"predictions": predictions, "references": references}))


def score(metric: Callable[[ExampleRecord], float], examples: Iterable[dict[str, Any]]
          ) -> dict[str, float | int]:
    """`metric`'s mean over the examples it can score, and how many it could not (NaN).

    Each example gives the record fields the metric reads; the rest stay empty.
    """
    values = np.array([metric(ExampleRecord(task="evaluate", idx=i, shots=0, prompt="",
                                            prompt_sha256="", shot_idxs=(),
                                            **{"targets": (), **fields}))
                       for i, fields in enumerate(examples)], dtype=np.float64)
    scored = values[~np.isnan(values)]
    return {metric.__name__: float(scored.mean()) if scored.size else float("nan"),
            "n_nan": int(values.size - scored.size)}
