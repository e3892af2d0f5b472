"""BIG-bench multiple_choice_grade as a HuggingFace `evaluate` module, computed by harness.metrics."""

import datasets
import evaluate

from harness.evaluate_modules import info, score
from harness.metrics import multiple_choice_grade

_DESCRIPTION = """Target score of the choice with the highest log-prob, averaged over examples; ties
broken by BIG-bench's hash of the normalised log-prob array. BIG-bench
task_metrics.measure_multiple_choice_grade."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of list of float): per example, the summed log-prob of each choice.
    references (list of list of float): per example, the target score of each choice (same order).
Returns:
    multiple_choice_grade (float): mean over examples; n_nan (int): examples that could not be scored.
Example:
    >>> metric = evaluate.load(harness.metrics.evaluate_module_path("multiple_choice_grade"))
    >>> metric.compute(predictions=[[-1.0, -3.0], [-2.0, -0.5]], references=[[1, 0], [1, 0]])
    {'multiple_choice_grade': 0.5, 'n_nan': 0}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MultipleChoiceGrade(evaluate.Metric):
    def _info(self):
        return info(_DESCRIPTION, _KWARGS_DESCRIPTION,
                    predictions=datasets.Sequence(datasets.Value("float64")),
                    references=datasets.Sequence(datasets.Value("float64")))

    def _compute(self, predictions, references):
        return score(multiple_choice_grade, (
            {"choices": tuple(str(c) for c in range(len(logprobs))), "target_scores": tuple(scores),
             "choice_logprobs": tuple((lp,) for lp in logprobs)}
            for logprobs, scores in zip(predictions, references)))
