"""The equal-loss test (Du et al. 2024): at matched held-out loss, and separately at matched
training compute, does the larger model of a pair score higher than the smaller one?

Read from the results index (`heldout_bpb`, `training_compute`, parameters and steps of every
checkpoint) and from each run's stored per-example scores (the report's `ScoreCache`); nothing
is loaded or scored. Matching and statistics: `harness.emergence.equal_loss`. Built outside the
gather -> draw flow, like the scale section: `equal_loss_section` returns the page's section
and writes its figures under `<report>/equal-loss/`.

    python -m harness.report.sections.equal_loss results --family pico
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from harness.emergence.equal_loss import (
    COMPUTE_RULE,
    LOSS_RULE,
    Checkpoint,
    Comparison,
    MatchRule,
    Tally,
    match_checkpoints,
    paired_difference,
    tally,
)
from harness.emergence.seeds import split_seed
from harness.errors import HarnessError
from harness.report.data import Run, ScoreCache, common_examples, load_runs, score_matrix, slugify
from harness.report.html import sentences_html, table
from harness.report.scale import checkpoint_rows
from harness.report.section import PageSection
from harness.report.text import esc, value_text

# 1-3 digit addition and subtraction: the operations and lengths that make up most of the pico
# corpus (+ and - at 1-3 digits, 70% of its rows), where exact match leaves zero (best
# checkpoint 0.15-0.59 on the committed runs); 4-5 digits and multiplication stay near zero.
TASKS = tuple(f"arithmetic/{digits}_digit_{operation}" for operation in ("addition", "subtraction")
              for digits in (1, 2, 3))
METRICS = ("exact_str_match", "target_logprob", "target_logprob_per_token",
           "multiple_choice_grade", "digit_accuracy")
RULES = (LOSS_RULE, COMPUTE_RULE)
FIGURE_DIR = "equal-loss"

PairScores = Callable[[str, str, str], tuple[np.ndarray, np.ndarray]]  # (dir a, dir b, metric)


@dataclass(frozen=True)
class TaskTest:
    """One family on one task: its checkpoints (index rows) and, per rule, every comparison."""

    family: str
    task: str
    rows: tuple[dict[str, Any], ...]
    comparisons: tuple[tuple[MatchRule, tuple[Comparison, ...]], ...]


def trained_checkpoints(rows: Sequence[dict[str, Any]], family: str, task: str) -> list[dict[str, Any]]:
    """A family's 0-shot runs of `task` past step 0 (untrained weights score nothing at any size),
    seed variants left out (their size's unseeded model stands for it)."""
    return [r for r in checkpoint_rows(rows, family, task, 0)
            if r.get("step") and r.get("non_embedding_params") and split_seed(r["model"])[1] is None]


def label(row: dict[str, Any]) -> str:
    return f"{row['model']}@{row['revision']}"


def compare(rows: Sequence[dict[str, Any]], rule: MatchRule, pair_scores: PairScores,
            n_boot: int = 1000, seed: int = 0) -> list[Comparison]:
    """Every matched pair of `rows` under `rule`, each metric of METRICS both runs scored."""
    by_label = {label(r): r for r in rows}
    checkpoints = [Checkpoint(label(r), float(r["non_embedding_params"]), int(r["step"]),
                              float("nan") if r.get(rule.column) is None else float(r[rule.column]))
                   for r in rows]
    comparisons = []
    for match in match_checkpoints(checkpoints, rule):
        small, large = by_label[match.smaller.label], by_label[match.larger.label]
        for metric in METRICS:
            if small.get(f"{metric}.mean") is None or large.get(f"{metric}.mean") is None:
                continue
            difference, n = paired_difference(*pair_scores(small["run_dir"], large["run_dir"], metric),
                                              n_boot, seed)
            comparisons.append(Comparison(match, metric, difference, n))
    return comparisons


def cache_pair_scores(runs: Sequence[Run], cache: ScoreCache) -> PairScores:
    """Two runs' stored scores of one metric, over the examples both have (aligned by idx)."""
    by_dir = {run.rel_dir: run for run in runs}

    def pair(dir_a: str, dir_b: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
        try:
            both = [by_dir[dir_a], by_dir[dir_b]]
        except KeyError as missing:
            raise HarnessError(f"the index names run {missing} that the results folder lacks; "
                               "run `harness index` to rebuild it") from None
        matrix = score_matrix(cache, both, metric, common_examples(cache, both))
        return matrix[0], matrix[1]

    return pair


def gather(rows: Sequence[dict[str, Any]], pair_scores: PairScores, n_boot: int = 1000,
           seed: int = 0, tasks: Sequence[str] = TASKS, rules: Sequence[MatchRule] = RULES
           ) -> list[TaskTest]:
    """Every family with step checkpoints of two or more sizes on a task of `tasks`."""
    families = sorted({r["family"] for r in rows if r.get("family") and r.get("step")})
    tests = []
    for family in families:
        for task in tasks:
            picked = trained_checkpoints(rows, family, task)
            if len({r["non_embedding_params"] for r in picked}) < 2:
                continue
            comparisons = tuple((rule, tuple(compare(picked, rule, pair_scores, n_boot, seed)))
                                for rule in rules)
            if any(found for _, found in comparisons):
                tests.append(TaskTest(family, task, tuple(picked), comparisons))
    return tests


def rules_of(tests: Sequence[TaskTest]) -> list[MatchRule]:
    return [rule for rule, _ in tests[0].comparisons] if tests else []


def pooled(tests: Sequence[TaskTest], rule: MatchRule) -> list[Tally]:
    """`rule`'s tallies over every task of `tests` together."""
    return tally([c for test in tests for r, found in test.comparisons if r == rule for c in found])


def summary_sentences(tests: Sequence[TaskTest]) -> list[str]:
    """One sentence per (rule, metric), pooled over the tasks; then the caveat on counting."""
    if not tests:
        return []
    sentences = []
    for rule in rules_of(tests):
        for counted in pooled(tests, rule):
            tasks = f"{len(tests)} task{'s' if len(tests) > 1 else ''}"
            sentences.append(f"At {rule.text} ({tasks}): "
                             f"{counted.sentence}.")
    sentences += largest_sentences(tests)
    sentences.append("Pairs share checkpoints and tasks share models, so the pairs are not "
                     "independent; with 95% intervals about 1 pair in 20 would differ by chance alone.")
    return sentences


def largest_sentences(tests: Sequence[TaskTest], metric: str = "exact_str_match", k: int = 3
                      ) -> list[str]:
    """Per rule, the `k` pairs with the largest difference beyond the CI on `metric`."""
    sentences = []
    for rule in rules_of(tests):
        found = [(test.task.split("/")[-1], c) for test in tests for r, comparisons in test.comparisons
                 if r == rule for c in comparisons if c.metric == metric and c.direction != "neither"]
        found.sort(key=lambda item: -abs(item[1].difference.estimate))
        named = [f"{task}, {c.match.smaller.label} ({_scale_text(rule, c.match.smaller.value)}) vs "
                 f"{c.match.larger.label} ({_scale_text(rule, c.match.larger.value)}): "
                 f"{value_text(c.difference, signed=True)}" for task, c in found[:k]]
        if named:
            sentences.append(f"Largest {metric} differences (larger − smaller) at equal {rule.axis}: "
                             f"{'; '.join(named)}.")
    return sentences


# --------------------------------------------------------------------------------------
# Figures


def _scale_text(rule: MatchRule, value: float) -> str:
    return f"{value:.3g}" if rule.by_factor else f"{value:.4f}"


def _set_x(ax, rule: MatchRule, found: Sequence[Comparison]) -> None:
    """Compute on a log axis; loss on a linear one, inverted (lower is further along) and cut to
    the matched checkpoints (an untrained model's 5 bits per byte would squeeze them together)."""
    if rule.by_factor:
        ax.set_xscale("log")
        return
    values = [v for c in found for v in (c.match.smaller.value, c.match.larger.value)]
    if values:
        pad = 0.05 * (max(values) - min(values)) or 0.01
        ax.set_xlim(max(values) + pad, min(values) - pad)
    else:
        ax.invert_xaxis()


def task_figure(test: TaskTest):
    """One row per rule (x: held-out bpb, inverted; or compute), one panel per metric: every
    checkpoint, one line per size in step order; matched pairs joined by a black line where the
    difference is beyond its CI, grey where not."""
    from matplotlib.figure import Figure

    metrics = [m for m in METRICS if any(r.get(f"{m}.mean") is not None for r in test.rows)]
    drawn = [(rule, found) for rule, found in test.comparisons if found]  # a rule with no pair: no row
    fig = Figure(figsize=(3.3 * len(metrics), 3.0 * len(drawn) + 0.6), layout="constrained")
    grid = fig.subplots(len(drawn), len(metrics), squeeze=False)
    sizes = sorted({r["non_embedding_params"] for r in test.rows})
    for (rule, found), panels in zip(drawn, grid):
        for metric, ax in zip(metrics, panels):
            for k, size in enumerate(sizes):
                points = [(r[rule.column], r[f"{metric}.mean"]) for r in test.rows
                          if r["non_embedding_params"] == size and rule.usable(r.get(rule.column))
                          and r.get(f"{metric}.mean") is not None]
                if points:
                    xs, ys = zip(*points)
                    name = next(r["model"] for r in test.rows if r["non_embedding_params"] == size)
                    ax.plot(xs, ys, marker="o", markersize=3, linewidth=1, color=f"C{k}", label=name)
            means = {label(r): r.get(f"{metric}.mean") for r in test.rows}
            for comparison in (c for c in found if c.metric == metric):
                small, large = comparison.match.smaller, comparison.match.larger
                differs = comparison.direction != "neither"
                ax.plot([small.value, large.value], [means[small.label], means[large.label]],
                        color="black" if differs else "0.7", linewidth=1.2 if differs else 0.7, zorder=0)
            _set_x(ax, rule, found)
            ax.set_xlabel(f"{rule.axis} ({rule.unit})", fontsize=8)
            ax.set_title(metric, fontsize=9)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
    labelled = [ax for ax in grid.flat if ax.get_legend_handles_labels()[0]]
    if labelled:
        labelled[0].legend(fontsize=7)
    fig.suptitle(f"{test.family} on {test.task}, 0-shot: matched pairs joined (black: differ "
                 "beyond the 95% CI); loss axis cut to the matched checkpoints", fontsize=9)
    return fig


def write_figures(tests: Sequence[TaskTest], folder: Path) -> dict[str, str]:
    """`equal-loss-<family>-<task>.png` per test under `folder` (stale ones removed); the file
    name per (family, task)."""
    from harness.io import make_dirs

    make_dirs(folder)
    for stale in folder.glob("equal-loss-*.png"):  # the folder shows this build only
        stale.unlink()
    names = {}
    for test in tests:
        name = f"equal-loss-{slugify(test.family)}-{slugify(test.task)}.png"
        task_figure(test).savefig(folder / name, dpi=100)
        names[f"{test.family}/{test.task}"] = name
    return names


# --------------------------------------------------------------------------------------
# The page


def _cell(comparison: Comparison | None) -> str:
    if comparison is None:
        return "–"
    mark = {"larger": " ▲", "smaller": " ▼"}.get(comparison.direction, "")
    return esc(value_text(comparison.difference, signed=True) + mark)


def pairs_table(rule: MatchRule, found: Sequence[Comparison]) -> str:
    """One row per matched pair: both checkpoints, their values on the scale, the gap, and each
    metric's difference larger − smaller with its CI."""
    metrics = [m for m in METRICS if any(c.metric == m for c in found)]
    pairs: dict[tuple[str, str], dict[str, Comparison]] = {}
    for comparison in found:
        key = (comparison.match.smaller.label, comparison.match.larger.label)
        pairs.setdefault(key, {})[comparison.metric] = comparison
    gap_head = "ratio larger / smaller" if rule.by_factor else "gap (larger − smaller) / smaller"
    header = ["smaller", "larger", f"smaller: {esc(rule.unit)}", f"larger: {esc(rule.unit)}",
              esc(gap_head), *(f"{esc(m)}: larger − smaller" for m in metrics)]
    rows = []
    for (small, large), by_metric in pairs.items():
        match = next(iter(by_metric.values())).match
        gap = f"{match.gap:.2f}×" if rule.by_factor else f"{match.gap:+.1%}"
        rows.append([esc(small), esc(large), _scale_text(rule, match.smaller.value),
                     _scale_text(rule, match.larger.value), gap,
                     *(_cell(by_metric.get(m)) for m in metrics)])
    return table(header, rows, name_cols=2)


def tally_table(tests: Sequence[TaskTest]) -> str:
    """Per rule and metric: larger higher / smaller higher / pairs, per task and pooled."""
    header = ["matched at", "metric", *(esc(t.task.split("/")[-1]) for t in tests), "all tasks"]
    rows = []
    for rule in rules_of(tests):
        per_task = [{c.metric: c for c in tally([x for r, f in t.comparisons if r == rule for x in f])}
                    for t in tests]
        for counted in pooled(tests, rule):
            cells = [per.get(counted.metric) for per in per_task]
            rows.append([esc(rule.axis), esc(counted.metric),
                         *(f"{c.larger} / {c.smaller} / {c.n}" if c else "–" for c in cells),
                         f"<b>{counted.larger} / {counted.smaller} / {counted.n}</b>"])
    return table(header, rows, name_cols=2)


def _intro(tests: Sequence[TaskTest]) -> str:
    rules = "; ".join(f"{esc(rule.text)} ({esc(rule.column)})" for rule in rules_of(tests))
    return (
        "<p>Du et al. (2024) find that models of any size with the same pretraining loss score the "
        "same. Here every checkpoint of a smaller size is paired, for each larger size of the same "
        "family, with that size's checkpoint nearest in held-out loss (bits per byte on the family's "
        "held-out corpus), and separately nearest in training compute 6·N·D; a pair is kept only "
        f"within the tolerance ({rules}). Step 0 is left out (untrained weights score nothing at "
        "any size), and so are seed variants. For each pair and metric: the mean over the examples "
        "both scored of larger − smaller, with a paired 95% percentile bootstrap CI; ▲ the larger "
        "scores higher beyond the CI, ▼ lower. Tasks: "
        f"{esc(', '.join(sorted({t.task for t in tests})))}, the operations and lengths that make "
        "up most of the pico training corpus, where exact match rises off zero; longer numbers "
        "and multiplication stay near zero at every checkpoint.</p>")


def render(tests: Sequence[TaskTest], figure_names: dict[str, str]) -> PageSection:
    parts = [_intro(tests), "<p>Counts: pairs where the larger model scores higher / lower "
             "beyond the 95% CI / matched pairs.</p>", tally_table(tests),
             sentences_html(summary_sentences(tests))]
    for test in tests:
        name = figure_names.get(f"{test.family}/{test.task}")
        parts.append(f"<h3>{esc(test.family)}: {esc(test.task)}, 0-shot</h3>")
        if name:
            parts.append(f'<figure><img src="{FIGURE_DIR}/{esc(name)}" alt="{esc(name)}" '
                         'loading="lazy"></figure>')
        for rule, found in test.comparisons:
            n_pairs = len({(c.match.smaller.label, c.match.larger.label) for c in found})
            parts.append(f"<details><summary>{n_pairs} pairs matched at equal {esc(rule.axis)} "
                         f"({esc(rule.text)})</summary>{pairs_table(rule, found)}</details>")
    title = "Equal loss, equal compute: does size matter beyond loss?"
    return PageSection("equal-loss", title, f'<h2 id="equal-loss">{title}</h2>{"".join(parts)}')


def equal_loss_section(results_dir: Path, report_dir: Path, runs: Sequence[Run], cache: ScoreCache,
                       n_boot: int = 1000, seed: int = 0) -> PageSection | None:
    """The report's equal-loss section; None without an index or without two sizes of a family
    matched on a task of TASKS."""
    from harness.index import records

    try:
        rows = records(results_dir)
    except HarnessError:
        return None
    tests = gather(rows, cache_pair_scores(runs, cache), n_boot, seed)
    if not tests:
        return None
    return render(tests, write_figures(tests, Path(report_dir) / FIGURE_DIR))


def main(argv: Sequence[str] | None = None) -> None:
    """Print the counts and every pair's differences (and write the figures with --out)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma list of tasks")
    parser.add_argument("--out", type=Path, default=None, help="folder for the figures")
    parser.add_argument("--loss-tolerance", type=float, default=LOSS_RULE.tolerance,
                        help="relative bpb gap of a loss match (0.02: 2%%)")
    parser.add_argument("--compute-factor", type=float, default=COMPUTE_RULE.tolerance,
                        help="compute ratio of a compute match")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from harness.index import records

    rules = (replace(LOSS_RULE, tolerance=args.loss_tolerance),
             replace(COMPUTE_RULE, tolerance=args.compute_factor))
    tests = gather(records(args.results), cache_pair_scores(load_runs(args.results), ScoreCache()),
                   args.n_boot, args.seed, [t for t in args.tasks.split(",") if t], rules)
    if not tests:
        raise SystemExit(f"no family has two sizes matched on {args.tasks} in {args.results}")
    for sentence in summary_sentences(tests):
        print(sentence)
    for test in tests:
        for rule, found in test.comparisons:
            print(f"\n{test.family} {test.task}, matched at equal {rule.axis}:")
            for c in found:
                print(f"  {c.match.smaller.label} vs {c.match.larger.label} "
                      f"({_scale_text(rule, c.match.smaller.value)} vs "
                      f"{_scale_text(rule, c.match.larger.value)}) {c.metric}: "
                      f"{value_text(c.difference, signed=True)} {c.direction}")
    if args.out:
        for name in write_figures(tests, args.out).values():
            print(args.out / name)


if __name__ == "__main__":
    main()
