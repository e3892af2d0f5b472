"""The pico family: corpus, exclusion of BIG-bench problems, training, determinism, loading."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from harness.answers import StopRule, extract_answer
from harness.emergence.seeds import split_seed
from harness.family.corpus import (
    CHARS,
    QUESTION,
    answer_text,
    bigbench_arithmetic_questions,
    format_problem,
    problems,
    rows,
    solve,
)
from harness.family.recipes import MINI, PICO, PICO_SCRATCHPAD, pythia_steps
from harness.tasks import SCRATCHPAD_ANSWER_REGEX, default_tasks_dir, load_tasks, render

REPO = Path(__file__).resolve().parents[1]
EXCLUDED = bigbench_arithmetic_questions(default_tasks_dir())


def test_corpus_never_contains_a_bigbench_problem():
    assert len(EXCLUDED) == 15023
    seen = set()
    for text in rows(seed=PICO.data_seed, n_rows=400, row_chars=513, style="direct",
                     excluded=EXCLUDED):
        seen.update(re.findall(r"Q: (What is [^?]+\?)", text))
    assert len(seen) > 2000
    assert not seen & EXCLUDED
    # the filter is what keeps them out: unfiltered, the same stream does hit BIG-bench
    unfiltered = problems(seed=PICO.data_seed, excluded=frozenset())
    hits = sum(f"What is {a} {dict(zip('+-*/', ('plus', 'minus', 'times', 'divided by')))[op]} "
               f"{b}?" in EXCLUDED for a, op, b, _ in (next(unfiltered) for _ in range(3000)))
    assert hits > 0


def test_problems_are_phrased_and_formatted_as_bigbench():
    a, op, b, choices = 457, "+", 368, ["825", "911", "3", "12345", "banana", "house"]
    text = format_problem(a, op, b, "direct", choices)
    assert text.startswith("\nQ: What is 457 plus 368?\n  choice: ") and text.endswith("\nA: 825")
    # same layout as a real BIG-bench arithmetic prompt
    task, = load_tasks("arithmetic/3_digit_addition")
    prompt = render(task, 0, limit=1)[0].text
    assert QUESTION.match(prompt.split("\n")[1][3:])
    assert prompt.count("\n  choice: ") == prompt.count("choice:")
    for op_name in ("plus", "minus", "times", "divided by"):
        assert any(op_name in q for q in EXCLUDED)
    assert set(prompt) <= set(CHARS)


def test_vocabulary_covers_every_bigbench_arithmetic_prompt():
    chars = set()
    for task in load_tasks("arithmetic"):
        for p in render(task, 1, limit=50):
            chars.update(p.text + "".join(p.targets))
    assert chars <= set(CHARS)


@pytest.mark.parametrize("a, op, b, expected", [
    (457, "+", 368, "7+8+0=15, 5+6+1=12, 4+3+1=8, so 825"),
    (45, "+", 7, "5+7+0=12, 4+0+1=5, so 52"),
    (61, "-", 49, "61-49: 1-9-0=-8, 6-4-1=1, so 12"),
    (37, "-", 47, "47-37: 7-7-0=0, 4-3-0=1, so -10"),
    (6, "*", 7, "so 42"),
    (84, "/", 4, "so 21"),
])
def test_scratchpad_format_and_final_answer_extraction(a, op, b, expected):
    text = answer_text(a, op, b, "scratchpad")
    assert text == expected
    answer, matched = extract_answer(text + "\n\nQ: What is 1 plus 2?", SCRATCHPAD_ANSWER_REGEX, None)
    assert matched and answer == str(solve(a, op, b))
    assert answer_text(a, op, b, "direct") == str(solve(a, op, b))


def test_recipes_scale_like_pythia():
    assert pythia_steps(4000, 500) == (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 500, 1000, 1500,
                                       2000, 2500, 3000, 3500, 4000)
    for recipe in (PICO, PICO_SCRATCHPAD):
        assert len(recipe.sizes) >= 5
        # Pythia's own schedule (powers of two to 512, then every 1000), thinned to fit storage
        assert set(recipe.save_steps) <= set(pythia_steps(recipe.steps, 1000))
        assert recipe.save_steps[0] == 0 and recipe.save_steps[-1] == recipe.steps
    # the direct family's sizes, then its seed variants: the same shapes, other init seeds
    base = [s for s in PICO.sizes if s.init_seed is None]
    assert [s.name for s in base] == [s.name for s in PICO_SCRATCHPAD.sizes]
    variants = [s for s in PICO.sizes if s.init_seed is not None]
    assert {split_seed(s.name)[0] for s in variants} == {s.name for s in base[:3]}
    assert len({s.init_seed for s in variants} | {PICO.init_seed}) == 3
    for variant in variants:
        same = PICO.size(split_seed(variant.name)[0])
        assert (variant.layers, variant.d_model, variant.heads) == (same.layers, same.d_model, same.heads)


def _sha(folder: Path) -> str:
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


def test_mini_family_trains_saves_and_records_itself(mini_family):
    manifest = json.loads((mini_family / "family.json").read_text())
    assert manifest["family"] == "mini" and len(manifest["sizes"]) == 3
    non_embedding = [s["non_embedding_params"] for s in manifest["sizes"]]
    assert non_embedding == sorted(non_embedding)
    for size in manifest["sizes"]:
        curve = [loss for _, loss in size["eval_loss_curve"]]
        assert curve[-1] < curve[0] - 0.5  # it learned something
        assert size["checkpoints"] == [f"step{s}" for s in MINI.save_steps]
        for checkpoint in size["checkpoints"]:
            folder = mini_family / size["name"] / checkpoint
            assert manifest["weights"][f"{size['name']}/{checkpoint}"] == _sha(folder)
            assert (folder / "tokenizer.json").exists()


def test_training_is_deterministic_and_resumes_exactly(mini_family, tmp_path):
    from harness.family.recipes import Recipe
    from harness.family.train import train_family, train_size

    small = Recipe(**{**MINI.__dict__, "sizes": MINI.sizes[:1]})
    size = MINI.sizes[0].name
    again = tmp_path / "again"
    assert train_family(small, again, jobs=1, threads=1, stop_at=80) == {}  # interrupted
    assert (again / size / "step80").exists() and not (again / size / "step120").exists()
    done, resumed = [], []
    train_size(small, small.sizes[0], again, threads=1, progress=done.append,
               resumed=resumed.append)  # resumes at step 80: a bar starts there
    assert resumed == [80] and len(done) == MINI.steps - 80
    for step in ("step0", "step40", "step120"):  # same seed -> same weights, resumed or not
        assert _sha(again / size / step) == _sha(mini_family / size / step)


def test_mini_checkpoints_load_through_the_hf_backend(mini_family, monkeypatch):
    from harness.models import load_model
    from harness.models.base import GenRequest, LoglikRequest

    monkeypatch.setenv("HARNESS_FAMILIES_DIR", str(mini_family.parent))
    backend = load_model("mini-56k", "step120")
    assert backend.info.revision == "step120"
    assert backend.info.non_embedding_params == json.loads(
        (mini_family / "family.json").read_text())["sizes"][2]["non_embedding_params"]
    prompt = "\nQ: What is 12 plus 35?\nA: "
    scores = backend.loglikelihood([LoglikRequest(prompt, "47")])[0]
    assert scores.tokens == (" ", "4", "7")  # character tokens, the space moved over
    generation = backend.generate([GenRequest(prompt, 8, stop=StopRule(output_regex=r"[-+]?\d+"))])[0]
    assert generation.n_tokens >= 1
    default = load_model("mini-56k")  # like a hub model's main: the last checkpoint
    assert default.info.revision == "step120"


COMMITTED = REPO / "families"


@pytest.mark.parametrize("recipe", [PICO, PICO_SCRATCHPAD], ids=lambda r: r.family)
def test_committed_family_matches_its_manifest(recipe):
    folder = COMMITTED / recipe.family
    if not (folder / "family.json").exists():
        pytest.skip(f"{recipe.family} family not committed")
    manifest = json.loads((folder / "family.json").read_text())
    assert manifest["recipe"] == json.loads(json.dumps(recipe.to_json()))
    assert [s["name"] for s in manifest["sizes"]] == [s.name for s in recipe.sizes]
    assert all(s["checkpoints"] == [f"step{n}" for n in recipe.save_steps]
               for s in manifest["sizes"])
    spans = [s["non_embedding_params"] for s in manifest["sizes"]]
    assert max(spans) / min(spans) >= 30
    assert len(manifest["weights"]) == len(recipe.sizes) * len(recipe.save_steps)
    for key, digest in manifest["weights"].items():
        assert _sha(folder / key) == digest, key


def test_committed_families_fit_the_storage_budget():
    # the pico families' share of the 100 MB all families get (test_grok checks the whole):
    # 45 MB for pico and pico-scratchpad, 9 MB for pico's seed variants
    weights = [p for p in COMMITTED.glob("pico*/*/step*/*") if p.is_file()]
    assert sum(p.stat().st_size for p in weights) <= 56 * 2**20


def test_one_parameter_count_for_trainer_and_backend_counts_tied_embeddings_once():
    """The x-axis of every curve: family.json (the trainer) and every run (the backend) use
    harness.models.hf_load.parameter_counts; a tied output head is the input embedding."""
    from transformers import GPTNeoXForCausalLM

    from harness.family import train
    from harness.models.hf_load import parameter_counts

    untied = GPTNeoXForCausalLM(train.build_config(MINI.sizes[0], MINI))
    config = train.build_config(MINI.sizes[0], MINI)
    config.tie_word_embeddings = True
    tied = GPTNeoXForCausalLM(config)
    assert tied.get_output_embeddings().weight is tied.get_input_embeddings().weight
    embedding = untied.get_input_embeddings().weight.numel()
    untied_total, untied_non = parameter_counts(untied)
    tied_total, tied_non = parameter_counts(tied)
    assert untied_total - untied_non == 2 * embedding
    assert tied_total - tied_non == embedding
    assert tied_non == untied_non
    assert not hasattr(train, "parameter_counts")  # no second copy to drift
