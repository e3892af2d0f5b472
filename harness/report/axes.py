"""The report's x axis for size series: parameters, training compute or held-out loss.

`harness report --x params|total|compute|loss` (`non_embedding` is the old name of `params`).
An axis gives each run two numbers:

* its *value*, what tables and sentences print: non-embedding or total parameters, training
  compute 6·N·D in FLOPs (`Run.training_compute`, `harness.scale`), or held-out bits per byte
  (`Run.heldout_bpb`, joined as the index joins it, `harness.index.join_heldout_loss`);
* its *position* x, what size series hold (`Series.x`), figures draw on a log axis and the
  emergence statistics read (R² against log10 x; B and Kendall τ use only the order of x).
  x is the value itself, except for held-out loss: x = 1/bpb, so that x grows with scale as on
  the other axes and log10 x = −log10 bpb. Figures label that axis in bits per byte (ticks
  1/x), which puts lower loss to the right.

A run without a value, or with a value a log axis cannot hold (compute where the training
tokens are unknown, compute 0 at step 0, loss where the results hold no loss run of the same
weights), has no position: it is left out of size series, and the page names it (`Block.left_out`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from harness.errors import HarnessError
from harness.report.text import format_count, format_value, human

if TYPE_CHECKING:
    from harness.report.data import Run

XAxis = Literal["params", "total", "compute", "loss"]
X_AXES: dict[str, str] = {
    "params": "non-embedding parameters",
    "total": "parameters (total)",
    "compute": "training compute (FLOPs)",
    "loss": "held-out loss, bits per byte (lower →)",
}
_SHORT = {"compute": "compute (FLOPs)", "loss": "bits per byte (lower →)"}
ALIASES = {"non_embedding": "params"}  # the name `--x` had before compute and loss joined it
_UNITS = {"params": "parameters", "total": "parameters", "compute": "FLOPs", "loss": "bits per byte"}
_MISSING = {"compute": "no training compute (training tokens unknown, or step 0)",
            "loss": "no held-out loss (no loss/... run of the same weights)"}
_CAVEATS = {"compute": "Training compute is 6·N·D (N non-embedding parameters, D training tokens seen); "
                       "models whose training tokens are unknown have none.",
            "loss": "Held-out loss is the bits per byte of the same weights on their family's own held-out "
                    "corpus where the results hold that run, else on the reference text (the legends say "
                    "which); bits per byte on different texts do not compare."}
_STATISTIC = {"params": "log10(non-embedding parameters)", "total": "log10(total parameters)",
              "compute": "log10(training compute in FLOPs)",
              "loss": "log10(1/bits per byte) = −log10(bits per byte), so that x grows as held-out loss "
                      "falls"}


def flops(value: float, _position: object = None) -> str:
    """'1.2e15' (also a matplotlib tick formatter)."""
    return f"{value:.2g}".replace("e+", "e")


@dataclass(frozen=True)
class ScaleAxis:
    """The x axis of size series: which scale (`X_AXES`), its label, each run's value and position.

    What a section is given instead of a bare name, so that an axis added here reaches every
    figure (`tick`), table (`cell`) and sentence (`phrase`).
    """

    key: XAxis

    @property
    def label(self) -> str:
        return X_AXES[self.key]

    @property
    def short_label(self) -> str:
        """The label of a small panel (the headlines)."""
        return _SHORT.get(self.key, self.label)

    @property
    def statistic(self) -> str:
        """What the linear fit is against, in words (the page's method text)."""
        return _STATISTIC[self.key]

    @property
    def caveat(self) -> str:
        """What a reader must know to compare points on this axis ('' when nothing)."""
        return _CAVEATS.get(self.key, "")

    @property
    def missing(self) -> str:
        """Why a run has no position on this axis."""
        return _MISSING.get(self.key, "no value")

    def value(self, run: Run) -> float | None:
        """Parameters, FLOPs or bits per byte; None where unknown or not > 0 (a log axis)."""
        if self.key == "compute":
            value = run.training_compute
        elif self.key == "loss":
            value = run.heldout_bpb
        else:
            value = run.params(self.key)
        if value is None or not math.isfinite(value) or value <= 0:
            return None
        return float(value)

    def x(self, run: Run) -> float | None:
        """The run's position: the value, or 1/bpb for held-out loss (grows with scale, > 0)."""
        value = self.value(run)
        return None if value is None else self.value_at(value)

    def value_at(self, x: float) -> float:
        """The value at position x (x = 1/bpb is its own inverse)."""
        return 1.0 / x if self.key == "loss" else x

    def cell(self, run: Run) -> str:
        """A table cell: '12,768', '1.2e15', '0.873' (bits per byte); '–' without a value."""
        value = self.value(run)
        if value is None:
            return "–"
        if self.key == "compute":
            return f"{value:.1e}".replace("e+", "e")
        return format_value(value) if self.key == "loss" else format_count(value)

    def tick(self, x: float, _position: object = None) -> str:
        """A tick label at position x: '16k', '1e15', '0.873' (a matplotlib tick formatter)."""
        if self.key == "loss":
            return f"{self.value_at(x):.3f}" if x > 0 else ""
        return flops(x) if self.key == "compute" else human(x)

    def phrase(self, x: float) -> str:
        """A sentence's number at position x, without its unit: '16k', '1.2e15', '0.873'."""
        if self.key == "loss":
            return f"{self.value_at(x):.3f}"
        return flops(x) if self.key == "compute" else human(x)

    @property
    def unit(self) -> str:
        return _UNITS[self.key]


def scale_axis(key: str) -> ScaleAxis:
    """The axis named `key` (`X_AXES`, or an alias); an unknown name is one clear error."""
    key = ALIASES.get(key, key)
    if key not in X_AXES:
        raise HarnessError(f"unknown x axis {key!r}; choose one of {', '.join(X_AXES)}")
    return ScaleAxis(key)  # type: ignore[arg-type]
