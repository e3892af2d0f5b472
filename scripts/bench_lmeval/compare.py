"""Agreement between the two engines on one workload: pure functions over their outputs.

An engine's outputs are one record per doc: {"logprobs": [...], "n_tokens": [...],
"greedy": [...]} per continuation (every choice, or the target) for log-likelihood
workloads, {"text": ...} for generation.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from bench_lmeval.workloads import Doc

TOLERANCE = 1e-3  # max |delta log-prob| allowed between the engines in float32


def max_abs_delta(ours: Sequence[dict], theirs: Sequence[dict]) -> dict:
    """Largest |log-prob difference| over every (doc, continuation), and where it is."""
    worst = {"max_abs_delta": 0.0, "doc": None, "continuation": None, "n_values": 0}
    for d, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        for c, (x, y) in enumerate(zip(a["logprobs"], b["logprobs"], strict=True)):
            worst["n_values"] += 1
            delta = abs(x - y)
            if delta > worst["max_abs_delta"] or worst["doc"] is None:
                worst.update(max_abs_delta=delta, doc=d, continuation=c)
    return worst


def drift(reference: Sequence[dict], other: Sequence[dict]) -> dict:
    """How far one run's log-probs move from a reference run's (bf16 against float32): the
    largest and mean |difference| over every (doc, continuation), and how many continuations
    change their all-greedy flag."""
    deltas, flips = [], 0
    for a, b in zip(reference, other, strict=True):
        deltas += [abs(x - y) for x, y in zip(a["logprobs"], b["logprobs"], strict=True)]
        flips += sum(x != y for x, y in zip(a["greedy"], b["greedy"], strict=True))
    return {"n_values": len(deltas), "max_abs_delta": max(deltas, default=0.0),
            "mean_abs_delta": statistics.fmean(deltas) if deltas else 0.0, "greedy_flips": flips}


def token_count_mismatches(ours: Sequence[dict], theirs: Sequence[dict]) -> list[tuple[int, int]]:
    """(doc, continuation) pairs whose continuation token counts differ (None: not known)."""
    return [(d, c) for d, (a, b) in enumerate(zip(ours, theirs, strict=True))
            for c, (x, y) in enumerate(zip(a["n_tokens"], b["n_tokens"], strict=True))
            if x is not None and y is not None and x != y]


def argmax(values: Sequence[float]) -> int:
    """First index of the largest value (numpy's and lm-eval's tie rule)."""
    return max(range(len(values)), key=lambda i: (values[i], -i))


def choice_accuracy(outputs: Sequence[dict], docs: Sequence[Doc]) -> float:
    """Fraction of docs whose highest-log-prob choice is the gold one (lm-eval's acc;
    BIG-bench's multiple_choice_grade when one choice scores 1 and the rest 0)."""
    return statistics.fmean(argmax(o["logprobs"]) == d.gold for o, d in zip(outputs, docs))


def greedy_accuracy(outputs: Sequence[dict]) -> float:
    """Fraction of targets whose every token is the greedy one (lm-eval's loglikelihood acc)."""
    return statistics.fmean(all(o["greedy"]) for o in outputs)


def mean_logprob(outputs: Sequence[dict]) -> float:
    return statistics.fmean(o["logprobs"][0] for o in outputs)


def answer(text: str, doc: Doc) -> str:
    """BIG-bench's post-processed answer (stop string, then the first regex match)."""
    from harness.answers import extract_answer

    return extract_answer(text, doc.output_regex, doc.stop_string)[0]


def generation_accuracy(outputs: Sequence[dict], docs: Sequence[Doc]) -> float:
    """exact_str_match: the post-processed generation equals the target."""
    return statistics.fmean(answer(o["text"], d) == d.target for o, d in zip(outputs, docs))


def compare(kind: str, docs: Sequence[Doc], ours: Sequence[dict], theirs: Sequence[dict]) -> dict:
    """Everything the table reports about agreement for one workload."""
    if kind == "generate":
        same_text = [o["text"] == t["text"] for o, t in zip(ours, theirs, strict=True)]
        same_answer = [answer(o["text"], d) == answer(t["text"], d)
                       for o, t, d in zip(ours, theirs, docs)]
        first = next((i for i, same in enumerate(same_text) if not same), None)
        return {
            "accuracy_ours": generation_accuracy(ours, docs),
            "accuracy_lmeval": generation_accuracy(theirs, docs),
            "identical_generations": sum(same_text), "identical_answers": sum(same_answer),
            "n_docs": len(docs),
            "first_difference": None if first is None else {
                "doc": first, "task": docs[first].task, "idx": docs[first].idx,
                "ours": ours[first]["text"], "lmeval": theirs[first]["text"]},
        }
    delta = max_abs_delta(ours, theirs)
    mismatched = token_count_mismatches(ours, theirs)
    result = {**delta, "within_tolerance": delta["max_abs_delta"] <= TOLERANCE,
              "token_count_mismatches": len(mismatched),
              "first_token_count_mismatch": mismatched[0] if mismatched else None}
    if delta["doc"] is not None:
        d, c = delta["doc"], delta["continuation"]
        result["worst"] = {"task": docs[d].task, "idx": docs[d].idx,
                           "ours": ours[d]["logprobs"][c], "lmeval": theirs[d]["logprobs"][c],
                           "n_tokens_ours": ours[d]["n_tokens"][c],
                           "n_tokens_lmeval": theirs[d]["n_tokens"][c]}
    if kind == "multiple_choice":
        result["accuracy_ours"] = choice_accuracy(ours, docs)
        result["accuracy_lmeval"] = choice_accuracy(theirs, docs)
    else:
        result["accuracy_ours"] = greedy_accuracy(ours)
        result["accuracy_lmeval"] = greedy_accuracy(theirs)
        result["mean_logprob_ours"] = mean_logprob(ours)
        result["mean_logprob_lmeval"] = mean_logprob(theirs)
    return result
