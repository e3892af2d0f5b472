"""Task loading, validation and BIG-bench-identical rendering."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.answers import postprocess
from harness.errors import HarnessError
from harness.tasks import (
    DEFAULT_REGEX,
    available_tasks,
    default_tasks_dir,
    load_task_file,
    load_tasks,
    programmatic_tasks,
    render,
)

REPO = Path(__file__).resolve().parents[1]
DIGESTS = json.loads((REPO / "tests" / "data" / "bigbench_prompt_digests.json").read_text())


def test_task_files_match_the_bigbench_sdist_manifest():
    root = default_tasks_dir()
    lines = (root / "MANIFEST.sha256").read_text().splitlines()
    assert len(lines) == 25  # 20 arithmetic subtasks + parent, emoji_movie, periodic x3
    for line in lines:
        digest, rel = line.split(maxsplit=1)
        assert hashlib.sha256((root / rel).read_bytes()).hexdigest() == digest, rel
        assert "canary GUID" in (root / rel).read_text(encoding="utf-8")
    assert (root / "LICENSE").read_text().startswith(" " * 33 + "Apache License")


def test_inventory_counts():
    assert available_tasks() == ["arithmetic", "emoji_movie", "periodic_elements",
                                 "grok/modular_addition", "loss/pico-corpus",
                                 "loss/pico-scratchpad-corpus", "loss/reference"]
    arithmetic = load_tasks("arithmetic")
    assert len(arithmetic) == 20
    assert sum(len(t.examples) for t in arithmetic) == 15023
    assert [t.name for t in load_tasks("periodic_elements")] == [
        "periodic_elements/subtask_0", "periodic_elements/subtask_1"]
    emoji, = load_tasks("emoji_movie")
    assert len(emoji.examples) == 100 and emoji.n_choices == (5, 5)
    sub0, = load_tasks("periodic_elements/subtask_0")
    assert len(sub0.examples) == 118 and sub0.n_choices == (118, 118)
    assert not sub0.append_choices_to_input
    sub1, = load_tasks("periodic_elements/subtask_1")
    assert len(sub1.examples) == 536 and sub1.n_choices is None
    assert emoji.chance_multiple_choice_grade == pytest.approx(0.2)


@pytest.mark.parametrize("key", sorted(DIGESTS))
def test_prompts_equal_bigbench_own_output(key):
    """Digests of BIG-bench 1.0.0's own formatting code's output (scripts/check_against_bigbench.py)."""
    name, shots, limit = key.split("|")
    task, = load_tasks(name)
    records = [{"prompt": p.text, "choices": list(p.choices), "targets": list(p.targets)}
               for p in render(task, int(shots), None if limit == "all" else int(limit))]
    text = "\n".join(json.dumps(r, ensure_ascii=False, sort_keys=True) for r in records)
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == DIGESTS[key]


def test_append_choices_worked_by_hand():
    """emoji_movie example 0, formatted from the spec: sorted choices permuted by RandomState(42)."""
    emoji, = load_tasks("emoji_movie")
    prompt = render(emoji, 0)[0]
    assert prompt.idx == 0
    # sorted: finding nemo, mr. smith..., se7en, the shining, the wolf...;
    # RandomState(42).permutation(5) == [1, 4, 2, 0, 3]
    assert list(np.random.RandomState(42).permutation(5)) == [1, 4, 2, 0, 3]
    assert prompt.text == (
        "\nQ: What movie does this emoji describe? 👧🐟🐠🐡"
        "\n  choice: mr. smith goes to washington"
        "\n  choice: the wolf of wall street"
        "\n  choice: se7en"
        "\n  choice: finding nemo"
        "\n  choice: the shining"
        "\nA: ")
    # The scored choices keep file order, not the shown order.
    assert prompt.choices == ("finding nemo", "the wolf of wall street", "se7en", "the shining",
                              "mr. smith goes to washington")
    assert prompt.targets == ("finding nemo",)


def _write_task(tmp_path: Path, body: dict, name: str = "toy") -> Path:
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    data = {"canary": "c", "name": name, "description": "d", "keywords": ["k"],
            "metrics": ["exact_str_match"], "preferred_score": "exact_str_match", **body}
    path = folder / "task.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_few_shot_worked_by_hand(tmp_path):
    """Three examples, one shot, queries and shots drawn as the spec says."""
    path = _write_task(tmp_path, {"examples": [
        {"input": "a", "target": "A"},
        {"input": "b", "target": ["B1", "B2"]},
        {"input": "c", "target": "C"},
    ]})
    task, = load_task_file(path, "toy")
    prompts = render(task, shots=1)
    # Draws of one RandomState(42): query order, then per query its shot, then (only for a
    # multi-target shot) the answer.
    rng = np.random.RandomState(42)
    order = list(rng.permutation(3))
    assert [p.idx for p in prompts] == order == [0, 1, 2]
    # query 0 ("a"): candidates [b, c]; shot index drawn from permutation(2)
    first_shot = int(rng.permutation(2)[0])
    shot = ["b", "c"][first_shot]
    answer = "C"
    if shot == "b":
        answer = ["B1", "B2"][int(rng.randint(0, 2))]
    assert prompts[0].text == f"\nQ: {shot}\nA: {answer}\n\nQ: a\nA: "
    assert prompts[0].shot_idxs == ((1,) if shot == "b" else (2,))
    # Every prompt: its shots never include the query itself.
    for p in prompts:
        assert p.idx not in p.shot_idxs


def test_few_shot_prompt_shape_on_arithmetic():
    task, = load_tasks("arithmetic/2_digit_addition")
    prompts = render(task, shots=3, limit=5)
    for p in prompts:
        assert len(p.shot_idxs) == 3 and p.idx not in p.shot_idxs
        # examples separated by a blank line; the prompt ends in "A: " (trailing space)
        assert p.text.count("\n\nQ: ") == 3 and p.text.endswith("\nA: ")
        for shot_idx in p.shot_idxs:
            shot = task.examples[shot_idx]
            assert shot.input + shot.targets[0] in p.text


def test_limit_is_a_prefix_of_the_full_draw():
    task, = load_tasks("arithmetic/1_digit_addition")
    full = render(task, shots=3)
    some = render(task, shots=3, limit=10)
    assert [p.text for p in some] == [p.text for p in full[:10]]
    zero_some = render(task, shots=0, limit=10)
    assert [p.idx for p in zero_some] == [p.idx for p in some]
    assert [p.idx for p in render(task, shots=0)] == list(range(100))


def test_postprocess_rules():
    sub0, = load_tasks("periodic_elements/subtask_0")
    answer = "The element with atomic number 1 is hydrogen."
    assert postprocess(answer, sub0.output_regex, sub0.stop_string) == "hydrogen"
    assert postprocess(" Hydrogen", sub0.output_regex, None) == "Hydrogen"  # casing kept
    arith, = load_tasks("arithmetic/2_digit_subtraction")
    assert postprocess(" -12 and 7", arith.output_regex, None) == "-12"
    assert postprocess(" no digits", arith.output_regex, None) == ""
    assert postprocess(" finding nemo\nQ: next", DEFAULT_REGEX, None) == " finding nemo"
    assert postprocess(" monsters inc.", DEFAULT_REGEX, None) == " monsters inc"
    assert postprocess("a. b. c", None, ".") == "a."
    assert postprocess(".a. b", None, ".") == ".a. b"  # a stop string at index 0 is ignored
    assert postprocess("abcdefgh", None, None, max_chars=3) == "abc"


def test_one_capturing_group_gives_its_text_as_bigbench_findall_does():
    import re

    # regexes of BIG-bench 1.0.0 tasks (operators; simp_turing_concept, mult_data_wrangling)
    cases = [(r"([-+]?\d+)[.]{0,1}$", " 42.", None), (r"('.*?')", " it is 'abc' or 'd'", None),
             (r"a(b)?", "xa", None), (r"([-+]?\d+)[.]{0,1}$", " 7 then 8\n", "\n")]
    for regex, text, stop in cases:
        cut = postprocess(text, None, stop)
        expected = next(iter(re.findall(regex, cut)), "")
        assert postprocess(text, regex, stop) == expected
    assert postprocess(" 42.", r"([-+]?\d+)[.]{0,1}$", None) == "42"
    assert postprocess("xa", r"a(b)?", None) == ""  # the group took no part


def test_append_choices_string_false_is_true_as_in_bigbench(tmp_path, caplog):
    # four BIG-bench 1.0.0 tasks write "false" (a string): BIG-bench's `if` appends the choices
    path = _write_task(tmp_path, {"append_choices_to_input": "false",
                                  "metrics": ["multiple_choice_grade"],
                                  "preferred_score": "multiple_choice_grade",
                                  "examples": [{"input": "x", "target_scores": {"a": 1, "b": 0}}]})
    task, = load_task_file(path, "toy")
    assert task.append_choices_to_input is True
    assert "\n  choice: " in task.examples[0].input
    assert "taken as True, as BIG-bench does" in caplog.text


@pytest.mark.parametrize("body, expected", [
    ({}, "has no 'examples' and no sub-folders with a task.json"),
    ({"examples": [{"input": "x", "target": "y"}], "preferred_score": None},
     "field 'preferred_score': unknown metric None"),
    ({"examples": {"input": "x"}}, "field 'examples' is not a non-empty list"),
    ({"examples": [{"input": "x"}]}, "example 0: has neither 'target' nor 'target_scores'"),
    ({"examples": [{"input": "x", "target": "y"}, "oops"]}, "example 1: not a JSON object"),
    ({"examples": [{"target": "y"}]}, "example 0: field 'input' missing"),
    ({"examples": [{"input": "x", "target": "y"},
                   {"input": "z", "target": "a", "target_scores": {"a": "high"}}]},
     "example 1: field 'target_scores' value for 'a' is 'high', not a finite number"),
    ({"metrics": ["multiple_choice_grade"],
      "examples": [{"input": "x", "target_scores": {"a": 0, "b": 0}}]},
     "example 0: field 'target_scores' marks no choice as correct"),
    ({"examples": [{"input": "x", "target": 3}]}, "example 0: field 'target' must be a string"),
    ({"output_regex": "([0-9", "examples": [{"input": "x", "target": "y"}]},
     "field 'output_regex': invalid regular expression"),
    ({"output_regex": "(\\d)(\\d)", "examples": [{"input": "x", "target": "y"}]},
     "has 2 capturing groups"),
    ({"absolute_normalization": "yes", "examples": [{"input": "x", "target": "y"}]},
     "field 'absolute_normalization' is not true/false"),
    ({"metrics": ["accuracy"], "examples": [{"input": "x", "target": "y"}]},
     "unsupported metric(s) ['accuracy']"),
    ({"metrics": ["multiple_choice_grade"], "examples": [{"input": "x", "target": "y"}]},
     "example 0: field 'target_scores' missing"),
])
def test_malformed_task_files_name_file_example_and_field(tmp_path, body, expected):
    path = _write_task(tmp_path, body)
    with pytest.raises(HarnessError) as info:
        load_task_file(path, "toy")
    message = str(info.value)
    assert str(path) in message and expected in message
    assert "\n" not in message


def test_unreadable_and_non_json_files(tmp_path):
    bad_json = tmp_path / "a" / "task.json"
    bad_json.parent.mkdir()
    bad_json.write_text('{"name": "a",\n "examples": [}', encoding="utf-8")
    with pytest.raises(HarnessError, match=r"invalid JSON at line 2 column"):
        load_task_file(bad_json, "a")
    latin = tmp_path / "b" / "task.json"
    latin.parent.mkdir()
    latin.write_bytes('{"name": "caf\xe9"}'.encode("latin-1"))
    with pytest.raises(HarnessError, match=r"not UTF-8 \(bad byte at offset 13\)"):
        load_task_file(latin, "b")
    with pytest.raises(HarnessError, match=r"cannot read task file"):
        load_task_file(tmp_path / "missing" / "task.json", "missing")
    no_canary = _write_task(tmp_path, {"examples": [{"input": "x", "target": "y"}]}, name="c")
    data = json.loads(no_canary.read_text())
    del data["canary"]
    no_canary.write_text(json.dumps(data))
    with pytest.raises(HarnessError, match=r"field 'canary' missing"):
        load_task_file(no_canary, "c")


def test_shots_and_limit_out_of_range():
    task, = load_tasks("arithmetic/1_digit_division")
    with pytest.raises(HarnessError, match=r"at most 22 shots"):
        render(task, shots=23)
    with pytest.raises(HarnessError, match=r"negative"):
        render(task, shots=-1)
    with pytest.raises(HarnessError, match=r"--limit -2 must be 1 or more"):
        render(task, shots=0, limit=-2)
    assert len(render(task, shots=22, limit=1)) == 1


def test_unknown_task_lists_valid_names():
    with pytest.raises(HarnessError, match=r"available: arithmetic, emoji_movie, periodic_elements"):
        load_tasks("emoji_movies")
    with pytest.raises(HarnessError, match=r"periodic_elements has: subtask_0, subtask_1"):
        load_tasks("periodic_elements/subtask_7")


def test_duplicates_are_dropped_keeping_file_index(tmp_path):
    path = _write_task(tmp_path, {"examples": [
        {"input": "x", "target": "1"}, {"input": "x", "target": "1"}, {"input": "y", "target": "2"}]})
    task, = load_task_file(path, "toy")
    assert [e.idx for e in task.examples] == [0, 2] and task.n_duplicates_dropped == 1


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, cwd=REPO)


def test_cli_prompts_jsonl_and_errors():
    done = _cli("prompts", "arithmetic/3_digit_addition", "--shots", "1", "--limit", "3")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(records) == 3
    assert set(records[0]) == {"task", "idx", "prompt", "choices", "targets"}
    task, = load_tasks("arithmetic/3_digit_addition")
    for record in records:
        example = task.examples[record["idx"]]
        assert record["prompt"].endswith(example.input) and record["targets"] == list(example.targets)
    bad = _cli("prompts", "arithmetc")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "unknown task 'arithmetc'" in bad.stderr
    assert "Traceback" not in bad.stderr
    listing = _cli("tasks")
    # 23 BIG-bench (sub)tasks (15,777 examples), grok/modular_addition (train, heldout) and
    # three held-out loss texts of 128 windows each
    assert listing.returncode == 0 and "28 (sub)tasks, 25570 examples" in listing.stdout
    assert "loss/reference" in listing.stdout


def test_task_module_imports_without_torch():
    code = ("import sys, harness.tasks, harness.errors; "
            "heavy = {'torch', 'transformers', 'matplotlib'} & set(sys.modules); "
            "print(sorted(heavy))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.stdout.strip() == "[]", done.stderr


# ------------------------------------------------------------------ tasks by path, other folders

BUNDLED = REPO / "tasks" / "bigbench"


def test_a_task_json_path_loads_like_its_name():
    by_name, = load_tasks("emoji_movie")
    for spec in (str(BUNDLED / "emoji_movie" / "task.json"), str(BUNDLED / "emoji_movie")):
        by_path, = load_tasks(spec)
        assert by_path.name == "emoji_movie" and by_path.sha256 == by_name.sha256
        assert render(by_path, 3) == render(by_name, 3)


def test_a_container_path_yields_its_subtasks_and_a_subtask_keeps_its_parent_name():
    subtasks = load_tasks(str(BUNDLED / "periodic_elements"))
    assert [t.name for t in subtasks] == ["periodic_elements/subtask_0",
                                          "periodic_elements/subtask_1"]
    one, = load_tasks(str(BUNDLED / "arithmetic" / "3_digit_addition" / "task.json") + "@scratchpad")
    assert one.name == "arithmetic/3_digit_addition@scratchpad" and one.variant is not None


def test_a_relative_path_and_any_json_file_name(tmp_path, monkeypatch):
    path = _write_task(tmp_path, {"examples": [{"input": "x", "target": "y"},
                                               {"input": "z", "target": "w"}]}, name="mine")
    other = path.with_name("renamed.json")
    other.write_bytes(path.read_bytes())
    monkeypatch.chdir(tmp_path)
    assert [t.name for t in load_tasks("mine")] == ["mine"]  # exists relative to cwd
    assert [t.name for t in load_tasks(str(other))] == ["renamed"]


def test_tasks_dir_is_a_parameter_and_lists_programmatic_tasks(tmp_path):
    _write_task(tmp_path, {"examples": [{"input": "x", "target": "y"}]}, name="json_one")
    (tmp_path / "code_one").mkdir()
    (tmp_path / "code_one" / "task.py").write_text("raise SystemExit('never run')\n")
    (tmp_path / "PROGRAMMATIC.txt").write_text("listed_one\n")
    assert available_tasks(tmp_path) == ["json_one"]
    assert programmatic_tasks(tmp_path) == ["code_one", "listed_one"]
    assert [t.name for t in load_tasks("json_one", tmp_path)] == ["json_one"]


@pytest.mark.parametrize("make, spec, expected", [
    (lambda d: (d / "code").mkdir() or (d / "code" / "task.py").write_text("1/0\n"),
     "{d}/code", "is a programmatic BIG-bench task (task.py, no task.json)"),
    (lambda d: (d / "code").mkdir() or (d / "code" / "task.py").write_text("1/0\n"),
     "code", "is a programmatic BIG-bench task"),
    (lambda d: (d / "PROGRAMMATIC.txt").write_text("gone\n"), "gone",
     "'gone' (in {d}) is a programmatic BIG-bench task"),
    (lambda d: (d / "empty").mkdir(), "{d}/empty", "{d}/empty: folder has no task.json"),
    (lambda d: None, "{d}/nowhere/task.json", "not a task name and no such file or folder"),
    (lambda d: None, "nothing_here", "unknown task 'nothing_here'; available: "),
    (lambda d: None, "emoji_movie@nope", "unknown task variant 'nope'"),
])
def test_bad_task_specs_give_one_clear_line(tmp_path, make, spec, expected):
    root = tmp_path / "tasks"
    root.mkdir()
    make(root)
    spec, expected = spec.format(d=root), expected.format(d=root)
    with pytest.raises(HarnessError) as info:
        load_tasks(spec, root)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_cli_tasks_dir_flags(tmp_path):
    _write_task(tmp_path, {"examples": [{"input": "x", "target": "y"},
                                        {"input": "z", "target": "w"}]}, name="mine")
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "task.py").write_text("raise SystemExit(1)\n")
    listing = _cli("tasks", "--dir", str(tmp_path))
    assert listing.returncode == 0, listing.stderr
    assert "1 (sub)tasks, 2 examples" in listing.stdout
    assert "skipped 1 programmatic task(s), Python code the harness never runs: code" in listing.stdout
    prompts = _cli("prompts", "mine", "--tasks-dir", str(tmp_path), "--shots", "1")
    assert prompts.returncode == 0, prompts.stderr
    assert [json.loads(line)["task"] for line in prompts.stdout.splitlines()] == ["mine", "mine"]


def test_cached_choice_order_equals_a_fresh_permutation_per_example():
    from harness.tasks import _shown_order

    rng = np.random.default_rng(0)
    for n in [1, 2, 3, 5, 7, 17, 118, 300]:
        keys = sorted({f"c{int(v)}" for v in rng.integers(0, 10**6, size=n)})
        fresh = np.random.RandomState(42).permutation(keys)  # what BIG-bench does
        assert [keys[i] for i in _shown_order(42, len(keys))] == [str(k) for k in fresh]


def test_all_zero_scores_load_when_a_target_is_given_as_in_bigbench(tmp_path):
    path = _write_task(tmp_path, {"metrics": ["exact_str_match", "multiple_choice_grade"],
                                  "examples": [{"input": "x", "target": "a",
                                                "target_scores": {"a": 0}},
                                               {"input": "y", "target": "b",
                                                "target_scores": {"b": 1, "c": 0}}]})
    task, = load_task_file(path, "toy")
    assert task.examples[0].targets == ("a",) and task.examples[0].target_scores == (0.0,)
