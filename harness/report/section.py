"""What every section of the report shares: its inputs, its figures and its place on the page.

A section (`harness.report.sections.*`: sizes, side by side, shots, calibration, scratchpad,
relabel, and the headline and explorer at the top) is one module that takes `Inputs` and goes

    gather(inputs) -> items            pure: frozen dataclasses of runs, series and statistics
    draw(items, writer, inputs)        schedules its figures; returns [Drawn(owner, figure)]
    render(items, figures, inputs)     its HTML (a `PageSection`), figures found by their owner
    markdown(items, figures, prefix)   its lines of summary.md

A figure is joined to what it shows by the object (`Figures.of(owner)`), never by a name
rebuilt from strings. Sections import the shared modules (data, analysis, text, html,
plotting, section), never each other; the page (`harness.report.page`) imports the sections.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from harness.report.analysis import SeriesResult
from harness.report.axes import ScaleAxis
from harness.report.data import Block, Run, ScoreCache


@dataclass(frozen=True)
class Inputs:
    """Everything a section is built from: the blocks (each with its series), their statistics
    (`results` per block slug), the stored scores, the x axis and the bootstrap settings."""

    runs: tuple[Run, ...]  # in the order of the page's JSON block (`run_ids`)
    blocks: tuple[Block, ...]
    results: Mapping[str, tuple[SeriesResult, ...]]
    cache: ScoreCache
    axis: ScaleAxis
    n_boot: int = 1000
    seed: int = 0
    detail: frozenset[str] = frozenset()  # slugs of the blocks drawn in full (`data.detail_blocks`)

    @functools.cached_property
    def run_ids(self) -> dict[Run, int]:
        """A run's position in the page's JSON block: what `data-run` names."""
        return {run: index for index, run in enumerate(self.runs)}

    def results_of(self, block: Block) -> tuple[SeriesResult, ...]:
        return tuple(self.results.get(block.slug, ()))

    def is_detail(self, block: Block) -> bool:
        return block.slug in self.detail


@dataclass(frozen=True)
class FigureFile:
    """A figure written as `<stem>.png` (and `<stem>.svg` when `with_svg`) in the report folder."""

    stem: str  # "fig-arithmetic-2_digit_addition-shots0-params"
    caption: str
    with_svg: bool = False  # an SVG was written beside the PNG (`harness report --svg`)

    @property
    def png(self) -> str:
        return f"{self.stem}.png"

    @property
    def svg(self) -> str:
        return f"{self.stem}.svg"


@dataclass(frozen=True)
class Drawn:
    """A figure and the object it shows (a block, a comparison, a headline...)."""

    owner: object
    figure: FigureFile


class Figures:
    """The figures of a page, looked up by the object they show."""

    def __init__(self, drawn: Iterable[Drawn] = ()) -> None:
        self.drawn = tuple(drawn)

    def of(self, owner: object) -> list[FigureFile]:
        return [d.figure for d in self.drawn if d.owner is owner]

    def of_any(self, owners: Iterable[object]) -> list[FigureFile]:
        wanted = [id(owner) for owner in owners]
        return [d.figure for d in self.drawn if id(d.owner) in wanted]

    @property
    def files(self) -> list[FigureFile]:
        return [d.figure for d in self.drawn]


@dataclass(frozen=True)
class PageSection:
    """A section's place on the page: its anchor, its title in the contents, its HTML."""

    anchor: str
    title: str
    html: str


def nonempty(sections: Sequence[PageSection | None]) -> list[PageSection]:
    return [section for section in sections if section is not None]


def sentences_markdown(title: str, items: Sequence, figures: Figures, link_prefix: str) -> list[str]:
    """A comparison section's summary.md lines: its heading, every item's `sentences`, then
    the figures drawn for those items."""
    if not items:
        return []
    lines = ["", f"## {title}", "", *(f"- {s}" for item in items for s in item.sentences)]
    shown = figures.of_any(items)
    if shown:
        lines.append("")
    lines.extend(f"![{f.caption}]({link_prefix}{f.png})" for f in shown)
    return lines
