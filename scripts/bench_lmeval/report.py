"""bench.md: the benchmark record (bench.json) as markdown tables. Pure functions."""

from __future__ import annotations

from collections.abc import Sequence

DASH = "–"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |"
              for row in rows]
    return "\n".join(lines)


def seconds(value: float | None) -> str:
    if value is None:
        return DASH
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def ratio(value: float | None) -> str:
    return DASH if value is None else f"{value:.2f}x"


def megabytes(value: float | None) -> str:
    return DASH if value is None else f"{value:,.0f}"


def fraction(value: float | None) -> str:
    return DASH if value is None else f"{value:.3f}"


def pair(a: str, b: str) -> str:
    return f"{a} / {b}"


def _memory(engine: dict | None) -> str:
    """Process peak (load included), with the run's own peak in brackets when known."""
    if not engine:
        return DASH
    text = megabytes(engine.get("peak_rss_mb"))
    if engine.get("run_peak_rss_mb") is not None:
        text += f" ({megabytes(engine['run_peak_rss_mb'])})"
    return text


def workload_rows(workloads: Sequence[dict]) -> list[list[str]]:
    rows = []
    for w in workloads:
        ours, theirs, agree = w.get("ours") or {}, w.get("lmeval") or {}, w.get("agreement") or {}
        size = f"{w['n_docs']} x {w['n_requests'] // max(1, w['n_docs'])}" \
            if w["kind"] == "multiple_choice" else f"{w['n_docs']}"
        if w["kind"] == "generate":
            size += f" x {w['max_new_tokens']} tok"
            delta = DASH
            same = f"{agree.get('identical_generations', DASH)}/{w['n_docs']} generations"
        else:
            value = agree.get("max_abs_delta")
            delta = DASH if value is None else f"{value:.1e}" + (
                "" if agree.get("within_tolerance") else " (over 1e-3)")
            same = f"{agree.get('token_count_mismatches', DASH)} differ"
        label = w["name"] + (" (no stop: EOS or budget)" if w["kind"] == "generate" else "")
        rows.append([label, size, seconds(ours.get("median_s")), seconds(theirs.get("median_s")),
                     ratio(w.get("ratio")), seconds(theirs.get("median_end_to_end_s")),
                     pair(_memory(ours), _memory(theirs)), delta,
                     pair(fraction(agree.get("accuracy_ours")),
                          fraction(agree.get("accuracy_lmeval"))), same])
        early = w.get("ours_early")
        if early:
            rows.append([f"{w['name']} (ours: default early stop)", size,
                         seconds(early.get("median_s")), DASH,
                         ratio(early.get("lmeval_exact_over_this")), DASH,
                         pair(_memory(early), DASH), DASH,
                         pair(fraction(early.get("accuracy")), DASH),
                         f"{early.get('mean_new_tokens', 0):.1f} tok/doc"])
    return rows


WORKLOAD_HEADER = ("workload", "docs x continuations", "ours (s)", "lm-eval (s)", "lm-eval / ours",
                   "lm-eval end-to-end (s)", "peak RSS MB ours / lm-eval (run)",
                   "max abs delta log-prob", "accuracy ours / lm-eval", "token counts")


def _gflops(value: float | None) -> str:
    return DASH if value is None else f"{value / 1e9:.1f}"


def _percent(value: float | None) -> str:
    return DASH if value is None else f"{100 * value:.0f}%"


def utilisation_rows(workloads: Sequence[dict]) -> list[list[str]]:
    rows = []
    for w in workloads:
        for label, share, theirs in ((w["name"], w.get("utilisation"), True),
                                     (f"{w['name']} (ours: default early stop)",
                                      (w.get("ours_early") or {}).get("utilisation"), False)):
            if not share:
                continue
            rows.append([label, f"{share['model_flops'] / 1e12:.2f}", _gflops(share["flops_per_s"]),
                         _gflops(share["matmul_ceiling"]), _percent(share["of_matmul"]),
                         _gflops(share["raw_forward"]), _percent(share["of_raw_forward"]),
                         _percent(share.get("lmeval_of_matmul")) if theirs else DASH,
                         ratio(w.get("ratio") if theirs
                               else (w.get("ours_early") or {}).get("lmeval_exact_over_this")),
                         ratio(1 / share["lmeval_of_matmul"])
                         if theirs and share.get("lmeval_of_matmul") else DASH])
    return rows


UTILISATION_HEADER = ("workload", "model TFLOP", "ours GFLOP/s", "matmul ceiling GFLOP/s",
                      "ours / ceiling", "raw forward GFLOP/s", "ours / raw forward",
                      "lm-eval / ceiling", "lm-eval time / ours",
                      "lm-eval time / ours at the ceiling")

UTILISATION_TEXT = (
    "Model FLOP utilisation. Each of our worker processes measures, right before its timed "
    "runs, the dense matmul ceiling (every linear-layer shape of the model on 512 rows, "
    "weighted by its use) and a raw batched forward of the bare model (8 x 256 tokens, logits "
    "at every position). Model FLOPs count the transformer's linear layers (2 per weight per "
    "position), attention (Q.K and V, causal) and the output layer only where logits are "
    "used; each distinct context once (bench_lmeval/ceiling.py). lm-eval's column divides "
    "the same model FLOPs by its time. The last column is the largest ratio to lm-eval this "
    "machine allows: lm-eval's time over the workload's model FLOPs at the matmul ceiling.")


def scaling_rows(points: Sequence[dict]) -> list[list[str]]:
    return [[p["sweep"], str(p["n_examples"]), str(p["n_choices"]), str(p["n_requests"]),
             seconds(p.get("ours_s")), seconds(p.get("lmeval_s")), ratio(p.get("ratio")),
             DASH if p.get("max_abs_delta") is None else f"{p['max_abs_delta']:.1e}"]
            for p in points]


def fewshot_rows(rows: Sequence[dict]) -> list[list[str]]:
    table_rows = []
    for r in rows:
        share = r.get("utilisation") or {}
        agree = (f"{r['identical']}/{r['n_docs']} identical" if "identical" in r
                 else DASH if r.get("max_abs_delta") is None else f"{r['max_abs_delta']:.1e}")
        table_rows.append([r["workload"], str(r["shots"]), str(r["n_docs"]),
                           f"{(r.get('request_tokens') or 0) / r['n_docs']:.0f}",
                           f"{r['ours_ms_per_doc']:.0f}", f"{r['lmeval_ms_per_doc']:.0f}",
                           ratio(r["ratio"]), _percent(share.get("of_matmul")), agree])
    return table_rows


FEWSHOT_HEADER = ("workload", "shots", "docs", "tokens per doc", "ours ms/doc", "lm-eval ms/doc",
                  "lm-eval / ours", "ours / ceiling", "agreement")


def _millions(count: float) -> str:
    return f"{count / 1e6:.0f}M" if count >= 1e7 else f"{count / 1e6:.2f}M"


def gpu_section(gpu: dict) -> str:
    if gpu.get("skipped"):
        return f"GPU section skipped: {gpu['skipped']}"
    tokens = next((r["tokens"] for r in gpu["rows"] if r.get("tokens")), None)
    per_request = f", {tokens / gpu['n_requests']:.0f} tokens each on average" if tokens else ""
    head = (f"{gpu['device_name']}, log-likelihood of targets after {gpu['shots']}-shot "
            f"arithmetic prompts ({gpu['n_requests']} requests{per_request}). Models: randomly "
            "initialised "
            "GPT-NeoX with Pythia's shapes, weights stored in bf16 (weights do not matter for "
            "speed). tokens/s counts context + target tokens of every request; MFU = 2 x N x "
            "tokens/s / the dtype's dense peak ("
            + (f"bf16 {gpu['peak_tflops']:g} TFLOP/s" if gpu.get("peak_tflops")
               else "bf16 unknown for this device: pass --peak-tflops")
            + "; float32 without TF32, as torch runs it by default), N = non-embedding parameters "
            "(input and output embeddings excluded; attention's sequence term and the "
            "log-softmax are not counted). lm-eval also runs the output layer and a float32 "
            "log-softmax at every position, ours only where a continuation token is scored.")
    rows = [[r["shape"], _millions(r["non_embedding_params"]), r["engine"],
             {"float32": "fp32", "bfloat16": "bf16"}.get(r.get("dtype", "bfloat16"), r.get("dtype")),
             seconds(r.get("median_s")), f"{r['tokens_per_s']:,.0f}" if r.get("tokens_per_s")
             else DASH, DASH if r.get("mfu") is None else f"{100 * r['mfu']:.1f}%",
             megabytes(r.get("gpu_peak_mb")), seconds(r.get("load_s"))]
            for r in gpu["rows"]]
    text = head + "\n\n" + table(("shape (random init)", "N", "engine", "dtype", "time (s)",
                                  "tokens/s", "MFU", "peak GPU MB", "load (s)"), rows)
    if gpu.get("bf16_drift"):
        text += ("\n\nbf16 against float32 (ours, the same bf16-stored weights): |Δ log-prob| "
                 "of every target, and targets whose all-greedy flag flips.\n\n" + table(
                     ("shape", "targets", "max abs Δ", "mean abs Δ", "greedy flips"),
                     [[d["shape"], str(d["n_values"]), f"{d['max_abs_delta']:.2e}",
                       f"{d['mean_abs_delta']:.2e}", str(d["greedy_flips"])]
                      for d in gpu["bf16_drift"]]))
    return text


def _repeats(bench: dict) -> str:
    text = f"{bench['settings']['repeats']} repeats"
    overrides = bench["settings"].get("repeats_for") or ()
    if overrides:
        text += " (" + ", ".join(f"{name}: {count}" for name, count in overrides) + ")"
    return text


def _overall(overall: dict | None) -> list[str]:
    if not overall:
        return []
    text = (f"Overall ({', '.join(overall['workloads'])} together, the sum of the medians): ours "
            f"{seconds(overall['ours_s'])} s, lm-eval {seconds(overall['lmeval_s'])} s, "
            f"lm-eval / ours {ratio(overall['ratio'])}.")
    bound = overall.get("at_ceiling")
    if bound:
        text += (f" At the matmul ceiling (each workload's model FLOPs over its own measured "
                 f"ceiling) the same work takes at least {seconds(bound['ours_floor_s'])} s, so "
                 f"no engine can be more than {ratio(bound['ratio_bound'])} faster than lm-eval "
                 f"here; ours runs at {_percent(bound['of_bound'])} of that bound.")
    return [text, ""]


def render_markdown(bench: dict) -> str:
    env, model = bench["environment"], bench["model"]
    parts = [
        "# Benchmark: this harness vs lm-evaluation-harness",
        "",
        f"Model {model['name']} ({model.get('folder', '')}), {env['dtype']} on {env['device']}, "
        f"{env['threads']} torch threads on {env['cpu_count']} CPUs; median of "
        f"{_repeats(bench)}, model load excluded. Batch: ours "
        f"{bench['settings']['batch_size_ours']}, lm-eval {bench['settings']['batch_size_lmeval']}. "
        f"Versions: {', '.join(f'{k} {v}' for k, v in env['versions'].items())}.",
        "",
        "Both engines read the same JSONL of prompts rendered by this harness; lm-eval reads "
        "it through generated task configs (`doc_to_text: prompt`, `target_delimiter: \"\"`). "
        "Times are the model call (`backend.loglikelihood`/`generate` vs lm-eval's "
        "`lm.loglikelihood`/`generate_until`); lm-eval end-to-end is its whole "
        "`simple_evaluate`. Peak RSS is the worker process's high-water mark, model "
        "included; in brackets the high-water mark during the timed runs alone.",
        "",
        table(WORKLOAD_HEADER, workload_rows(bench["workloads"])),
        "",
        *_overall(bench.get("overall")),
        *([UTILISATION_TEXT, "", table(UTILISATION_HEADER, utilisation_rows(bench["workloads"])),
           ""] if utilisation_rows(bench["workloads"]) else []),
        table(("engine", "imports (s)", "model load (s)"),
              [[name, seconds(bench.get("import_s", {}).get(name)), seconds(value)]
               for name, value in bench.get("load_s", {}).items()]),
        "",
        "Imports and model load: medians over the worker processes, not in the times above.",
    ]
    if bench.get("scaling"):
        parts += ["", "## Scaling (periodic_elements/subtask_0 subsets)", "",
                  table(("sweep", "examples", "choices", "requests", "ours (s)", "lm-eval (s)",
                         "lm-eval / ours", "max abs delta"), scaling_rows(bench["scaling"]))]
    if bench.get("fewshot"):
        parts += ["", "## Few-shot cost", "",
                  "The same examples with BIG-bench's 0, 1 and 3 demonstrations in the prompt "
                  "(tokens per doc: context and continuation tokens of every request, or the "
                  "prompt for generation; generation without a stop rule in both engines).", "",
                  table(FEWSHOT_HEADER, fewshot_rows(bench["fewshot"]))]
    if bench.get("gpu"):
        parts += ["", "## GPU", "", gpu_section(bench["gpu"])]
    if bench.get("notes"):
        parts += ["", "## Notes", ""] + [f"- {note}" for note in bench["notes"]]
    return "\n".join(parts) + "\n"
