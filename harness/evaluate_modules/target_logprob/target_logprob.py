"""Target log-likelihood as a HuggingFace `evaluate` module, computed by harness.metrics."""

import datasets
import evaluate

from harness.evaluate_modules import info, score
from harness.metrics import target_logprob

_DESCRIPTION = """log p(target | prompt): the sum of the target's per-token log-probs; with several
targets, the best one (BIG-bench's log_likelihood takes logsumexp over targets instead). Averaged
over examples."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of list of list of float): per example, per target, the per-token log-probs.
    references (list of list of str): per example, the targets (same order).
Returns:
    target_logprob (float): mean over examples; n_nan (int): examples that could not be scored.
Example:
    >>> metric = evaluate.load(harness.metrics.evaluate_module_path("target_logprob"))
    >>> metric.compute(predictions=[[[-1.0, -0.5]], [[-4.0], [-2.0]]], references=[["ab"], ["a", "b"]])
    {'target_logprob': -1.75, 'n_nan': 0}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TargetLogprob(evaluate.Metric):
    def _info(self):
        return info(_DESCRIPTION, _KWARGS_DESCRIPTION,
                    predictions=datasets.Sequence(datasets.Sequence(datasets.Value("float64"))),
                    references=datasets.Sequence(datasets.Value("string")))

    def _compute(self, predictions, references):
        return score(target_logprob, ({"targets": tuple(targets),
                                       "target_logprobs": tuple(tuple(lp) for lp in logprobs)}
                                      for logprobs, targets in zip(predictions, references)))
