"""Flipped and unrelated demonstration labels; the scratchpad task variant."""

from __future__ import annotations

import pytest

from harness.demos import UNRELATED_WORDS, derangement, relabeler
from harness.errors import HarnessError
from harness.records import read_records
from harness.tasks import load_tasks, render


@pytest.mark.parametrize("n", [2, 3, 5, 10, 118])
def test_derangements_have_no_fixed_point_and_are_seeded(n):
    perm = derangement(n, seed=7)
    assert sorted(perm) == list(range(n))
    assert all(i != p for i, p in enumerate(perm))
    assert derangement(n, seed=7) == perm
    if n > 3:
        assert derangement(n, seed=8) != perm


def test_flipped_labels_keep_the_demonstrations_and_replace_their_answers():
    task, = load_tasks("emoji_movie")
    true = render(task, shots=3, limit=5)
    flipped = render(task, shots=3, limit=5, relabel=relabeler(task, "flipped"))
    sigma = derangement(5)
    for t, f in zip(true, flipped):
        assert (t.idx, t.shot_idxs) == (f.idx, f.shot_idxs)  # same queries, same demonstrations
        assert f.text.endswith(task.examples[[e.idx for e in task.examples].index(f.idx)].input)
        for shot_idx in f.shot_idxs:
            shot = task.examples[shot_idx]
            correct = shot.target_scores.index(max(shot.target_scores))
            wrong = shot.choices[sigma[correct]]
            assert shot.input + wrong in f.text and shot.input + shot.targets[0] not in f.text
            assert wrong != shot.targets[0]
        query = task.examples[f.idx]
        assert f.demo_target == query.choices[sigma[0]] != query.targets[0]
        assert t.demo_target is None


def test_flipped_arithmetic_maps_digits_by_a_fixed_derangement():
    task, = load_tasks("arithmetic/2_digit_subtraction")
    pi = derangement(10)
    rule = relabeler(task, "flipped")
    for example in task.examples[:50]:
        answer = example.targets[0]
        flipped = rule(example)
        assert len(flipped) == len(answer) and flipped != answer
        assert flipped[0] == "-" if answer[0] == "-" else flipped[0] != "-"
        digits = answer.lstrip("-")
        assert flipped.lstrip("-") == "".join(str(pi[int(d)]) for d in digits)
    prompt = render(task, shots=1, limit=1, relabel=rule)[0]
    shot = task.examples[prompt.shot_idxs[0]]
    assert prompt.text.startswith(shot.input + rule(shot) + "\n")


def test_unrelated_labels_are_words_chosen_by_answer_class():
    arithmetic, = load_tasks("arithmetic/1_digit_addition")
    rule = relabeler(arithmetic, "unrelated")
    for example in arithmetic.examples[:20]:
        assert rule(example) == UNRELATED_WORDS[int(example.targets[0][-1])]
    emoji, = load_tasks("emoji_movie")
    assert relabeler(emoji, "unrelated")(emoji.examples[0]) == UNRELATED_WORDS[0]
    assert relabeler(emoji, "true") is None


def test_tasks_without_choices_or_numbers_refuse_relabelling():
    task, = load_tasks("periodic_elements/subtask_1")
    with pytest.raises(HarnessError, match="needs choices or integer answers"):
        relabeler(task, "flipped")
    with pytest.raises(HarnessError, match="unknown --demo-labels"):
        relabeler(task, "shuffled")


def test_scratchpad_variant_scores_the_final_number_after_the_model_scratchpad(tiny_model_dir,
                                                                            tmp_path):
    from harness.models import load_model
    from harness.runner import EvalSettings, GenerationSettings, evaluate, run_chunk, scoring_context

    task, = load_tasks("arithmetic/2_digit_addition@scratchpad")
    plain, = load_tasks("arithmetic/2_digit_addition")
    assert task.name.endswith("@scratchpad") and task.output_regex != plain.output_regex
    assert [p.text for p in render(task, 1, 3)] == [p.text for p in render(plain, 1, 3)]
    prompt = render(task, 0, 1)[0]
    worked = "5+7+0=12, 4+0+1=5, so 52\n\nQ: What is"
    assert scoring_context(task, prompt, worked) == prompt.text + "5+7+0=12, 4+0+1=5, so "
    assert scoring_context(task, prompt, "52\n") is None
    assert scoring_context(plain, prompt, worked) == prompt.text
    backend = load_model(str(tiny_model_dir))
    prompts = render(task, 0, 4)
    records = run_chunk(backend, task, prompts, GenerationSettings())
    for record in records:
        assert record.generation_n_tokens <= 96
        if "so " in record.generation:
            cut = record.generation.index("so ") + 3
            assert record.target_context == record.generation[:cut]
            assert len(record.target_logprobs) == 1
        else:  # no scratchpad answer: the target log-prob is a counted NaN, not a guess
            assert record.target_context == "" and record.target_logprobs == ()
    summary = evaluate(backend, EvalSettings(tasks=(task.name,), limit=4, out=tmp_path,
                                             n_boot=20), progress=False)[0]
    assert summary["task"]["name"] == "arithmetic/2_digit_addition@scratchpad"
    folder = tmp_path / "runs" / "tiny-neox@main" / "arithmetic" / "2_digit_addition@scratchpad"
    assert len(read_records(folder / "shots0" / "examples.jsonl")) == 4
