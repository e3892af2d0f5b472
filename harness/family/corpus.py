"""Synthetic arithmetic in BIG-bench's Q/A format: the pico family's training corpus.

Problems are phrased as BIG-bench's arithmetic task phrases them ("What is 123 plus 456?",
"minus", "times", "divided by") and formatted by the same code that formats BIG-bench
examples (`harness.tasks`), so a training document looks exactly like a k-shot BIG-bench
prompt: examples joined by "\\n", each "\\nQ: ...\\nA: answer". Part of the problems show
their choices the way BIG-bench does (two wrong answers of the same length, one shorter,
one longer, "banana", "house"), the rest are plain questions. Every problem that appears in
the BIG-bench arithmetic task files is excluded.

Two answer styles share one problem stream:
* `direct`: the answer only ("A: 825");
* `scratchpad`: for + and -, the sum worked digit by digit from the right with the carry
  (or borrow) written into each step, then "so" and the final number
  ("A: 7+8+0=15, 5+6+1=12, 4+3+1=8, so 825"); for x and / just "so 56".

Pure standard library + NumPy; everything is a function of the seed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.tasks import DEFAULT_CHOICE_PREFIX, DEFAULT_INPUT_PREFIX, DEFAULT_OUTPUT_PREFIX

VERBS = {"+": "plus", "-": "minus", "*": "times", "/": "divided by"}
QUESTION = re.compile(r"^What is (\d+) (plus|minus|times|divided by) (\d+)\?$")
# Every character the family can read or write. Fixed, so the tokenizer never changes; it
# covers every BIG-bench arithmetic prompt (tests check this) and the scratchpad.
CHARS = "\n !+,-:=?ABQWabcdehilmnoprstuvy0123456789"
SPECIAL_TOKENS = ("<|pad|>", "<|unk|>", "<|endoftext|>")


@dataclass(frozen=True)
class Mix:
    """What the problem stream contains."""

    op_weights: tuple[tuple[str, float], ...] = (("+", 0.35), ("-", 0.35), ("*", 0.15),
                                                 ("/", 0.15))
    # digits of each +/- operand, drawn independently
    digit_weights: tuple[tuple[int, float], ...] = ((1, 1.0), (2, 3.0), (3, 6.0))
    # digits of each * operand, and of the dividend for /
    mul_digits: tuple[int, ...] = (1, 2)
    div_digits: tuple[int, ...] = (1, 2, 3)
    choices_fraction: float = 0.5

    def to_json(self) -> dict:
        return {"op_weights": dict(self.op_weights), "digit_weights": dict(self.digit_weights),
                "mul_digits": list(self.mul_digits), "div_digits": list(self.div_digits),
                "choices_fraction": self.choices_fraction}


def bigbench_arithmetic_questions(tasks_dir: Path) -> frozenset[str]:
    """The `input` of every example in every BIG-bench arithmetic subtask."""
    questions = set()
    for path in sorted((tasks_dir / "arithmetic").glob("*/task.json")):
        for example in json.loads(path.read_text(encoding="utf-8"))["examples"]:
            questions.add(example["input"])
    if not questions:
        raise FileNotFoundError(f"no arithmetic task files under {tasks_dir}")
    return frozenset(questions)


def _number(rng: np.random.RandomState, digits: int) -> int:
    low = 0 if digits == 1 else 10 ** (digits - 1)
    return int(rng.randint(low, 10 ** digits))


def _draw_operands(rng: np.random.RandomState, op: str, mix: Mix) -> tuple[int, int]:
    if op in "+-":
        digits, weights = zip(*mix.digit_weights)
        p = np.array(weights) / sum(weights)
        return (_number(rng, int(rng.choice(digits, p=p))),
                _number(rng, int(rng.choice(digits, p=p))))
    if op == "*":
        return (_number(rng, int(rng.choice(mix.mul_digits))),
                _number(rng, int(rng.choice(mix.mul_digits))))
    # exact division with a dividend of the chosen length, as BIG-bench builds its own
    digits = int(rng.choice(mix.div_digits))
    while True:
        divisor = max(1, _number(rng, int(rng.randint(1, digits + 1))))
        low, high = (1 if digits == 1 else 10 ** (digits - 1)), 10 ** digits - 1
        if high // divisor < max(1, low // divisor):
            continue
        quotient = int(rng.randint(max(1, -(-low // divisor)), high // divisor + 1))
        dividend = divisor * quotient
        if len(str(dividend)) == digits:
            return dividend, divisor


def solve(a: int, op: str, b: int) -> int:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a // b


def _distractors(rng: np.random.RandomState, answer: int) -> list[str]:
    """Wrong choices in BIG-bench's recipe: 2 of the answer's length, 1 shorter, 1 longer."""
    length = len(str(answer))
    wrong: list[int] = []
    while len(wrong) < 2:
        candidate = _number(rng, length) if length > 1 else int(rng.randint(0, 10))
        if candidate != answer and candidate not in wrong:
            wrong.append(candidate)
    if length > 1:
        wrong.append(_number(rng, max(1, length - 2)))
    wrong.append(_number(rng, length + 2))
    unique = [str(w) for w in dict.fromkeys(wrong) if w != answer]
    return unique + ["banana", "house"]


def scratchpad(a: int, op: str, b: int) -> str:
    """The worked answer (without the final number) for a scratchpad-style problem."""
    if op == "+":
        steps, carry = [], 0
        xs, ys = str(a)[::-1], str(b)[::-1]
        for i in range(max(len(xs), len(ys))):
            x = int(xs[i]) if i < len(xs) else 0
            y = int(ys[i]) if i < len(ys) else 0
            total = x + y + carry
            steps.append(f"{x}+{y}+{carry}={total}")
            carry = total // 10
        return ", ".join(steps) + ", "
    if op == "-":
        big, small = (a, b) if a >= b else (b, a)
        steps, borrow = [], 0
        xs, ys = str(big)[::-1], str(small)[::-1]
        for i in range(len(xs)):
            x = int(xs[i])
            y = int(ys[i]) if i < len(ys) else 0
            diff = x - y - borrow
            steps.append(f"{x}-{y}-{borrow}={diff}")
            borrow = 1 if diff < 0 else 0
        return f"{big}-{small}: " + ", ".join(steps) + ", "
    return ""


def answer_text(a: int, op: str, b: int, style: str) -> str:
    value = solve(a, op, b)
    if style == "direct":
        return str(value)
    if style == "scratchpad":
        return f"{scratchpad(a, op, b)}so {value}"
    raise ValueError(f"unknown answer style {style!r}")


def format_problem(a: int, op: str, b: int, style: str, choices: list[str] | None) -> str:
    """One problem as BIG-bench formats an example, answer appended (a k-shot block)."""
    question = f"What is {a} {VERBS[op]} {b}?"
    if choices:
        # BIG-bench: sorted choices permuted by a fresh RandomState(42) per example.
        shown = np.random.RandomState(42).permutation(sorted(choices))
        question += DEFAULT_CHOICE_PREFIX + DEFAULT_CHOICE_PREFIX.join(str(c) for c in shown)
    return DEFAULT_INPUT_PREFIX + question + DEFAULT_OUTPUT_PREFIX + answer_text(a, op, b, style)


def problems(seed: int, excluded: frozenset[str], mix: Mix = Mix(),
             ) -> Iterator[tuple[int, str, int, list[str] | None]]:
    """An endless, seeded stream of (a, op, b, choices or None), never a BIG-bench problem."""
    rng = np.random.RandomState(seed)
    ops, weights = zip(*mix.op_weights)
    p = np.array(weights) / sum(weights)
    while True:
        op = str(rng.choice(ops, p=p))
        a, b = _draw_operands(rng, op, mix)
        show_choices = rng.random_sample() < mix.choices_fraction
        if f"What is {a} {VERBS[op]} {b}?" in excluded:
            continue
        choices = None
        if show_choices:
            choices = _distractors(rng, solve(a, op, b)) + [str(solve(a, op, b))]
        yield a, op, b, choices


def rows(seed: int, n_rows: int, row_chars: int, style: str, excluded: frozenset[str],
         mix: Mix = Mix()) -> list[str]:
    """`n_rows` training rows of exactly `row_chars` characters.

    Each row starts at a problem and packs whole problems joined by "\\n" (BIG-bench's
    few-shot separator); the space left is filled with the start of one more problem.
    Every row is a valid k-shot prompt prefix. The stream depends only on `seed` and `mix`,
    so every size of a family sees the same data in the same order.
    """
    stream = problems(seed, excluded, mix)
    out = []
    for _ in range(n_rows):
        text = ""
        while len(text) < row_chars:
            a, op, b, choices = next(stream)
            block = format_problem(a, op, b, style, choices)
            text = block if not text else text + "\n" + block
        out.append(text[:row_chars])
    return out
