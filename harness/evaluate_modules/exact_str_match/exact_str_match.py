"""BIG-bench exact_str_match as a HuggingFace `evaluate` module, computed by harness.metrics."""

import datasets
import evaluate

from harness.evaluate_modules import info, score
from harness.metrics import exact_str_match

_DESCRIPTION = """1 if the post-processed answer is one of the example's targets (exact, case-sensitive),
else 0; averaged over examples. BIG-bench task_metrics.exact_str_match_fn."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): answers, already post-processed with the task's output_regex.
    references (list of list of str): the targets of each example.
Returns:
    exact_str_match (float): mean over examples; n_nan (int): examples that could not be scored.
Example:
    >>> metric = evaluate.load(harness.metrics.evaluate_module_path("exact_str_match"))
    >>> metric.compute(predictions=["b", "x"], references=[["a", "b"], ["y"]])
    {'exact_str_match': 0.5, 'n_nan': 0}
"""

@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ExactStrMatch(evaluate.Metric):
    def _info(self):
        return info(_DESCRIPTION, _KWARGS_DESCRIPTION, predictions=datasets.Value("string"),
                    references=datasets.Sequence(datasets.Value("string")))

    def _compute(self, predictions, references):
        return score(exact_str_match, ({"targets": tuple(targets), "answer": answer}
                                       for answer, targets in zip(predictions, references)))
