"""How the report prints numbers and names, on the page, in summary.md and in the tests.

A metric mean in a table is exactly `format_value(summary mean)`; the page's script prints the
JSON block's numbers the same way (`harness.report.script`).
"""

from __future__ import annotations

import html
import math

from harness.emergence import Estimate


def format_value(value: float | None) -> str:
    """'0.233', '-8.360', '1,234', '5.81e-04'; '–' for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    size = abs(value)
    if 0 < size < 0.001:
        return f"{value:.2e}"
    if size >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3f}"


def format_ci(low: float | None, high: float | None) -> str:
    return f"[{format_value(low)}, {format_value(high)}]"


def format_count(value: int | float | None) -> str:
    """Parameter counts and steps: '12,768'."""
    return "–" if value is None else f"{int(value):,}"


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def wrap(name: str) -> str:
    """A metric name that may break after its underscores in a narrow column header."""
    return esc(name).replace("_", "_<wbr>")


def anchor(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text)


def value_text(estimate: Estimate, signed: bool = False) -> str:
    """'0.420 [0.330, 0.520]' with the page's number format; '[no CI]' without an interval."""
    text = format_value(estimate.estimate)
    if signed and not math.isnan(estimate.estimate) and estimate.estimate >= 0:
        text = "+" + text
    if not estimate.has_ci:
        return f"{text} [no CI]"
    return f"{text} [{format_value(estimate.ci_low)}, {format_value(estimate.ci_high)}]"


def human(value: float, _position: object = None) -> str:
    """Parameter counts and steps as 5k, 16k, 1.4M, 12B (also a matplotlib tick formatter)."""
    if value == 0:
        return "0"
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"
