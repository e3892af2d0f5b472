"""The page's one JSON block: every run and every summary value, read by the page's script.

The value tables, the list of every run and the explorer are drawn from it in the browser, so
a number is written into the page once, not once per table cell, chart layer and tooltip.
Columns, not row objects: `runs` holds one list per field (the run's position in them is its
id, which the static tables' `data-run` attributes name too); `values[metric]` one entry per
run, null where the run has no value, else [mean, CI low, CI high], then n when it differs
from the run's n (0: the same), then the chance level when the metric has one. Every number
is the value the page prints (`format_value`), so the script prints exactly the digits a
static table would. Strings that repeat (task, model, group...) are stored once: such a column
is {"levels": [...], "codes": [...]}.

The page is opened as a file, so no server compresses it: the JSON block (and the Vega bundle)
are stored gzip-compressed in base64 (`pack`), a fifth of their size, and the page's script
inflates them with the browser's DecompressionStream (Chromium 80, Firefox 113, Safari 16.4).
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import Sequence
from typing import Any

from harness.report.axes import ScaleAxis
from harness.report.data import Run
from harness.report.text import format_value

DATA_ID = "report-data"


def printed(value: float | None) -> float | str | None:
    """The number `format_value` prints, as a JSON value ("inf", "-inf" for infinities)."""
    text = format_value(value)
    if text == "–":
        return None
    if text in ("inf", "-inf"):
        return text
    number = float(text.replace(",", ""))
    if format_value(number) != text:  # 999.9996 prints "1000.000", 1000.0 prints "1,000"
        number = float(f"{float(value):.10g}")  # type: ignore[arg-type]
    return number


def _entry(run: Run, metric: str) -> list[Any] | None:
    entry = run.metrics.get(metric) or {}
    if entry.get("mean") is None:
        return None
    values = [printed(entry["mean"]), printed(entry.get("ci_low")), printed(entry.get("ci_high"))]
    n = entry.get("n", run.n)
    chance = entry.get("chance")
    if chance is not None:
        return [*values, 0 if n == run.n else n, printed(chance)]
    return values if n == run.n else [*values, n]


def _levels(values: list[Any]) -> dict[str, list[Any]]:
    """A column of repeated strings as its distinct values and each run's index into them."""
    levels = list(dict.fromkeys(values))
    index = {value: i for i, value in enumerate(levels)}
    return {"levels": levels, "codes": [index[value] for value in values]}


REPEATED = ("model", "revision", "group", "task", "labels", "limit", "device", "commit")


def run_columns(runs: Sequence[Run], axis: ScaleAxis) -> dict[str, Any]:
    """One list per field of the runs, in the runs' order; repeated strings as levels and codes.
    Each scale axis is a column: "params" (`axis`'s parameter count: total for the "total" axis,
    else non-embedding), "compute" (6·N·D FLOPs) and "bpb" (held-out bits per byte), null where a
    run has none (`ScaleAxis.value`: a compute of 0 at step 0 too); `x_columns` says which one the
    tables print."""
    columns = _plain_columns(runs, axis)
    return {name: _levels(values) if name in REPEATED else values for name, values in columns.items()}


# The page's column of each x axis, and how its script prints it (`ScaleAxis.cell`'s digits)
X_COLUMNS = {"params": ("params", "count"), "total": ("params", "count"), "compute": ("compute", "flops"),
             "loss": ("bpb", "bpb")}
_COMPUTE, _LOSS = ScaleAxis("compute"), ScaleAxis("loss")  # null where a log axis has no place for a run


def x_columns(axis: ScaleAxis) -> dict[str, str]:
    """What the page's script needs to print the x axis: its label, column and number format."""
    column, number_format = X_COLUMNS[axis.key]
    return {"x_label": axis.label, "x_column": column, "x_format": number_format}


def _plain_columns(runs: Sequence[Run], axis: ScaleAxis) -> dict[str, list[Any]]:
    def provenance(run: Run) -> dict[str, Any]:
        return run.summary.get("provenance", {})

    return {
        "dir": [run.rel_dir for run in runs],
        "model": [run.model for run in runs], "revision": [run.revision for run in runs],
        "group": [run.group for run in runs], "task": [run.task for run in runs],
        "shots": [run.shots for run in runs], "labels": [run.demo_labels for run in runs],
        "params": [run.params(axis.key) for run in runs], "step": [run.step for run in runs],
        "compute": [_COMPUTE.value(run) for run in runs],
        "bpb": [printed(_LOSS.value(run)) for run in runs],
        "n": [run.n for run in runs],
        "limit": [run.summary.get("settings", {}).get("limit") for run in runs],
        "device": [run.summary.get("settings", {}).get("device") for run in runs],
        "wall_s": [provenance(run).get("wall_s") for run in runs],
        "commit": [str(provenance(run).get("git", {}).get("commit") or "")[:10] for run in runs],
        "scored": [provenance(run).get("scored") for run in runs],
    }


def page_data(runs: Sequence[Run], metrics: Sequence[str], axis: ScaleAxis) -> dict[str, Any]:
    """The runs' columns, the x axis (`x_columns`) and, per metric, each run's printed values."""
    return {"runs": run_columns(runs, axis), **x_columns(axis),
            "values": {metric: [_entry(run, metric) for run in runs] for metric in metrics}}


def pack(element_id: str, text: str) -> str:
    """`text` gzip-compressed (no timestamp: the same text packs to the same bytes) in base64, in a
    script element the browser does not run; the page's script inflates it."""
    packed = base64.b64encode(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)).decode("ascii")
    return f'<script type="application/gzip" id="{element_id}">{packed}</script>'


def unpack(packed: str) -> str:
    """The text of a `pack`ed element's content (what the tests read)."""
    return gzip.decompress(base64.b64decode(packed)).decode("utf-8")


PACK_SECTION_BYTES = 50_000  # sections above this are packed (their text gzips about 10x)
_PACKED_SLOT = re.compile(r'<div data-packed="([\w-]+)"></div>')


def packed_section(html: str, element_id: str) -> str:
    """A large section's HTML with its body packed: the heading stays on the page (the
    contents link to it), the script inflates the rest into its place."""
    if len(html.encode("utf-8")) <= PACK_SECTION_BYTES or "</h2>" not in html:
        return html
    head, _, body = html.partition("</h2>")
    return f'{head}</h2><div data-packed="{element_id}"></div>{pack(element_id, body)}'


def inline_packed(page: str) -> str:
    """The page with every packed section inflated in place: what the browser shows after the
    script ran (for tests and tools that read the HTML)."""
    blocks = dict(re.findall(r'<script type="application/gzip" id="([\w-]+)">([^<]*)</script>', page))

    inflated = []

    def inflate(match: re.Match) -> str:
        inflated.append(match.group(1))
        return unpack(blocks[match.group(1)])
    page = _PACKED_SLOT.sub(inflate, page)
    for element_id in inflated:  # drop the packed copy: the inflated HTML is what is read
        page = page.replace(f'<script type="application/gzip" id="{element_id}">'
                            f'{blocks[element_id]}</script>', "")
    return page


def render_data(data: dict[str, Any]) -> str:
    """The JSON block, packed."""
    return pack(DATA_ID, json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False))
