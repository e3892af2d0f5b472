"""Digit accuracy (arithmetic partial credit) as an `evaluate` module, computed by harness.metrics."""

import datasets
import evaluate

from harness.evaluate_modules import info, score
from harness.metrics import digit_accuracy

_DESCRIPTION = """For integer targets: the fraction of the answer's characters that equal the target's,
both aligned on the right, over max(len(target), len(answer)). Examples whose target is not an
integer are not scored (counted in n_nan)."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): answers, already post-processed with the task's output_regex.
    references (list of str): the integer target of each example.
Returns:
    digit_accuracy (float): mean over scored examples; n_nan (int): examples that were not scored.
Example:
    >>> metric = evaluate.load(harness.metrics.evaluate_module_path("digit_accuracy"))
    >>> metric.compute(predictions=["58", "57", "x"], references=["57", "57", "cat"])
    {'digit_accuracy': 0.75, 'n_nan': 1}
"""

_CITATION = """@inproceedings{schaeffer2023mirage, title={Are Emergent Abilities of Large Language
Models a Mirage?}, booktitle={NeurIPS}, year={2023}}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class DigitAccuracy(evaluate.Metric):
    def _info(self):
        return info(_DESCRIPTION, _KWARGS_DESCRIPTION, predictions=datasets.Value("string"),
                    references=datasets.Value("string"), citation=_CITATION)

    def _compute(self, predictions, references):
        return score(digit_accuracy, ({"targets": (target,), "answer": answer}
                                      for answer, target in zip(predictions, references)))
