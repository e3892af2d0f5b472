"""The axis sections of the report (shots, calibration, scratchpad, relabelled labels): HTML and markdown.

A section is rendered only when `AxesReport` holds data for it. Summary numbers are
`format_value(summary mean)` with `format_ci`, in cells tagged `data-run` / `data-metric` like
the page's value tables; paired gains are in cells tagged `data-gain="<run folder>|<metric>"`.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.emergence import ALPHA
from harness.report.axes import TRENDS, CalibrationBlock, ShotsComparison, size_label, value_text
from harness.report.compare import EM_THRESHOLD, FOLLOW_METRICS, AxesReport, RelabelComparison
from harness.report.data import X_AXES, FigureFile, Run, Series, XAxis
from harness.report.html import _TAGS, _table, _wrap, esc, figure_html, format_ci, format_count, format_value

Section = tuple[str, str, str]  # (anchor, navigation title, HTML)


def _cell(run: Run | None, metric: str) -> str:
    """A summary value with its CI, tagged with the run and metric; '–' where there is none."""
    if run is None:
        return "<td>–</td>"
    entry = run.metrics.get(metric) or {}
    tag = f'data-run="{esc(run.rel_dir)}" data-metric="{esc(metric)}"'
    if entry.get("mean") is None:
        return f"<td {tag}>–</td>"
    return (f'<td {tag}>{format_value(entry["mean"])}<span class="ci">'
            f'{format_ci(entry.get("ci_low"), entry.get("ci_high"))}</span></td>')


def _figures(figures: Sequence[FigureFile], section: str, key: str) -> str:
    return "".join(figure_html(f) for f in figures if f.section == section and f.key == key)


def _sentences(sentences: Sequence[str]) -> str:
    return "".join(f"<p>{esc(s)}</p>" for s in sentences)


def _verdict_box(conclusion: str, sentence: str) -> str:
    return (f'<p class="verdict"><span class="tag {_TAGS.get(conclusion, "")}">{esc(conclusion)}</span>'
            f"{esc(sentence)}</p>")


# --------------------------------------------------------------------------------------


def _shots_table(comparison: ShotsComparison, x_axis: XAxis) -> str:
    header = ["model", X_AXES[x_axis]]
    for metric in comparison.metrics:
        header += [f"{_wrap(metric)}<br>{k}-shot" for k in comparison.shots]
        header += [f"gain {k} − {comparison.shots[0]}<br>(paired)" for k in comparison.shots[1:]]
    # every checkpoint of a size series, at each shot count; the fewest-shot run a gain was taken from
    runs = {(r.shots, r.label): r for series in comparison.series for r in series.runs}
    runs.update({(g.base_run.shots, g.base_run.label): g.base_run for s in comparison.gains for g in s.gains})
    checkpoints = {run.label: run for run in runs.values()}
    ordered = sorted(checkpoints.values(), key=lambda run: (run.params(x_axis), run.model, run.step or 0))
    rows = []
    for run in ordered:
        row = [esc(run.label), format_count(run.params(x_axis))]
        for metric in comparison.metrics:
            for shots in comparison.shots:
                row.append(_cell(runs.get((shots, run.label)), metric))
            for gains in (g for g in comparison.gains if g.metric == metric):
                gain = next((g for g in gains.gains if g.shot_run.label == run.label), None)
                if gain is None:
                    row.append("<td>–</td>")
                    continue
                n = f"n = {gain.n_examples}" if gain.n_examples else "summaries, no CI"
                row.append(f'<td data-gain="{esc(gain.shot_run.rel_dir)}|{esc(metric)}">'
                           f'{esc(value_text(gain.gain, True))}<span class="ci">{n}</span></td>')
        rows.append(row)
    return _table(header, rows)


def shots_section(axes: AxesReport, figures: Sequence[FigureFile], x_axis: XAxis) -> str:
    parts = ['<h2 id="axis-shots">Shots as an axis</h2><p class="muted">Each task and family at several '
             "shot counts (true demonstration labels). The few-shot gain of a model is its metric at k shots "
             "minus at the fewest shots, per example, paired over the examples both runs answered (mean, "
             f"{1 - ALPHA:.0%} bootstrap CI). Whether the gain appears suddenly or gradually with size is "
             "read from the gain series with the same statistics as any metric (J, B, Kendall τ with "
             "paired CIs).</p>"]
    shown = set()
    for comparison in axes.shots:
        if comparison.overview_key not in shown:
            shown.add(comparison.overview_key)
            parts.append(_figures(figures, "shots", comparison.overview_key))
        parts.append(f"<h3>{esc(comparison.task)} <span class=\"muted\">({esc(comparison.group)}, shots "
                     f"{', '.join(str(k) for k in comparison.shots)})</span></h3>")
        parts.append(_figures(figures, "shots", comparison.slug))
        parts.extend(_verdict_box(v.conclusion, v.sentence) for v in comparison.verdicts)
        parts.append(_sentences([g.sentence for g in comparison.gains]))
        parts.append(_shots_table(comparison, x_axis))
    return "\n".join(parts)


def _calibration_table(calibration: CalibrationBlock, x_axis: XAxis) -> str:
    counts = {panel.run.label: panel.n for panel in calibration.panels}
    metrics = ("expected_calibration_error", "brier_score", "multiple_choice_grade")
    header = ["model", X_AXES[x_axis], "n in bins", *(_wrap(m) for m in metrics)]
    series = calibration.series
    rows = [[esc(run.label), format_count(x), str(counts.get(run.label, "–")),
             *(_cell(run, m) for m in metrics)] for run, x in zip(series.runs, series.x)]
    return _table(header, rows)


def calibration_section(axes: AxesReport, figures: Sequence[FigureFile], x_axis: XAxis) -> str:
    parts = ['<h2 id="axis-calibration">Calibration</h2><p class="muted">Multiple-choice blocks: '
             "confidence is the highest softmax probability over the choices, 15 equal-width bins "
             "(BIG-bench's ECE). Bars: accuracy per bin; points: (mean confidence, accuracy); dashed: "
             "perfect calibration; below: examples per bin. The trend is Kendall's τ between size and ECE "
             "(negative: ECE falls), with its paired bootstrap CI.</p>"]
    shown = set()
    many = len(axes.calibration) > 4
    for calibration in axes.calibration:
        if calibration.trend_key not in shown:
            shown.add(calibration.trend_key)
            parts.append(_figures(figures, "calibration", calibration.trend_key))
            key = calibration.trend_key
            parts.append(_sentences([c.sentence for c in axes.calibration if c.trend_key == key]))
        block = calibration.block
        title = f"{esc(block.task)} ({esc(block.setting)}), {esc(calibration.series.title)}"
        body = _figures(figures, "calibration", calibration.slug) + _calibration_table(calibration, x_axis)
        parts.append(f"<details{'' if many else ' open'}><summary>{title}: reliability diagrams and table"
                     f"</summary>{body}</details>")
    return "\n".join(parts)


def _scratchpad_table(direct: Series, scratch: Series, names: Sequence[str], what: str) -> str:
    header = [what, "exact_str_match direct", "exact_str_match scratchpad", "target_logprob direct",
              "target_logprob scratchpad"]
    rows = [[esc(name), _cell(d, "exact_str_match"), _cell(s, "exact_str_match"), _cell(d, "target_logprob"),
             _cell(s, "target_logprob")] for name, d, s in zip(names, direct.runs, scratch.runs)]
    return _table(header, rows)


def scratchpad_section(axes: AxesReport, figures: Sequence[FigureFile]) -> str:
    parts = ['<h2 id="axis-scratchpad">Scratchpad vs direct</h2><p class="muted">The same task answered '
             "directly and with a worked scratchpad (<code>@scratchpad</code>: only the number after "
             "\"so \" is scored; its log-likelihood is given the model's own worked steps). The jump is read "
             f"as the first size or step where exact match exceeds {EM_THRESHOLD:g}.</p>"]
    for comparison in axes.scratchpad:
        parts.append(f"<h3>{esc(comparison.task)} <span class=\"muted\">({esc(comparison.setting)})</span>"
                     "</h3>")
        parts.append(_figures(figures, "scratchpad", comparison.slug))
        parts.append(_sentences(comparison.sentences))
        names = [size_label(run) for run in comparison.scratchpad.runs]
        parts.append(_scratchpad_table(comparison.direct, comparison.scratchpad, names, "size"))
        if comparison.direct_steps is not None and comparison.scratchpad_steps is not None:
            steps = [format_count(x) for x in comparison.direct_steps.x]
            parts.append(_scratchpad_table(comparison.direct_steps, comparison.scratchpad_steps, steps,
                                           f"step ({esc(size_label(comparison.scratchpad_steps.runs[0]))})"))
    return "\n".join(parts)


def _relabel_table(comparison: RelabelComparison, x_axis: XAxis) -> str:
    modes = [mode for mode, _ in comparison.series]
    header = ["model", X_AXES[x_axis]]
    for metric in comparison.follow_metrics:
        header += [f"{_wrap(metric)}<br>{mode} labels" for mode in comparison.modes]
        header += [f"{_wrap(FOLLOW_METRICS[metric])}<br>{mode} labels" for mode in modes]
    rows = []
    for run, by_mode in comparison.rows():
        row = [esc(run.label), format_count(run.params(x_axis))]
        for metric in comparison.follow_metrics:
            row += [_cell(by_mode.get(mode), metric) for mode in comparison.modes]
            row += [_cell(by_mode.get(mode), FOLLOW_METRICS[metric]) for mode in modes]
        rows.append(row)
    return _table(header, rows)


def relabel_section(axes: AxesReport, figures: Sequence[FigureFile], x_axis: XAxis) -> str:
    parts = ['<h2 id="axis-relabel">Flipped and unrelated demonstration labels</h2><p class="muted">'
             "Few-shot prompts whose demonstrations carry flipped or unrelated labels (Wei et al. 2023): the "
             "share of answers that follow the relabelled demonstrations, beside accuracy with true labels "
             "at the same shot count (and accuracy under the relabelled prompts, dashed).</p>"]
    for comparison in axes.relabel:
        parts.append(f"<h3>{esc(comparison.task)} <span class=\"muted\">({comparison.shots}-shot, "
                     f"{esc(comparison.group)})</span></h3>")
        parts.append(_figures(figures, "relabel", comparison.slug))
        parts.append(_sentences(comparison.sentences))
        parts.append(_relabel_table(comparison, x_axis))
    return "\n".join(parts)


def render_sections(axes: AxesReport, figures: Sequence[FigureFile], x_axis: XAxis) -> list[Section]:
    """The page's axis sections, only those with data."""
    sections = []
    if axes.shots:
        sections.append(("axis-shots", "Shots as an axis", shots_section(axes, figures, x_axis)))
    if axes.calibration:
        sections.append(("axis-calibration", "Calibration", calibration_section(axes, figures, x_axis)))
    if axes.scratchpad:
        sections.append(("axis-scratchpad", "Scratchpad vs direct", scratchpad_section(axes, figures)))
    if axes.relabel:
        sections.append(("axis-relabel", "Relabelled demonstrations", relabel_section(axes, figures, x_axis)))
    return sections


# --------------------------------------------------------------------------------------
# summary.md


def _shots_lines(axes: AxesReport) -> list[str]:
    lines, single = [], []
    for comparison in axes.shots:
        if all(g.shape is None for g in comparison.gains):
            single.append(comparison)
            continue
        for k in comparison.shots[1:]:
            parts = []
            for g in (g for g in comparison.gains if g.shots == k):
                if g.shape is None:
                    parts.append(f"{g.metric} gain {value_text(g.gains[0].gain, True)} (one model)")
                else:
                    parts.append(f"{g.metric} gain {value_text(g.gains[0].gain, True)} → "
                                 f"{value_text(g.gains[-1].gain, True)}, {g.shape.shape} "
                                 f"(J = {g.shape.share.format(2)}, τ = {g.shape.tau.format(2)})")
            conclusion = next((v.conclusion for v in comparison.verdicts if f"{k}-shot gain" in v.task), "")
            lead = f"**{conclusion}**, " if conclusion else ""
            lines.append(f"- {lead}{comparison.task}, {comparison.group}, {k}-shot gain over "
                         f"{comparison.shots[0]} shots: " + "; ".join(parts) + ".")
    if 0 < len(single) <= BRIEF:
        for comparison in single:
            gains = "; ".join(f"{g.shots}-shot {g.metric} {value_text(g.gains[0].gain, True)}"
                              for g in comparison.gains)
            model = comparison.gains[0].gains[0].shot_run.label
            lines.append(f"- {comparison.task}, {model} (one model), gains over {comparison.shots[0]} shots: "
                         f"{gains}.")
    elif single:
        tasks = ", ".join(c.task.split("/")[-1] for c in single)
        lines.append(f"- {len(single)} tasks with one model at several shot counts (no trend over size): "
                     f"{tasks}; the paired gains are on the full page.")
    return lines


BRIEF = 4  # more items than this: counted, not listed, in summary.md


def _calibration_lines(axes: AxesReport) -> list[str]:
    """Per ECE/Brier figure: a sentence per block, or for many blocks the count of each trend."""
    lines = []
    for key in dict.fromkeys(c.trend_key for c in axes.calibration):
        members = [c for c in axes.calibration if c.trend_key == key]
        top, group = members[0].block.top_task, members[0].series.group
        trended = [c for c in members if c.trend]
        single = [c for c in members if not c.trend]
        if len(trended) <= BRIEF:
            lines.extend(f"- {c.sentence}" for c in trended)
        else:
            counts = ", ".join(f"{trend} in {sum(c.trend == trend for c in trended)}" for trend in TRENDS
                               if any(c.trend == trend for c in trended))
            lines.append(f"- {top}, {group}: calibration over size (Kendall τ of ECE, paired CI) {counts} "
                         f"of {len(trended)} subtask settings; each sentence and diagram is on the page.")
        if len(single) <= BRIEF:
            lines.extend(f"- {c.sentence}" for c in single)
        else:
            eces = [run.mean("expected_calibration_error") for c in single for run in c.series.runs]
            lines.append(f"- {top}, {group}: {len(single)} settings of one model each (no trend), ECE "
                         f"{format_value(min(eces))} to {format_value(max(eces))}; values on the full page.")
    return lines


def render_markdown(axes: AxesReport, figures: Sequence[FigureFile], link_prefix: str) -> list[str]:
    """Lines for summary.md: one short part per axis section with data."""
    lines: list[str] = []

    def links(section: str, keys: Sequence[str]) -> None:
        shown = [f for f in figures if f.section == section and f.key in keys]
        if shown:
            lines.append("")
        lines.extend(f"![{f.caption}]({link_prefix}{f.png})" for f in shown)

    if axes.shots:
        lines += ["", "## Shots as an axis", "", *_shots_lines(axes)]
        overviews = list(dict.fromkeys(c.overview_key for c in axes.shots))
        if any(f.section == "shots" and f.key in overviews for f in figures):
            links("shots", overviews)
        else:
            links("shots", [c.slug for c in axes.shots])
    if axes.calibration:
        lines += ["", "## Calibration", "", *_calibration_lines(axes)]
        links("calibration", list(dict.fromkeys(c.trend_key for c in axes.calibration)))
    if axes.scratchpad:
        lines += ["", "## Scratchpad vs direct", ""]
        lines += [f"- {s}" for c in axes.scratchpad for s in c.sentences]
        links("scratchpad", [c.slug for c in axes.scratchpad])
    if axes.relabel:
        lines += ["", "## Relabelled demonstrations", ""]
        lines += [f"- {s}" for c in axes.relabel for s in c.sentences]
        links("relabel", [c.slug for c in axes.relabel])
    return lines

