"""Plain-text tables for the terminal (no heavy imports)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

# (column title, metric) - one column per metric group, side by side.
COLUMNS = (
    ("EM", "exact_str_match"),
    ("EM raw", "exact_match_raw"),
    ("MC", "multiple_choice_grade"),
    ("MC norm", "multiple_choice_grade_norm"),
    ("P(correct)", "correct_choice_prob"),
    ("logp", "target_logprob"),
    ("logp/tok", "target_logprob_per_token"),
    ("edit dist", "token_edit_distance"),
    ("digit acc", "digit_accuracy"),
    ("no match", "answer_no_match"),
)


def _cell(summary: dict[str, Any], metric: str) -> str:
    entry = summary["metrics"].get(metric)
    if not entry or entry.get("mean") is None or math.isnan(entry["mean"]):
        return "-"
    return f"{entry['mean']:.3f}"


def side_by_side(summaries: Sequence[dict[str, Any]], with_model: bool = False) -> str:
    """One row per (model, task, shots), one column per metric group."""
    header = ["task", "shots", "n", *(title for title, _ in COLUMNS)]
    if with_model:
        header.insert(0, "model")
    rows = [header]
    for s in summaries:
        row = [s["task"]["name"], str(s["shots"]), str(s["n"]),
               *(_cell(s, metric) for _, metric in COLUMNS)]
        if with_model:
            row.insert(0, f"{s['model']['name']}@{s['model']['revision']}")
        rows.append(row)
    columns = [c for c in range(len(header)) if c < len(header) - len(COLUMNS)
               or any(r[c] != "-" for r in rows[1:])]
    rows = [[r[c] for c in columns] for r in rows]
    header = rows[0]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for number, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells))
        if number == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
