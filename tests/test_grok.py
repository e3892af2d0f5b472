"""The grok family: its task, tokenizer, fast forward, checkpoint selection and committed weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.family.grok import rise_window, select_steps
from harness.family.grok_task import TASK_DIR, TASK_NAME, TableSplit, read_split, task_files
from harness.tasks import available_tasks, load_tasks, render

REPO = Path(__file__).resolve().parents[1]
FAMILY = REPO / "families" / "grok"


def test_task_generator_is_deterministic_and_matches_the_committed_task():
    split = read_split()
    assert task_files(split) == task_files(TableSplit(split.modulus, split.train_fraction,
                                                      split.seed))
    for relative, data in task_files(split).items():
        assert json.loads((TASK_DIR / relative).read_text()) == data, relative
    other = task_files(TableSplit(split.modulus, split.train_fraction, split.seed + 1))
    assert other["train/task.json"] != task_files(split)["train/task.json"]


def test_train_and_heldout_are_disjoint_and_cover_the_table():
    split = read_split()
    train, heldout = split.pairs()
    assert not set(train) & set(heldout)
    assert set(train) | set(heldout) == {(a, b) for a in range(97) for b in range(97)}
    assert len(train) == round(split.train_fraction * 97 * 97)
    loaded = {t.name: t for t in load_tasks(TASK_NAME)}
    assert sorted(loaded) == [f"{TASK_NAME}/heldout", f"{TASK_NAME}/train"]
    inputs = {name: {ex.raw_input for ex in task.examples} for name, task in loaded.items()}
    assert not inputs[f"{TASK_NAME}/train"] & inputs[f"{TASK_NAME}/heldout"]
    example = loaded[f"{TASK_NAME}/train"].examples[0]
    a, b = train[0]
    assert example.raw_input == f"What is ({a} + {b}) mod 97?"
    assert example.targets == (str((a + b) % 97),)


def test_the_task_is_listed_and_rendered_like_bigbench_tasks():
    assert TASK_NAME in available_tasks()
    task = load_tasks(f"{TASK_NAME}/heldout")[0]
    prompt = render(task, shots=0, limit=1)[0]
    assert prompt.text.startswith("\nQ: What is (") and prompt.text.endswith(" mod 97?\nA: ")


def test_tokenizer_round_trips_rendered_prompts():
    from harness.family.grok_model import build_tokenizer

    tokenizer = build_tokenizer(97)
    unk = tokenizer.unk_token_id
    for task in load_tasks(TASK_NAME):
        for shots in (0, 2):
            for prompt in render(task, shots=shots, limit=50):
                text = prompt.text + prompt.targets[0]
                ids = tokenizer(text)["input_ids"]
                assert unk not in ids
                assert tokenizer.decode(ids) == text
    ids = tokenizer("\nQ: What is (12 + 34) mod 97?\nA: 46")["input_ids"]
    assert len(ids) == 25  # one token per number, word, space and mark
    assert tokenizer.convert_ids_to_tokens(ids)[-1] == "46"


def test_fast_forward_equals_the_hf_forward():
    import torch
    from transformers import GPTNeoXForCausalLM

    from harness.family.grok import Batch, prompt_rows
    from harness.family.grok_model import GrokSize, build_config, build_tokenizer

    split = read_split()
    tokenizer = build_tokenizer(split.modulus)
    torch.manual_seed(3)
    model = GPTNeoXForCausalLM(build_config(GrokSize("t", d_model=32, heads=2, mlp=64),
                                            split.modulus)).float().eval()
    rows = prompt_rows(split, split.pairs()[1][:40], tokenizer)
    batch = Batch(rows)
    with torch.no_grad():
        fast = batch.logits(model)
        full = model(input_ids=torch.tensor(rows)).logits[:, list(batch.query_positions)]
    assert fast.shape == full.shape == (40, 3, len(tokenizer))
    assert torch.allclose(fast, full, atol=1e-5)
    assert batch.targets[0, 2] == tokenizer.eos_token_id


def _curve(accuracies: list[float], every: int = 100) -> list[dict]:
    steps = [0, 1, 2, 4, 8, 16, 32, 64] + list(range(every, every * (len(accuracies) - 7), every))
    return [{"step": s, "heldout_accuracy": a, "train_accuracy": 1.0}
            for s, a in zip(steps, accuracies)]


def test_rise_window_and_selection_keep_the_jump():
    flat = [0.01] * 8 + [0.0] * 10 + [0.05, 0.3, 0.7, 0.95, 0.99] + [1.0] * 10
    curve = _curve(flat)
    # steps 100..1000 at 0.0 (the floor), 0.05 at 1100; top 1.0: 10% of the way is first
    # reached at 0.3 (step 1200), 90% at 0.95 (step 1400)
    assert rise_window(curve) == (1200, 1400)
    chosen = select_steps(curve, max_checkpoints=20, every=100)
    assert {1100, 1200, 1300, 1400, 1500} <= set(chosen)  # the rise and one step either side
    assert {0, 1, 64, 100, 200, 400, 800, 1600, curve[-1]["step"]} <= set(chosen)
    assert len(chosen) <= 20
    assert rise_window(_curve([0.01] * 30)) is None


def test_grok_family_fits_its_budget():
    if not (FAMILY / "family.json").exists():
        pytest.skip("grok family not committed")
    weights = [p for p in FAMILY.glob("grok-*/step*/*") if p.is_file()]
    assert 0 < sum(p.stat().st_size for p in weights) <= 15 * 2**20


def test_all_committed_families_fit_the_100_mb_budget():
    weights = [p for p in (REPO / "families").glob("*/*/step*/*") if p.is_file()]
    assert sum(p.stat().st_size for p in weights) <= 100 * 2**20


def test_committed_grok_family_loads_and_has_learned_its_training_set():
    if not (FAMILY / "family.json").exists():
        pytest.skip("grok family not committed")
    from harness.metrics import exact_str_match
    from harness.models import load_model
    from harness.runner import GenerationSettings, run_chunk

    manifest = json.loads((FAMILY / "family.json").read_text())
    size = manifest["sizes"][0]
    backend = load_model(size["name"])  # the final checkpoint, like a hub model's main
    assert backend.info.revision == size["checkpoints"][-1]
    assert backend.info.non_embedding_params == size["non_embedding_params"]
    task = load_tasks(f"{TASK_NAME}/train")[0]
    records = run_chunk(backend, task, render(task, shots=0, limit=200), GenerationSettings())
    scores = [exact_str_match(r) for r in records]
    assert sum(scores) / len(scores) >= 0.98
    assert all(r.generation_stop == "eos" for r in records)  # stops after the number
    # the natural boundary scores " 46" after "...A:": the space (learnt, ~certain), then 46
    assert all(len(r.target_logprobs[0]) == 2 and r.target_logprobs[0][0] > -0.05
               for r in records)
