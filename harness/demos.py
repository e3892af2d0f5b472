"""Flipped and unrelated labels in few-shot demonstrations (Wei et al. 2023, "Larger
language models do in-context learning differently").

A k-shot prompt is built exactly as BIG-bench builds it (same demonstrations, same order);
only each demonstration's answer is replaced, by a fixed, seeded rule:

* flipped, multiple-choice tasks: the answer becomes the choice at sigma(i), where i is
  the correct choice's position in the task file's choice list and sigma a fixed
  derangement (a permutation with no fixed point) of the positions, so every
  demonstration is confidently wrong in the same systematic way;
* flipped, integer answers (arithmetic): every digit d becomes pi(d) for a fixed
  derangement pi of 0-9 (the sign is kept): "What is 2 plus 3?" is shown with "A: 8" when
  pi(5) = 8;
* unrelated: the answer becomes a semantically unrelated word, chosen by the correct
  choice's position (multiple choice) or the answer's last digit (integers) from
  UNRELATED_WORDS.

For the query itself the same rule gives `demo_target`: the answer of a model that follows
the demonstrations instead of its prior. Pure standard library + NumPy.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from harness.answers import INTEGER
from harness.errors import HarnessError
from harness.tasks import Example, Task

MODES = ("true", "flipped", "unrelated")
SEED = 1234
UNRELATED_WORDS = ("apple", "river", "piano", "cloud", "stone", "tiger", "lamp", "sugar",
                   "wheel", "forest")


@lru_cache(maxsize=256)
def derangement(n: int, seed: int = SEED) -> tuple[int, ...]:
    """A uniformly drawn permutation of range(n) with no fixed point (rejection sampling)."""
    if n < 2:
        raise HarnessError(f"cannot derange {n} item(s): flipped labels need at least 2 choices")
    rng = np.random.RandomState(seed)
    while True:
        perm = tuple(int(i) for i in rng.permutation(n))
        if all(i != p for i, p in enumerate(perm)):
            return perm


def _correct_position(example: Example) -> int:
    best = max(example.target_scores)
    return example.target_scores.index(best)


def _is_integer_task(task: Task) -> bool:
    return all(INTEGER.fullmatch(ex.targets[0]) for ex in task.examples)


def relabeler(task: Task, mode: str, seed: int = SEED) -> Callable[[Example], str] | None:
    """The answer-replacement rule of `mode` for `task` (None for true labels)."""
    if mode not in MODES:
        raise HarnessError(f"unknown --demo-labels {mode!r}; use {', '.join(MODES)}")
    if mode == "true":
        return None
    if _is_integer_task(task):
        digits = derangement(10, seed)

        def integer_rule(example: Example) -> str:
            answer = example.targets[0]
            sign, body = (answer[0], answer[1:]) if answer[0] in "+-" else ("", answer)
            if mode == "flipped":
                return sign + "".join(str(digits[int(d)]) for d in body)
            return UNRELATED_WORDS[int(body[-1]) % len(UNRELATED_WORDS)]

        return integer_rule
    if task.has_choices:
        def choice_rule(example: Example) -> str:
            position = _correct_position(example)
            if mode == "flipped":
                return example.choices[derangement(len(example.choices), seed)[position]]
            return UNRELATED_WORDS[position % len(UNRELATED_WORDS)]

        return choice_rule
    raise HarnessError(f"--demo-labels {mode} needs choices or integer answers; {task.name} has "
                       "neither")
