"""The benchmark's workloads as plain records, and the lm-eval task files that replay them.

A workload is a list of `Doc`s rendered once by this harness (`harness.tasks.render`, 0
shots). Both engines read the same JSONL file: our engine turns each row into
`LoglikRequest`/`GenRequest`s, lm-eval reads it as a local `json` dataset through a task
config whose fields are plain column names (`doc_to_text: prompt`), never Jinja templates:
a template would be rendered (Jinja drops a trailing newline) and an all-digit result is
turned into an int by lm-eval, so a field name is the only way to pass a prompt through
byte for byte. `target_delimiter: ""` because our prompts already end in "A: ": lm-eval
then moves that trailing space into the continuation, as our "natural" boundary does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

KINDS = ("multiple_choice", "target_loglik", "generate")


@dataclass(frozen=True)
class Doc:
    """One rendered example: the exact prompt and what is scored or generated after it."""

    task: str  # "emoji_movie", "arithmetic/2_digit_addition"
    idx: int  # index of the example in its task.json
    prompt: str
    choices: tuple[str, ...] = ()
    gold: int = -1  # index into choices of the (first) highest-scoring choice
    target: str = ""  # the first target string
    output_regex: str | None = None  # BIG-bench post-processing of generations
    stop_string: str | None = None


@dataclass(frozen=True)
class Workload:
    name: str  # "emoji_movie_mc"; also the lm-eval task name after LMEVAL_PREFIX
    kind: str  # one of KINDS
    docs: tuple[Doc, ...]
    max_new_tokens: int = 0  # generate only

    @property
    def n_requests(self) -> int:
        if self.kind == "multiple_choice":
            return sum(len(d.choices) for d in self.docs)
        return len(self.docs)


LMEVAL_PREFIX = "bench_"


# ------------------------------------------------------------------ building from our tasks


def _gold(target_scores: Sequence[float]) -> int:
    best = max(target_scores)
    return next(i for i, s in enumerate(target_scores) if s == best)


def _prompts(task_name: str, limit: int | None, shots: int = 0):
    from harness.tasks import load_tasks, render

    tasks = load_tasks(task_name)
    return [(task, render(task, shots, limit)) for task in tasks]


def multiple_choice(name: str, task_name: str, limit: int | None = None,
                    n_choices: int | None = None, shots: int = 0) -> Workload:
    """Every choice of every example; with `n_choices`, the gold choice and the first
    `n_choices - 1` others (file order kept), for the scaling table."""
    docs = []
    for task, prompts in _prompts(task_name, limit, shots):
        for prompt in prompts:
            choices, gold = prompt.choices, _gold(prompt.target_scores)
            if n_choices is not None:
                others = [i for i in range(len(choices)) if i != gold][:max(0, n_choices - 1)]
                keep = sorted([gold, *others])
                choices, gold = tuple(choices[i] for i in keep), keep.index(gold)
            docs.append(Doc(task=task.name, idx=prompt.idx, prompt=prompt.text,
                            choices=tuple(choices), gold=gold, target=prompt.targets[0]))
    return Workload(name=name, kind="multiple_choice", docs=tuple(docs))


def target_loglik(name: str, task_names: Sequence[str], limit: int | None,
                  shots: int = 0) -> Workload:
    """The log-prob of the (first) target after each prompt, one request per example."""
    docs = [Doc(task=task.name, idx=p.idx, prompt=p.text, target=p.targets[0])
            for spec in task_names for task, prompts in _prompts(spec, limit, shots)
            for p in prompts]
    return Workload(name=name, kind="target_loglik", docs=tuple(docs))


def generate(name: str, task_names: Sequence[str], limit: int | None,
             max_new_tokens: int | None = None, shots: int = 0) -> Workload:
    """Greedy generations; the budget defaults to the harness's own for the task."""
    from harness.runner import GenerationSettings

    docs, budgets = [], set()
    for spec in task_names:
        for task, prompts in _prompts(spec, limit, shots):
            budgets.add(GenerationSettings(max_new_tokens=max_new_tokens).budget(task))
            docs.extend(Doc(task=task.name, idx=p.idx, prompt=p.text, target=p.targets[0],
                            output_regex=task.output_regex, stop_string=task.stop_string)
                        for p in prompts)
    if len(budgets) != 1:
        raise ValueError(f"{name}: tasks with different generation budgets {sorted(budgets)}; "
                         "pass max_new_tokens")
    return Workload(name=name, kind="generate", docs=tuple(docs), max_new_tokens=budgets.pop())


def subset(workload: Workload, name: str, n_docs: int) -> Workload:
    return replace(workload, name=name, docs=workload.docs[:n_docs])


# ------------------------------------------------------------------ files


def doc_row(doc: Doc) -> dict:
    row = asdict(doc)
    row["choices"] = list(doc.choices)
    return row


def write_jsonl(workload: Workload, path: Path) -> Path:
    """One row per doc; rows of a multiple-choice workload keep their choices as a list."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for doc in workload.docs:
            row = doc_row(doc)
            if workload.kind != "multiple_choice":
                del row["choices"], row["gold"]  # an all-empty list column has no type
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def read_workload(path: Path) -> Workload:
    """Inverse of `write_workload`."""
    data = json.loads(path.read_text(encoding="utf-8"))
    docs = tuple(Doc(**{**d, "choices": tuple(d.get("choices", ()))}) for d in data["docs"])
    return Workload(name=data["name"], kind=data["kind"], docs=docs,
                    max_new_tokens=data["max_new_tokens"])


def write_workload(workload: Workload, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"name": workload.name, "kind": workload.kind, "max_new_tokens": workload.max_new_tokens,
            "docs": [doc_row(d) for d in workload.docs]}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def _metric(name: str) -> dict:
    return {"metric": name, "aggregation": "mean", "higher_is_better": True}


def lmeval_config(workload: Workload, data_file: Path) -> dict:
    """The lm-eval task config (a dict; `lmeval_yaml` writes it) reading `data_file`."""
    config: dict = {
        "task": LMEVAL_PREFIX + workload.name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(Path(data_file).resolve())}},
        "test_split": "test",
        "num_fewshot": 0,
        "doc_to_text": "prompt",  # column names, never templates (module docstring)
        "target_delimiter": "",
        "fewshot_delimiter": "",
        "description": "",
        "metadata": {"version": 1.0},
    }
    if workload.kind == "multiple_choice":
        config.update(output_type="multiple_choice", doc_to_choice="choices",
                      doc_to_target="gold", metric_list=[_metric("acc")])
    elif workload.kind == "target_loglik":
        config.update(output_type="loglikelihood", doc_to_target="target",
                      metric_list=[_metric("acc")])
    elif workload.kind == "generate":
        # until: [] -> lm-eval stops on EOS only (it always adds the EOS string), as our
        # engine does without a stop rule: both generate max_gen_toks tokens unless EOS.
        config.update(output_type="generate_until", doc_to_target="target",
                      generation_kwargs={"until": [], "max_gen_toks": workload.max_new_tokens,
                                         "do_sample": False},
                      metric_list=[_metric("exact_match")])
    else:
        raise ValueError(f"unknown workload kind {workload.kind!r}; kinds: {KINDS}")
    return config


def lmeval_yaml(config: dict) -> str:
    import yaml

    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=1000)


def write_lmeval_task(workload: Workload, folder: Path) -> str:
    """Write `<name>.jsonl` and `<name>.yaml` into `folder`; return the lm-eval task name."""
    data_file = write_jsonl(workload, folder / f"{workload.name}.jsonl")
    config = lmeval_config(workload, data_file)
    (folder / f"{workload.name}.yaml").write_text(lmeval_yaml(config), encoding="utf-8")
    return config["task"]
