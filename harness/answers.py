"""What a generation answers, and when generating more can no longer change it.

BIG-bench's post-processing of a generation (`bigbench/models/model_utils.py`:
`postprocess_output`) and the early-stopping rule derived from it. Tasks use it to score,
backends use it to stop: it lives here, apart from both, so that a backend receives the
rule as plain data (`StopRule` on a `GenRequest`) and never imports task code.
Standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# An integer as BIG-bench's arithmetic answers are written: optional sign, decimal digits.
INTEGER = re.compile(r"[-+]?[0-9]+")


@dataclass(frozen=True)
class StopRule:
    """When a generation may stop: once the post-processed answer (cut after `stop_string`,
    first match of `output_regex`) can no longer change. Plain data, so any backend can apply
    it (lm-evaluation-harness passes `until` the same way)."""

    stop_string: str | None = None
    output_regex: str | None = None

    def is_final(self, text: str) -> bool:
        return answer_is_final(text, self.output_regex, self.stop_string)


def extract_answer(text: str, output_regex: str | None, stop_string: str | None,
                   max_chars: int | None = None) -> tuple[str, bool | None]:
    """BIG-bench's post-processing of a generation (`model_utils.postprocess_output`).

    Optionally cut to `max_chars` characters (BIG-bench's evaluate script passes 30, which
    makes long targets unreachable; off by default here). Then cut after the first
    `stop_string` if it occurs at index > 0 (kept). Then keep the first match of
    `output_regex` (its group when it has one capturing group), or "" when nothing matches.
    Returns (answer, whether the regex matched;
    None without a regex), so a no-match is never confused with an empty answer.
    """
    if max_chars:
        text = text[:max_chars]
    if stop_string:
        index = text.find(stop_string)
        if index > 0:
            text = text[: index + len(stop_string)]
    if not output_regex:
        return text, None
    match = re.search(output_regex, text)
    if match is None:
        return "", False
    # one capturing group: its text, as BIG-bench's `re.findall(...)[0]` gives ("" when the
    # group took no part in the match)
    answer = (match.group(1) or "") if match.re.groups == 1 else match.group(0)
    return answer, True


def postprocess(text: str, output_regex: str | None, stop_string: str | None,
                max_chars: int | None = None) -> str:
    """The answer BIG-bench scores: `extract_answer` without the match flag."""
    return extract_answer(text, output_regex, stop_string, max_chars)[0]


_PROBES = ("0", "7", "a", "Z", " ", ".", "\n")


def answer_is_final(text: str, output_regex: str | None, stop_string: str | None) -> bool:
    """True once generating more text cannot change `postprocess(text, ...)`.

    With a stop string: once it occurs at index > 0 (everything after it is cut). With a
    regex: once its first match is followed by a line break (answers are one line) and
    appending any probe character leaves that first match unchanged (it is closed, and no
    earlier match can appear). Without either, never: generate to the token budget.
    """
    if stop_string:
        return text.find(stop_string) > 0
    if not output_regex:
        return False
    match = re.search(output_regex, text)
    if match is None or "\n" not in text[match.end():]:
        return False
    for probe in _PROBES:
        extended = re.search(output_regex, text + probe)
        if extended is None or extended.span() != match.span():
            return False
    return True
