"""Every checkpoint of a family against each scale axis: parameters, steps, compute, held-out loss.

Reads the results index only (`harness.index`: one row per run, with `training_compute` and
`heldout_bpb` beside the parameters), never a model. For one (family, task, shots) every
checkpoint (size x step) is one point; points of one size are joined in step order, so an
early checkpoint of a large model and a late checkpoint of a small one sit side by side at
equal compute or at equal loss. One figure per metric, one panel per axis. A value a log axis
cannot hold (step 0's compute of 0) leaves its point off that panel only.

    python -m harness.report.scale results --family pico --task arithmetic/2_digit_addition \\
        --x compute,loss --out results/report/scale
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.report.section import PageSection


@dataclass(frozen=True)
class XChoice:
    """One scale axis: the index column it reads and how it is drawn."""

    name: str
    column: str
    label: str
    log: bool
    invert: bool = False  # held-out loss: lower is further along, drawn to the right


X_CHOICES: dict[str, XChoice] = {c.name: c for c in (
    XChoice("params", "non_embedding_params", "non-embedding parameters", log=True),
    XChoice("steps", "step", "training step", log=True),
    XChoice("compute", "training_compute", "training compute 6·N·D (FLOPs)", log=True),
    XChoice("loss", "heldout_bpb", "held-out loss (bits per byte, log)", log=True, invert=True),
)}
DEFAULT_METRICS = ("exact_str_match", "case_insensitive_str_match", "target_logprob",
                   "target_logprob_per_token", "digit_accuracy", "token_edit_distance",
                   "multiple_choice_grade", "p_tok")


def _usable(value: Any, log: bool) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and (
        not log or value > 0)


def choose_axes(rows: Sequence[dict[str, Any]], names: Sequence[str] | None = None
                ) -> list[XChoice]:
    """The requested axes (default: all) that at least two rows can be placed on."""
    unknown = [n for n in names or () if n not in X_CHOICES]
    if unknown:
        raise HarnessError(f"unknown --x {', '.join(unknown)}; choose from {', '.join(X_CHOICES)}")
    wanted = [X_CHOICES[n] for n in names] if names else list(X_CHOICES.values())
    return [c for c in wanted if sum(_usable(r.get(c.column), c.log) for r in rows) >= 2]


def checkpoint_rows(rows: Sequence[dict[str, Any]], family: str, task: str, shots: int
                    ) -> list[dict[str, Any]]:
    """The index rows of one family on one task (true labels), by size then step."""
    picked = [r for r in rows if r.get("family") == family and r["task"] == task
              and r["shots"] == shots and r.get("demo_labels", "true") == "true"]
    return sorted(picked, key=lambda r: (r.get("non_embedding_params") or 0, r.get("step") or 0))


def scale_figure(rows: Sequence[dict[str, Any]], metric: str, axes: Sequence[XChoice], title: str):
    """One panel per axis: the metric of every checkpoint, one line per size (step order)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(axes), 3.4), layout="constrained")
    panels = fig.subplots(1, len(axes), squeeze=False)[0]
    # seed variants share their size's parameter count: the name breaks the tie, so the lines'
    # colours and legend order do not follow the set's (hash-randomised) order from build to build
    sizes = sorted({r["size"] for r in rows}, key=lambda s: (next(
        r["non_embedding_params"] for r in rows if r["size"] == s), s))
    for ax, choice in zip(panels, axes):
        for k, size in enumerate(sizes):
            points = [(r[choice.column], r.get(f"{metric}.mean"), r.get("step")) for r in rows
                      if r["size"] == size and _usable(r.get(choice.column), choice.log)
                      and _usable(r.get(f"{metric}.mean"), False)]
            if points:
                xs, ys, _ = zip(*points)
                ax.plot(xs, ys, marker="o", markersize=3.5, linewidth=1, color=f"C{k}", label=size)
        if choice.log:
            ax.set_xscale("log")
        if choice.name == "loss":  # a decade or less: plain numbers read better than 10^x
            from matplotlib.ticker import NullFormatter, ScalarFormatter

            ax.set_xticks([0.6, 0.8, 1, 1.5, 2, 3, 5])
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
        if choice.invert:
            ax.invert_xaxis()
        ax.set_xlabel(choice.label)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    panels[0].legend(fontsize=7, title="size (points: steps)", title_fontsize=7)
    fig.suptitle(title, fontsize=9)
    return fig


def write_scale_figures(results_dir: Path, out: Path, family: str, task: str, shots: int = 0,
                        x: Sequence[str] | None = None, metrics: Sequence[str] = DEFAULT_METRICS
                        ) -> list[Path]:
    """`scale-<family>-<task>-<metric>.png` under `out` for each metric the runs scored."""
    from harness.index import records
    from harness.io import make_dirs

    rows = checkpoint_rows(records(results_dir), family, task, shots)
    if not rows:
        raise HarnessError(f"no {family} runs of {task} at {shots} shots in {results_dir}'s index")
    axes = choose_axes(rows, x)
    if not axes:
        raise HarnessError(f"no scale axis has two {family} checkpoints with a value; run the "
                           "held-out loss task (loss/...) or choose --x params|steps")
    make_dirs(out)
    written = []
    for metric in metrics:
        if not any(_usable(r.get(f"{metric}.mean"), False) for r in rows):
            continue
        fig = scale_figure(rows, metric, axes, f"{family} on {task}, {shots}-shot: {metric}")
        path = out / f"scale-{family}-{task.replace('/', '-')}-{metric}.png"
        fig.savefig(path, dpi=110)
        written.append(path)
    return written


SECTION_TASKS = ("arithmetic/2_digit_addition",)


def scale_section(results_dir: Path, report_dir: Path, x: Sequence[str] | None = None,
                  tasks: Sequence[str] = SECTION_TASKS) -> PageSection | None:
    """The report's "Scale three ways" section (anchor, title, HTML): for each family with
    step checkpoints on `tasks`, one figure per metric against each available axis. None
    without an index or without such a family."""
    from html import escape

    from harness.index import records

    try:
        rows = records(results_dir)
    except HarnessError:
        return None
    families = sorted({r["family"] for r in rows if r.get("family") and r.get("step") is not None})
    for stale in (report_dir / "scale").glob("scale-*.png"):  # the folder shows this build only
        stale.unlink()
    parts = []
    for family in families:
        for task in tasks:
            picked = checkpoint_rows(rows, family, task, 0)
            if len(picked) < 2 or not choose_axes(picked, x):
                continue
            written = write_scale_figures(results_dir, report_dir / "scale", family, task, 0, x)
            images = "".join(f'<img src="scale/{escape(p.name)}" alt="{escape(p.stem)}" '
                             'loading="lazy" style="max-width:100%">' for p in written)
            parts.append(f"<h3>{escape(family)}: {escape(task)}, 0-shot</h3>{images}")
    if not parts:
        return None
    intro = ("<p>Every checkpoint (size × step) of a family, one line per size in step order, "
             "against non-embedding parameters, training step, training compute 6·N·D (N "
             "non-embedding parameters, D tokens seen; absent where D is unknown) and held-out "
             "loss (bits per byte of the same weights on the family's own held-out corpus, else "
             "the reference text; absent without a loss run).</p>")
    title = "Scale three ways: parameters, compute, held-out loss"
    return PageSection("scale-axes", title,
                       f'<h2 id="scale-axes">{title}</h2>{intro}{"".join(parts)}')


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--family", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--shots", type=int, default=0)
    parser.add_argument("--x", default=None, help="comma list of params,steps,compute,loss")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or args.results / "report" / "scale"
    x = [n for n in args.x.split(",") if n] if args.x else None
    for path in write_scale_figures(args.results, out, args.family, args.task, args.shots, x):
        print(path)


if __name__ == "__main__":
    main()
