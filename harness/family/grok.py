"""The grok family: a 1-layer GPT-NeoX trained on the train subtask of grok/modular_addition.

The known grokking recipe (Power et al. 2022; Nanda et al. 2023): full batch, AdamW lr 1e-3,
betas (0.9, 0.98), weight decay 1.0 on every parameter, a short linear warm-up, then a constant
rate. The rows are the task's 0-shot prompts as the harness renders them, followed by the
target and end-of-text; the loss reads only the answer: the space after "A:", the number and
end-of-text (the space because the harness's default boundary scores " 46" after "...A:";
end-of-text so that greedy generation stops after the number).

Every `every` steps a candidate fp16 checkpoint goes to `<out>/.state/candidates/`; at the end
the committed checkpoints are chosen from the logged curve (`select_steps`: log-spaced, plus
dense steps where held-out accuracy rises) and `<out>/family.json` is written.

Usage:
    python -m harness.family.grok task                      # write tasks/grok/modular_addition
    nice -n 10 python -m harness.family.grok train --steps 12000 --threads 1
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.family.grok_model import (
    EOS,
    GrokSize,
    build_config,
    build_tokenizer,
    make_template,
)
from harness.family.grok_task import TASK_DIR, TASK_NAME, TableSplit, read_split, write_task
from harness.io import atomic_write_json
from harness.repo import REPO

log = logging.getLogger(__name__)
FAMILY_DIR = REPO / "families" / "grok"
FORMAT_ROWS = 256


@dataclass(frozen=True)
class GrokRecipe:
    steps: int = 12000
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 1.0
    warmup_steps: int = 10
    init_seed: int = 0
    every: int = 100  # steps between logged evaluations and candidate checkpoints
    max_checkpoints: int = 24  # committed ones (~0.47 MB each, under the 15 MB budget)


def prompt_rows(split: TableSplit, pairs, tokenizer) -> list[list[int]]:
    """Token ids of `render`'s 0-shot prompt + target + end-of-text for each pair."""
    from harness.tasks import DEFAULT_INPUT_PREFIX, DEFAULT_OUTPUT_PREFIX

    eos = tokenizer.convert_tokens_to_ids(EOS)
    rows = []
    for a, b in pairs:
        text = (DEFAULT_INPUT_PREFIX + split.question(a, b) + DEFAULT_OUTPUT_PREFIX
                + str(split.answer(a, b)))
        rows.append(tokenizer(text)["input_ids"] + [eos])
    return rows


# Positions (from the row's end) whose next-token logits the loss reads: ":" -> " ",
# " " -> the number, the number -> end-of-text.
SPACE_QUERY, NUMBER_QUERY, EOS_QUERY = -4, -3, -2


class Batch:
    """Rows as the tensors `answer_logits` needs, with the targets at `queries` (from the end)."""

    def __init__(self, rows: list[list[int]], queries=(SPACE_QUERY, NUMBER_QUERY, EOS_QUERY)):
        import torch

        length = len(rows[0])
        self.query_positions = tuple(length + q for q in queries)
        template = make_template(rows, self.query_positions)
        self.units = torch.tensor(template.units)
        self.unit_of = torch.tensor(template.unit_of)
        ids = torch.tensor(rows)
        self.targets = ids[:, [p + 1 for p in self.query_positions]]
        self.n_rows = len(rows)

    def logits(self, model):
        from harness.family.grok_model import answer_logits

        return answer_logits(model, self.units, self.unit_of, self.query_positions)

    def loss(self, model):
        import torch

        return torch.nn.functional.cross_entropy(self.logits(model).flatten(0, 1),
                                                 self.targets.flatten())


def measure(model, batch: Batch) -> dict[str, float]:
    """Loss and accuracy of the number, and the target log-prob and p_tok the harness reports
    (natural boundary: the continuation " 46" is the space token, then the number)."""
    import torch

    with torch.no_grad():
        logp = batch.logits(model).log_softmax(-1)
    picked = logp.gather(-1, batch.targets.unsqueeze(-1)).squeeze(-1)  # (R, 3)
    number_right = logp[:, 1].argmax(-1) == batch.targets[:, 1]
    return {"accuracy": float(number_right.float().mean()),
            "answer_loss": float(-picked[:, 1].mean()),
            # " " then the number: the natural boundary's continuation " 46"
            "target_logprob": float(picked[:, :2].sum(-1).mean()),
            # the harness's p_tok: exp(per-token target log-prob) per example, then the mean
            "p_tok": float(picked[:, :2].mean(-1).exp().mean())}


def learning_rate(recipe: GrokRecipe, step: int) -> float:
    return recipe.lr * min(1.0, (step + 1) / recipe.warmup_steps)


def _save_fp16(model, tokenizer, folder: Path) -> None:
    import copy

    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tmp = folder.with_name(folder.name + ".tmp")
    copy.deepcopy(model).to(torch.float16).save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


def train(recipe: GrokRecipe, split: TableSplit, size: GrokSize, out: Path,
          threads: int = 1) -> dict:
    """Train, saving a candidate checkpoint and a curve point every `recipe.every` steps."""
    import torch
    from transformers import GPTNeoXForCausalLM

    torch.set_num_threads(threads)
    torch.manual_seed(recipe.init_seed)
    tokenizer = build_tokenizer(split.modulus)
    model = GPTNeoXForCausalLM(build_config(size, split.modulus)).float()
    train_pairs, heldout_pairs = split.pairs()
    train_rows = prompt_rows(split, train_pairs, tokenizer)
    train_batch = Batch(train_rows)
    # The number is scored on every training row; the two format tokens (the space before it,
    # end-of-text after it) are the same in every row, so a fixed subset teaches them at a
    # third of the cost of the full batch.
    number_batch = Batch(train_rows, queries=(NUMBER_QUERY,))
    format_batch = Batch(train_rows[:FORMAT_ROWS], queries=(SPACE_QUERY, EOS_QUERY))
    heldout_batch = Batch(prompt_rows(split, heldout_pairs, tokenizer))
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, betas=recipe.betas,
                                  weight_decay=recipe.weight_decay)
    candidates = out / ".state" / "candidates"
    curve: list[dict] = []
    train_s = 0.0

    def record(step: int) -> None:
        model.eval()
        point = {"step": step, **{f"train_{k}": round(v, 5)
                                  for k, v in measure(model, train_batch).items()},
                 **{f"heldout_{k}": round(v, 5)
                    for k, v in measure(model, heldout_batch).items()}}
        model.train()
        curve.append(point)
        _save_fp16(model, tokenizer, candidates / f"step{step}")
        # kept beside the candidates, so `finish` can build the family from a stopped run
        atomic_write_json(out / ".state" / "curve.json",
                          {"curve": curve, "train_time_s": round(train_s, 1)})
        log.info("step %d: train acc %.3f, held-out acc %.3f, held-out loss %.3f (%.0f s)",
                 step, point["train_accuracy"], point["heldout_accuracy"],
                 point["heldout_answer_loss"], train_s)

    record(0)
    early = {2 ** i for i in range(int(math.log2(recipe.every)) + 1)}
    for step in range(recipe.steps):
        started = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(recipe, step)
        loss = number_batch.loss(model) + format_batch.loss(model)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        train_s += time.perf_counter() - started
        done = step + 1
        if done % recipe.every == 0 or done in early or done == recipe.steps:
            record(done)
    total, non_embedding = _parameter_counts(model)
    return {"curve": curve, "train_time_s": round(train_s, 1), "total_params": total,
            "non_embedding_params": non_embedding, "train_rows": train_batch.n_rows,
            "heldout_rows": heldout_batch.n_rows, "seq_len": int(train_batch.unit_of.shape[1])}


def _parameter_counts(model) -> tuple[int, int]:
    # the same convention as harness.family.train: input embedding and output head are
    # the embedding parameters
    from harness.family.train import parameter_counts

    return parameter_counts(model)


def rise_window(curve: list[dict], key: str = "heldout_accuracy") -> tuple[int, int] | None:
    """(first step at 10%, first step at 90%) of the way from the curve's floor after its
    first point to its maximum; None when it never rises by 0.2."""
    values = [p[key] for p in curve[1:]]
    if not values:
        return None
    floor, top = min(values), max(values)
    if top - floor < 0.2:
        return None
    low = floor + 0.1 * (top - floor)
    high = floor + 0.9 * (top - floor)
    floor_at = values.index(floor)
    later = curve[1 + floor_at:]
    start = next(p["step"] for p in later if p[key] >= low)
    end = next(p["step"] for p in later if p[key] >= high)
    return start, end


def select_steps(curve: list[dict], max_checkpoints: int, every: int) -> list[int]:
    """The committed steps: step0 and powers of two (Pythia style), the last step, and the rest
    of the budget spread evenly over the held-out rise (or, without one, after memorisation)."""
    logged = [p["step"] for p in curve]
    last = logged[-1]
    def power_of_two(n: int) -> bool:
        return n > 0 and n & (n - 1) == 0

    chosen = {0, last} | {s for s in logged if power_of_two(s)
                          or (s % every == 0 and power_of_two(s // every))}
    window = rise_window(curve)
    if window is None:
        memorised = next((p["step"] for p in curve if p["train_accuracy"] >= 0.99), last)
        window = (memorised, last)
    start, end = window
    # one logged point either side, so the last step before the rise and the first after are kept
    pool = [s for s in logged if start - every <= s <= end + every and s not in chosen]
    room = max(0, max_checkpoints - len(chosen))
    if len(pool) > room:
        pool = [pool[round(i * (len(pool) - 1) / max(1, room - 1))] for i in range(room)]
    return sorted(chosen | set(pool[:room]))


def curve_from_candidates(split: TableSplit, candidates: Path, threads: int = 1) -> dict:
    """Re-measure every candidate checkpoint (the fp16 weights that get committed, in fp32):
    the curve of a run that was stopped before it wrote family.json."""
    import torch
    from transformers import GPTNeoXForCausalLM

    torch.set_num_threads(threads)
    tokenizer = build_tokenizer(split.modulus)
    train_pairs, heldout_pairs = split.pairs()
    batches = {"train": Batch(prompt_rows(split, train_pairs, tokenizer)),
               "heldout": Batch(prompt_rows(split, heldout_pairs, tokenizer))}
    folders = sorted((p for p in candidates.glob("step*") if p.name[4:].isdigit()),
                     key=lambda p: int(p.name[4:]))
    if not folders:
        raise HarnessError(f"no step<N>/ candidates under {candidates}; train first")
    curve, model = [], None
    for folder in folders:
        model = GPTNeoXForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        point = {"step": int(folder.name[4:])}
        for part, batch in batches.items():
            point.update({f"{part}_{k}": round(v, 5) for k, v in measure(model, batch).items()})
        curve.append(point)
    total, non_embedding = _parameter_counts(model)
    return {"curve": curve, "total_params": total, "non_embedding_params": non_embedding,
            "train_rows": batches["train"].n_rows, "heldout_rows": batches["heldout"].n_rows,
            "seq_len": int(batches["train"].unit_of.shape[1])}


def size_name(total_params: int) -> str:
    return f"grok-{round(total_params / 1000)}k"


def write_family(recipe: GrokRecipe, split: TableSplit, size: GrokSize, out: Path,
                 trained: dict, context: dict) -> dict:
    """Copy the selected candidates to `<out>/<size>/step<N>/` and write family.json.

    `context` holds the run's command, commit, hardware, wall time and threads."""
    from harness.family.train import _weights_sha256

    name = size_name(trained["total_params"])
    steps = select_steps(trained["curve"], recipe.max_checkpoints, recipe.every)
    folder = out / name
    if folder.exists():
        shutil.rmtree(folder)
    for step in steps:
        shutil.copytree(out / ".state" / "candidates" / f"step{step}", folder / f"step{step}")
    checkpoints = [f"step{s}" for s in steps]
    curve = trained["curve"]
    manifest = {
        "family": "grok",
        "description": (f"1-layer GPT-NeoX trained by this repository on the train subtask of "
                        f"{TASK_NAME} ((a + b) mod {split.modulus}, "
                        f"{split.train_fraction:.0%} of the table) in BIG-bench's 0-shot Q/A "
                        "format, word-level tokenizer; the grokking control case."),
        **{k: context[k] for k in ("command", "harness_commit", "hardware", "wall_time_s")},
        "jobs": 1,
        # batch_size x seq_len = tokens per step (harness.models.registry.lineage: tokens seen)
        "recipe": {**asdict(recipe), "batch_size": trained["train_rows"],
                   "seq_len": trained["seq_len"], "split": asdict(split),
                   "size": asdict(size), "selection": "select_steps in harness/family/grok.py"},
        "tokenizer": {"kind": "word-level", "regex": _regex()},
        "sizes": [{
            "name": name, "layers": size.layers, "d_model": size.d_model, "heads": size.heads,
            "total_params": trained["total_params"],
            "non_embedding_params": trained["non_embedding_params"],
            "train_time_s": trained["train_time_s"], "threads": context["threads"],
            "checkpoints": checkpoints,
            "final_eval_loss": curve[-1]["heldout_answer_loss"],
            "loss_curve": [[p["step"], p["train_answer_loss"]] for p in curve],
            "eval_loss_curve": [[p["step"], p["heldout_answer_loss"]] for p in curve],
            "rise_window": rise_window(curve),
            "curve": curve,
        }],
        "weights": {f"{name}/{c}": _weights_sha256(folder / c) for c in checkpoints},
    }
    atomic_write_json(out / "family.json", manifest)
    return manifest


def _regex() -> str:
    from harness.family.grok_model import PRETOKEN_REGEX

    return PRETOKEN_REGEX


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.family.grok", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    task = sub.add_parser("task", help="write the BIG-bench task (train/heldout subtasks)")
    task.add_argument("--modulus", type=int, default=97)
    task.add_argument("--train-fraction", type=float, default=0.5)
    task.add_argument("--seed", type=int, default=0)
    task.add_argument("--out", type=Path, default=TASK_DIR)
    run = sub.add_parser("train", help="train the family on the task's train subtask")
    run.add_argument("--task-dir", type=Path, default=TASK_DIR)
    run.add_argument("--steps", type=int, default=GrokRecipe.steps)
    run.add_argument("--threads", type=int, default=1)
    run.add_argument("--out", type=Path, default=FAMILY_DIR)
    finish = sub.add_parser("finish", help="write the family from a stopped run's candidates")
    finish.add_argument("--task-dir", type=Path, default=TASK_DIR)
    finish.add_argument("--out", type=Path, default=FAMILY_DIR)
    finish.add_argument("--train-command", required=True, help="the train command that was run")
    finish.add_argument("--commit", required=True, help="the commit it was run at")
    finish.add_argument("--train-time-s", type=float, required=True)
    finish.add_argument("--wall-time-s", type=float, required=True)
    finish.add_argument("--note", default="", help="why the run was stopped where it was")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        if args.command == "task":
            split = TableSplit(args.modulus, args.train_fraction, args.seed)
            for path in write_task(split, args.out):
                print(f"wrote {path}")
            return 0
        if args.command == "finish":
            return _finish_command(args)
        return _train_command(args)
    except HarnessError as exc:
        print(f"harness.family.grok: error: {exc}", file=sys.stderr)
        return 2


def _train_command(args) -> int:
    from harness.family.train import _git_commit, hardware

    if not (args.task_dir / "task.json").is_file():
        raise HarnessError(f"{args.task_dir / 'task.json'} missing; write the task first: "
                           "python -m harness.family.grok task")
    split, recipe, size = read_split(args.task_dir), GrokRecipe(steps=args.steps), GrokSize("grok")
    started = time.time()
    context = {"command": " ".join(["python", "-m", "harness.family.grok", *sys.argv[1:]]),
               "harness_commit": _git_commit(), "hardware": hardware(), "threads": args.threads}
    trained = train(recipe, split, size, args.out, threads=args.threads)
    context["wall_time_s"] = round(time.time() - started, 1)
    manifest = write_family(recipe, split, size, args.out, trained, context)
    entry = manifest["sizes"][0]
    print(f"{entry['name']}: {len(entry['checkpoints'])} checkpoints, held-out rise "
          f"{entry['rise_window']}; wrote {args.out / 'family.json'}")
    return 0


def _finish_command(args) -> int:
    from harness.family.train import hardware

    split, size = read_split(args.task_dir), GrokSize("grok")
    measured = curve_from_candidates(split, args.out / ".state" / "candidates")
    last = measured["curve"][-1]["step"]
    recipe = GrokRecipe(steps=last)
    measured["train_time_s"] = args.train_time_s
    context = {"command": args.train_command, "harness_commit": args.commit,
               "hardware": hardware(), "wall_time_s": args.wall_time_s, "threads": 1}
    manifest = write_family(recipe, split, size, args.out, measured, context)
    if args.note:
        manifest["note"] = args.note
        atomic_write_json(args.out / "family.json", manifest)
    entry = manifest["sizes"][0]
    print(f"{entry['name']}: {len(entry['checkpoints'])} checkpoints to step {last}, held-out "
          f"rise {entry['rise_window']}; wrote {args.out / 'family.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
