"""Writes the report's figures, redrawing only those whose content changed.

Drawing is most of a report's time (matplotlib's layout and rasteriser, about a second per
figure on our CPUs), and a rebuild after one new sweep changes few figures. Each figure is keyed
by the sha256 of what it is drawn from: the drawing function's name, its arguments (pickled:
runs, series and comparisons are frozen dataclasses of numbers and strings), the source of the
shared plotting helpers, of the x axis (`axes`) and of the drawing function's own module (its
section), matplotlib's version and whether an SVG is wanted. `figures.json` in the report folder
keeps stem -> key; a figure whose key and files are unchanged is kept as it is.
`finish()` draws the changed ones (in several processes when there are CPUs for them), removes
every `fig-*` file the page no longer shows and rewrites `figures.json`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure

from harness.io import atomic_write_text
from harness.report import axes, plotting
from harness.report.plotting import STYLE, save

CACHE_FILE = "figures.json"


def _code_key() -> str:
    digest = hashlib.sha256(matplotlib.__version__.encode())
    for path in (plotting.__file__, axes.__file__, __file__):  # axes: tick labels and x positions
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


@functools.cache
def _module_source(module: str) -> bytes:
    return Path(sys.modules[module].__file__ or "").read_bytes()


@dataclass
class FigureWriter:
    """Draws and saves figures into `report_dir` (PNG, and SVG when `svg`), reusing unchanged ones."""

    report_dir: Path
    svg: bool = False
    workers: int = 1
    drawn: int = 0
    reused: int = 0
    _previous: dict[str, str] = field(default_factory=dict)
    _kept: dict[str, str] = field(default_factory=dict)
    _code: str = ""
    _jobs: list[tuple[str, str, Callable[..., Figure | None], tuple[Any, ...]]] = field(default_factory=list)

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
        digest.update(_module_source(draw.__module__))
        digest.update(pickle.dumps(args, protocol=5))
        return digest.hexdigest()

    def write(self, stem: str, draw: Callable[..., Figure | None], *args: Any) -> bool:
        """Schedule `draw(*args)` as `<stem>.png` (and .svg); drawn by `finish()`, unless unchanged.

        Returns True (the figure is expected); `saved(stem)` says after `finish()` whether
        `draw` gave a figure at all.
        """
        key = self.key(draw, args)
        files = [self.report_dir / f"{stem}{suffix}" for suffix in self.suffixes()]
        if self._previous.get(stem) == key and all(path.exists() for path in files):
            self._kept[stem] = key
            self.reused += 1
        else:
            self._jobs.append((stem, key, draw, args))
        return True

    def saved(self, stem: str) -> bool:
        return stem in self._kept

    def finish(self) -> None:
        """Draw the scheduled figures (in `workers` processes: matplotlib's layout and rasteriser
        are most of a report's time), remove every figure not in this build, record the keys."""
        jobs = [(self.report_dir, self.svg, stem, draw, args) for stem, _, draw, args in self._jobs]
        if self.workers > 1 and len(jobs) > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            context = multiprocessing.get_context("fork")  # the figures' inputs are already in memory
            with ProcessPoolExecutor(max_workers=self.workers, mp_context=context) as pool:
                drawn = list(pool.map(_draw_and_save, jobs, chunksize=1))
        else:
            drawn = [_draw_and_save(job) for job in jobs]
        for (stem, key, _, _), was_drawn in zip(self._jobs, drawn):
            if was_drawn:
                self._kept[stem] = key
                self.drawn += 1
        self._jobs = []
        for path in [*self.report_dir.glob("fig-*.png"), *self.report_dir.glob("fig-*.svg")]:
            if path.stem not in self._kept or path.suffix not in self.suffixes():
                path.unlink()
        atomic_write_text(self.report_dir / CACHE_FILE,
                          json.dumps({"figures": dict(sorted(self._kept.items()))}, indent=1) + "\n")


def _draw_and_save(job: tuple[Path, bool, str, Callable[..., Figure | None], tuple[Any, ...]]) -> bool:
    report_dir, svg, stem, draw, args = job
    with matplotlib.rc_context(STYLE):
        fig = draw(*args)
        if fig is None:
            return False
        save(fig, report_dir, stem, svg=svg)
    return True


def default_workers() -> int:
    """Processes for drawing: the CPUs this process may use, at most 4."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))
