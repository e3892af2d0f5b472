"""scripts/bench.py: lm-eval task configs from our prompts, agreement, the markdown table.

The pure pieces need neither lm-eval nor torch; one end-to-end test runs both engines on a
tiny random GPT-NeoX when lm-eval is installed (the `bench` extra) and is skipped otherwise.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from bench_lmeval import compare, report  # noqa: E402
from bench_lmeval import workloads as wl  # noqa: E402


def _load_bench_script():
    spec = importlib.util.spec_from_file_location("bench_script", REPO / "scripts" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


def _mc_workload() -> wl.Workload:
    docs = (
        # a prompt ending in a newline and one made of digits: a Jinja template would drop
        # the newline and lm-eval would turn the digits into an int; a column name does not
        wl.Doc(task="t", idx=0, prompt="\nQ: pick one\nA:\n", choices=("a", " b"), gold=1,
               target=" b"),
        wl.Doc(task="t", idx=7, prompt="12345", choices=("6", "7"), gold=0, target="6"),
    )
    return wl.Workload(name="toy_mc", kind="multiple_choice", docs=docs)


def test_lmeval_task_reads_our_prompt_strings_verbatim(tmp_path):
    yaml = pytest.importorskip("yaml")
    workload = _mc_workload()
    name = wl.write_lmeval_task(workload, tmp_path)
    config = yaml.safe_load((tmp_path / "toy_mc.yaml").read_text(encoding="utf-8"))
    assert name == config["task"] == "bench_toy_mc"
    assert config["output_type"] == "multiple_choice"
    assert (config["doc_to_text"], config["doc_to_choice"], config["doc_to_target"]) == (
        "prompt", "choices", "gold")
    assert config["target_delimiter"] == "" and config["num_fewshot"] == 0
    data_file = Path(config["dataset_kwargs"]["data_files"]["test"])
    assert data_file.is_absolute() and config["dataset_path"] == "json"
    rows = [json.loads(line) for line in data_file.read_text(encoding="utf-8").splitlines()]
    assert [r["prompt"] for r in rows] == [d.prompt for d in workload.docs]
    assert [r["choices"] for r in rows] == [list(d.choices) for d in workload.docs]
    assert [r["gold"] for r in rows] == [1, 0]


def test_generation_and_target_configs(tmp_path):
    doc = wl.Doc(task="arithmetic/x", idx=3, prompt="\nQ: What is 1 plus 1?\nA: ", target="2",
                 output_regex=r"[-+]?\d+")
    gen = wl.lmeval_config(wl.Workload("g", "generate", (doc,), max_new_tokens=16), tmp_path / "g")
    # no stop string: lm-eval adds only EOS, as our engine stops only on EOS without a rule
    assert gen["generation_kwargs"] == {"until": [], "max_gen_toks": 16, "do_sample": False}
    assert gen["output_type"] == "generate_until" and gen["doc_to_target"] == "target"
    target = wl.lmeval_config(wl.Workload("l", "target_loglik", (doc,)), tmp_path / "l")
    assert target["output_type"] == "loglikelihood" and target["doc_to_target"] == "target"
    path = wl.write_jsonl(wl.Workload("g", "generate", (doc,)), tmp_path / "g.jsonl")
    row = json.loads(path.read_text(encoding="utf-8"))
    assert "choices" not in row and row["target"] == "2"  # no all-empty list column
    with pytest.raises(ValueError, match="unknown workload kind"):
        wl.lmeval_config(wl.Workload("x", "rolling", (doc,)), tmp_path / "x")


def test_workloads_from_our_tasks_and_round_trip(tmp_path):
    emoji = wl.multiple_choice("emoji", "emoji_movie", limit=3)
    assert len(emoji.docs) == 3 and emoji.n_requests == 15
    for doc in emoji.docs:
        assert doc.choices[doc.gold] == doc.target and doc.prompt.endswith("A: ")
    four = wl.multiple_choice("p4", "periodic_elements/subtask_0", limit=2, n_choices=4)
    full = wl.multiple_choice("p", "periodic_elements/subtask_0", limit=2)
    for small, big in zip(four.docs, full.docs):
        assert len(small.choices) == 4 and small.choices[small.gold] == big.choices[big.gold]
        assert [big.choices.index(c) for c in small.choices] == sorted(
            big.choices.index(c) for c in small.choices)  # file order kept
    gen = wl.generate("g", ["arithmetic/2_digit_addition"], limit=2)
    assert gen.max_new_tokens == 16 and gen.docs[0].output_regex == r"[-+]?\d+"
    target = wl.target_loglik("l", ["arithmetic/2_digit_addition", "emoji_movie"], limit=2)
    assert [d.task for d in target.docs] == ["arithmetic/2_digit_addition"] * 2 + ["emoji_movie"] * 2
    assert wl.read_workload(wl.write_workload(gen, tmp_path / "g.json")) == gen
    assert wl.read_workload(wl.write_workload(emoji, tmp_path / "e.json")) == emoji


def _ll(logprobs, n_tokens=None, greedy=None):
    return {"logprobs": logprobs, "n_tokens": n_tokens or [1] * len(logprobs),
            "greedy": greedy or [False] * len(logprobs)}


def test_agreement_hand_computed():
    docs = _mc_workload().docs
    ours = [_ll([-1.0, -2.0]), _ll([-3.0, -3.0], n_tokens=[2, 1])]
    theirs = [_ll([-1.0005, -1.9]), _ll([-3.0, -3.0], n_tokens=[2, 2])]
    delta = compare.max_abs_delta(ours, theirs)
    assert delta["max_abs_delta"] == pytest.approx(0.1) and (delta["doc"], delta["continuation"]) \
        == (0, 1) and delta["n_values"] == 4
    assert compare.argmax([-3.0, -3.0]) == 0  # ties: the first, as numpy and lm-eval
    assert compare.choice_accuracy(ours, docs) == 0.5  # doc 0 picks "a" (gold 1), doc 1 "6"
    result = compare.compare("multiple_choice", docs, ours, theirs)
    assert not result["within_tolerance"] and result["token_count_mismatches"] == 1
    assert result["first_token_count_mismatch"] == (1, 1)
    assert result["worst"]["idx"] == 0 and result["worst"]["lmeval"] == -1.9
    same = compare.compare("multiple_choice", docs, ours, ours)
    assert same["max_abs_delta"] == 0 and same["within_tolerance"]
    target = compare.compare("target_loglik", docs[:2], [_ll([-1.0], greedy=[True]),
                                                         _ll([-2.0])], [_ll([-1.0]), _ll([-2.0])])
    assert target["accuracy_ours"] == 0.5 and target["accuracy_lmeval"] == 0.0
    assert target["mean_logprob_ours"] == -1.5


def test_generation_agreement_uses_bigbench_postprocessing():
    doc = wl.Doc(task="a", idx=0, prompt="Q", target="42", output_regex=r"[-+]?\d+")
    ours = [{"text": " 42\nQ: what"}, {"text": "41"}]
    theirs = [{"text": " 42 apples"}, {"text": "41"}]
    result = compare.compare("generate", [doc, doc], ours, theirs)
    assert result["accuracy_ours"] == result["accuracy_lmeval"] == 0.5
    assert result["identical_generations"] == 1 and result["identical_answers"] == 2
    assert result["first_difference"]["ours"] == " 42\nQ: what"


def _fake_bench(gpu: dict) -> dict:
    engine = {"median_s": 1.0, "peak_rss_mb": 900.0, "run_peak_rss_mb": 850.0}
    return {
        "settings": {"repeats": 3, "batch_size_ours": "auto", "batch_size_lmeval": 32},
        "environment": {"dtype": "float32", "device": "cpu", "threads": 2, "cpu_count": 2,
                        "versions": {"lm_eval": "0.4.13"}},
        "model": {"name": "m", "folder": "/m"},
        "load_s": {"ours": 1.5, "lmeval": 2.5},
        "workloads": [
            {"name": "emoji_mc", "kind": "multiple_choice", "n_docs": 100, "n_requests": 500,
             "max_new_tokens": 0, "ours": engine,
             "lmeval": {**engine, "median_s": 2.0, "median_end_to_end_s": 2.5}, "ratio": 2.0,
             "agreement": {"max_abs_delta": 2.5e-6, "within_tolerance": True,
                           "token_count_mismatches": 0, "accuracy_ours": 0.31,
                           "accuracy_lmeval": 0.31}},
            {"name": "arith_gen", "kind": "generate", "n_docs": 4, "n_requests": 4,
             "max_new_tokens": 16, "ours": engine, "lmeval": engine, "ratio": 1.0,
             "agreement": {"identical_generations": 4, "accuracy_ours": 0.25,
                           "accuracy_lmeval": 0.25},
             "ours_early": {**engine, "median_s": 0.5, "accuracy": 0.25,
                            "mean_new_tokens": 3.5, "lmeval_exact_over_this": 2.0}},
        ],
        "scaling": [{"sweep": "examples", "n_examples": 16, "n_choices": 16, "n_requests": 256,
                     "ours_s": 1.0, "lmeval_s": 3.0, "ratio": 3.0, "max_abs_delta": 1e-6}],
        "gpu": gpu, "notes": ["a note"],
    }


def test_markdown_tables():
    text = report.render_markdown(_fake_bench({"skipped": "no CUDA GPU visible"}))
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| workload"))
    row = next(line for line in lines if line.startswith("| emoji_mc"))
    assert header.count("|") == row.count("|") == 11
    assert "| 100 x 5 | 1.00 | 2.00 | 2.00x | 2.50 | 900 (850) / 900 (850) | 2.5e-06 |" in row
    assert "0.310 / 0.310" in row
    assert any(line.startswith("| arith_gen (ours: default early stop)") for line in lines)
    assert "4/4 generations" in text and "| examples | 16 | 16 | 256 | 1.00 | 3.00 | 3.00x" in text
    assert "GPU section skipped: no CUDA GPU visible" in text and "- a note" in text
    fake = _fake_bench({"skipped": "no CUDA GPU visible"})
    fake["settings"]["repeats_for"] = [["periodic_mc", 1]]
    fake["overall"] = {"workloads": ["emoji_mc"], "ours_s": 1.0, "lmeval_s": 2.0, "ratio": 2.0}
    text = report.render_markdown(fake)
    assert "median of 3 repeats (periodic_mc: 1)" in text
    assert "Overall (emoji_mc together, the sum of the medians): ours 1.00 s, lm-eval 2.00 s, " \
           "lm-eval / ours 2.00x." in text
    gpu = {"device_name": "NVIDIA H100 80GB HBM3", "peak_tflops": 989.0, "shots": 8,
           "n_requests": 2000, "rows": [{"shape": "pythia-160m", "non_embedding_params": 85e6,
                                         "engine": "ours", "median_s": 1.0,
                                         "tokens_per_s": 1e6, "mfu": 0.17, "gpu_peak_mb": 2e3,
                                         "load_s": 2.0},
                                        {"shape": "pythia-160m", "non_embedding_params": 85e6,
                                         "engine": "ours", "dtype": "float32", "median_s": 4.0,
                                         "tokens_per_s": 2.5e5, "mfu": 0.63, "gpu_peak_mb": 3e3,
                                         "load_s": 2.0}],
           "bf16_drift": [{"shape": "pythia-160m", "n_values": 2000, "max_abs_delta": 0.031,
                           "mean_abs_delta": 0.0042, "greedy_flips": 3}]}
    text = report.render_markdown(_fake_bench(gpu))
    assert "| pythia-160m | 85M | ours | bf16 | 1.00 | 1,000,000 | 17.0% | 2,000 | 2.00 |" in text
    assert "| pythia-160m | 85M | ours | fp32 | 4.00 | 250,000 | 63.0% | 3,000 | 2.00 |" in text
    assert "| pythia-160m | 2000 | 3.10e-02 | 4.20e-03 | 3 |" in text


def test_cli_config_and_errors():
    bench = _load_bench_script()
    config = bench.config_from_args(bench.parse_args(["--quick", "--workloads", "emoji_mc,gpu"]))
    assert config.workloads == ("emoji_mc", "gpu") and config.repeats == 2
    quick = config.quick_version()
    assert quick.limit == 3 and quick.scale_examples == 2 and len(quick.gpu_shapes) == 1
    with pytest.raises(bench.BenchError, match="unknown workload"):
        bench.run(bench.BenchConfig(workloads=("emoji",)))
    config = bench.config_from_args(bench.parse_args(["--repeats", "3", "--repeats-for", "periodic_mc=1"]))
    assert config.repeats_of("periodic_mc") == 1 and config.repeats_of("emoji_mc") == 3
    for bad in ("periodic=1", "periodic_mc=0", "periodic_mc"):
        with pytest.raises(bench.BenchError, match="--repeats-for"):
            bench.config_from_args(bench.parse_args(["--repeats-for", bad]))
    both = bench.overall([{"name": "a", "ours": {"median_s": 1.0}, "lmeval": {"median_s": 4.0}},
                          {"name": "b", "ours": {"median_s": 3.0}, "lmeval": {"median_s": 8.0}}])
    assert both == {"workloads": ["a", "b"], "ours_s": 4.0, "lmeval_s": 12.0, "ratio": 3.0}
    from bench_lmeval import gpu

    assert gpu.peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert gpu.peak_tflops("NVIDIA H100 PCIe") == 756.0 and gpu.peak_tflops("a toaster") is None
    assert gpu.peak_tflops("NVIDIA H200", "float32") == 67.0
    assert gpu.peak_tflops("NVIDIA A100-SXM4-80GB", "float32") == 19.5


def test_bf16_drift_hand_computed():
    reference = [{"logprobs": [-1.0, -2.0], "greedy": [True, False]},
                 {"logprobs": [-0.5], "greedy": [True]}]
    other = [{"logprobs": [-1.25, -2.0], "greedy": [True, True]},
             {"logprobs": [-0.25], "greedy": [False]}]
    assert compare.drift(reference, other) == pytest.approx(
        {"n_values": 3, "max_abs_delta": 0.25, "mean_abs_delta": 0.5 / 3, "greedy_flips": 2})
    with pytest.raises(ValueError):  # runs of different lengths are not comparable
        compare.drift(reference, other[:1])


@pytest.mark.skipif(importlib.util.find_spec("lm_eval") is None,
                    reason="lm-eval is not installed (pip install -e '.[bench]')")
def test_both_engines_agree_on_a_tiny_model(tiny_model_dir, tmp_path, monkeypatch):
    from bench_lmeval.engines import Job, run_job

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    loads = [wl.multiple_choice("emoji_mc", "emoji_movie", limit=3),
             wl.target_loglik("arith_loglik", ["arithmetic/2_digit_addition"], limit=3),
             wl.generate("arith_gen", ["arithmetic/2_digit_addition"], limit=3, max_new_tokens=4)]
    paths = []
    for workload in loads:
        wl.write_lmeval_task(workload, tmp_path / "lmeval")
        paths.append(str(wl.write_workload(workload, tmp_path / f"{workload.name}.json")))
    common = {"model": str(tiny_model_dir), "workloads": tuple(paths), "out": "",
              "lmeval_dir": str(tmp_path / "lmeval"), "repeats": 1, "device": "cpu"}
    ours = run_job(Job(engine="ours", batch_size="auto", modes=("exact",), **common))
    theirs = run_job(Job(engine="lmeval", batch_size="4", **common))
    assert ours["model_folder"] == str(tiny_model_dir)
    for workload, a, b in zip(loads, ours["runs"], theirs["runs"]):
        assert b["n_prompt_mismatches"] == 0, b["prompt_mismatches"]
        result = compare.compare(workload.kind, workload.docs, a["outputs"], b["outputs"])
        assert result["accuracy_ours"] == result["accuracy_lmeval"]
        if workload.kind == "generate":
            assert result["identical_generations"] == 3
        else:
            assert result["max_abs_delta"] <= 1e-3 and result["token_count_mismatches"] == 0
        assert a["peak_rss_mb"] > 0 and len(a["wall_s"]) == 1


def test_agreement_failures_are_the_exit_status():
    bench = _load_bench_script()
    fake = _fake_bench({"skipped": "x"})
    assert bench.agreement_failures(fake) == []
    fake["workloads"][0]["agreement"].update(max_abs_delta=2e-3, within_tolerance=False,
                                            accuracy_lmeval=0.32)
    failures = bench.agreement_failures(fake)
    assert len(failures) == 2 and "2.00e-03" in failures[0] and "0.3200 (lm-eval)" in failures[1]


def test_utilisation_and_fewshot_tables():
    bench = _load_bench_script()
    ceiling = {"matmul": {"flops_per_s": 200e9}, "raw_forward": {"flops_per_s": 160e9}}
    share = bench.utilisation(100e9, ceiling, ours_s=1.0, lmeval_s=4.0)
    assert share["of_matmul"] == pytest.approx(0.5) and share["of_raw_forward"] == pytest.approx(0.625)
    assert share["lmeval_of_matmul"] == pytest.approx(0.125)
    assert bench.utilisation(None, ceiling, 1.0, 4.0) is None
    assert bench.utilisation(100e9, None, 1.0, 4.0) is None
    fake = _fake_bench({"skipped": "x"})
    fake["workloads"][0]["utilisation"] = share
    fake["fewshot"] = [{"workload": "arith_loglik", "kind": "target_loglik", "shots": 3,
                        "n_docs": 4, "request_tokens": 400, "ours_ms_per_doc": 25.0,
                        "lmeval_ms_per_doc": 100.0, "ratio": 4.0, "utilisation": share,
                        "max_abs_delta": 2e-5}]
    text = report.render_markdown(fake)
    # lm-eval at 12.5% of the ceiling: an engine at the ceiling would be 8x faster than it
    assert "| emoji_mc | 0.10 | 100.0 | 200.0 | 50% | 160.0 | 62% | 12% | 2.00x | 8.00x |" in text
    assert "## Few-shot cost" in text
    assert "| arith_loglik | 3 | 4 | 100 | 25 | 100 | 4.00x | 50% | 2.0e-05 |" in text


def test_overall_bound_at_the_ceiling():
    """The least time the work can take is each workload's model FLOPs at its own ceiling; lm-eval's
    total over that is the largest reachable ratio, and the markdown says so."""
    bench = _load_bench_script()
    ceiling = {"matmul": {"flops_per_s": 200e9}, "raw_forward": {"flops_per_s": 160e9}}
    first, second = _fake_bench({"skipped": "x"})["workloads"][0], None
    first = {**first, "ours": {**first["ours"], "median_s": 2.0},
             "lmeval": {**first["lmeval"], "median_s": 8.0}}
    first["utilisation"] = bench.utilisation(200e9, ceiling, 2.0, 8.0)  # floor 1 s
    second = {**first, "name": "other", "ours": {**first["ours"], "median_s": 3.0},
              "lmeval": {**first["lmeval"], "median_s": 4.0}}
    second["utilisation"] = bench.utilisation(400e9, ceiling, 3.0, 4.0)  # floor 2 s
    total = bench.overall([first, second])
    assert total["ratio"] == pytest.approx(12 / 5)
    assert total["at_ceiling"] == pytest.approx(
        {"ours_floor_s": 3.0, "ratio_bound": 4.0, "of_bound": 0.6})
    assert "at_ceiling" not in bench.overall([first, {**second, "utilisation": None}])
    fake = _fake_bench({"skipped": "x"})
    fake["overall"] = total
    text = report.render_markdown(fake)
    assert "at least 3.00 s, so no engine can be more than 4.00x faster than lm-eval" in text
    assert "ours runs at 60% of that bound" in text
