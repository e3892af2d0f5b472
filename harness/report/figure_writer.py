"""Writes the report's figures, redrawing only those whose content changed.

Drawing is most of a report's time (matplotlib's layout and rasteriser, about a second per
figure on our CPUs), and a rebuild after one new sweep changes few figures. Each figure is keyed
by the sha256 of what it is drawn from: the drawing function's name, its arguments (pickled:
runs, series and comparisons are frozen dataclasses of numbers and strings), the source of the
figure modules, matplotlib's version and whether an SVG is wanted. `figures.json` in the report
folder keeps stem -> key; a figure whose key and files are unchanged is kept as it is.
`finish()` removes every `fig-*` file the page no longer shows and rewrites `figures.json`.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure

from harness.io import atomic_write_text
from harness.report.figures import save

CACHE_FILE = "figures.json"
_CODE = ("figures.py", "axes_figures.py", "figure_writer.py")


def _code_key() -> str:
    folder = Path(__file__).resolve().parent
    digest = hashlib.sha256(matplotlib.__version__.encode())
    for name in _CODE:
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()


@dataclass
class FigureWriter:
    """Draws and saves figures into `report_dir` (PNG, and SVG when `svg`), reusing unchanged ones."""

    report_dir: Path
    svg: bool = False
    drawn: int = 0
    reused: int = 0
    _previous: dict[str, str] = field(default_factory=dict)
    _kept: dict[str, str] = field(default_factory=dict)
    _code: str = ""

    def __post_init__(self) -> None:
        self.report_dir = Path(self.report_dir)
        self._code = _code_key()
        path = self.report_dir / CACHE_FILE
        try:
            self._previous = dict(json.loads(path.read_text(encoding="utf-8")).get("figures", {}))
        except (OSError, ValueError, AttributeError):
            self._previous = {}  # no cache (first build) or a damaged one: draw everything

    def suffixes(self) -> tuple[str, ...]:
        return (".png", ".svg") if self.svg else (".png",)

    def key(self, draw: Callable[..., Figure | None], args: tuple[Any, ...]) -> str:
        digest = hashlib.sha256(self._code.encode())
        digest.update(f"{draw.__module__}.{draw.__qualname__}:{self.svg}".encode())
        digest.update(pickle.dumps(args, protocol=5))
        return digest.hexdigest()

    def write(self, stem: str, draw: Callable[..., Figure | None], *args: Any) -> bool:
        """`draw(*args)` saved as `<stem>.png` (and .svg); False when it drew nothing."""
        key = self.key(draw, args)
        files = [self.report_dir / f"{stem}{suffix}" for suffix in self.suffixes()]
        if self._previous.get(stem) == key and all(path.exists() for path in files):
            self._kept[stem] = key
            self.reused += 1
            return True
        fig = draw(*args)
        if fig is None:
            return False
        save(fig, self.report_dir, stem, svg=self.svg)
        self._kept[stem] = key
        self.drawn += 1
        return True

    def finish(self) -> None:
        """Remove the figures not written in this build; record the keys of those that were."""
        for path in [*self.report_dir.glob("fig-*.png"), *self.report_dir.glob("fig-*.svg")]:
            if path.stem not in self._kept or path.suffix not in self.suffixes():
                path.unlink()
        atomic_write_text(self.report_dir / CACHE_FILE,
                          json.dumps({"figures": dict(sorted(self._kept.items()))}, indent=1) + "\n")
