"""Train a family: every size on the same rows in the same order, Pythia-style checkpoints.

Each checkpoint is saved with `save_pretrained` (fp16 safetensors) next to the character
tokenizer, as `<out>/<size>/step<N>/`, so the `hf` backend loads `pico-<size>` with
`--revision stepN` the way it loads a hub model. Training resumes from the last checkpoint's
full state (`<out>/.state/`, not committed). `<out>/family.json` records the recipe, sizes,
parameter counts, loss curves, timings, hardware and the command.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.errors import HarnessError
from harness.family.corpus import CHARS, SPECIAL_TOKENS, bigbench_arithmetic_questions, rows
from harness.family.recipes import Recipe, Size
from harness.io import atomic_write_text
from harness.repo import git_label, git_state
from harness.tasks import default_tasks_dir

log = logging.getLogger(__name__)
STATE_DIR = ".state"


def build_tokenizer():
    """Character-level `PreTrainedTokenizerFast`: one token per character of CHARS."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for char in CHARS:
        vocab[char] = len(vocab)
    core = Tokenizer(models.WordLevel(vocab, unk_token="<|unk|>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<|pad|>",
                                   unk_token="<|unk|>", eos_token="<|endoftext|>",
                                   model_max_length=2048)


def char_ids() -> np.ndarray:
    """Lookup table from a character's code point (< 128) to its token id."""
    table = np.full(128, SPECIAL_TOKENS.index("<|unk|>"), dtype=np.int64)
    for i, char in enumerate(CHARS):
        table[ord(char)] = len(SPECIAL_TOKENS) + i
    return table


def build_config(size: Size, recipe: Recipe):
    from transformers import GPTNeoXConfig

    eos = SPECIAL_TOKENS.index("<|endoftext|>")
    return GPTNeoXConfig(
        vocab_size=len(SPECIAL_TOKENS) + len(CHARS), hidden_size=size.d_model,
        num_hidden_layers=size.layers, num_attention_heads=size.heads,
        intermediate_size=4 * size.d_model, hidden_act="gelu", rotary_pct=1.0,
        max_position_embeddings=recipe.max_positions, use_parallel_residual=True,
        tie_word_embeddings=False, bos_token_id=eos, eos_token_id=eos,
        pad_token_id=SPECIAL_TOKENS.index("<|pad|>"),
    )


def encode_rows(texts: list[str]) -> np.ndarray:
    table = char_ids()
    codes = np.frombuffer("".join(texts).encode("ascii"), dtype=np.uint8)
    return table[codes].reshape(len(texts), -1)


def training_rows(recipe: Recipe, cache_dir: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train, eval) token rows of seq_len + 1; cached as .npy under `cache_dir`."""
    key = hashlib.sha256(json.dumps(
        [recipe.style, recipe.steps, recipe.batch_size, recipe.seq_len, recipe.data_seed,
         recipe.eval_rows, recipe.mix.to_json(), CHARS]).encode()).hexdigest()[:16]
    if cache_dir is not None:
        cached = cache_dir / f"rows-{key}.npz"
        if cached.exists():
            with np.load(cached) as data:
                return data["train"], data["eval"]
    excluded = bigbench_arithmetic_questions(default_tasks_dir())
    width = recipe.seq_len + 1
    train = encode_rows(rows(recipe.data_seed, recipe.steps * recipe.batch_size, width,
                             recipe.style, excluded, recipe.mix))
    held_out = encode_rows(rows(recipe.data_seed + 1, recipe.eval_rows, width, recipe.style,
                                excluded, recipe.mix))
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_dir / f"rows-{key}.tmp.npz"
        np.savez(tmp, train=train, eval=held_out)
        os.replace(tmp, cached)
    return train, held_out


def learning_rate(recipe: Recipe, step: int) -> float:
    """Linear warm-up, then cosine decay to final_lr_frac of the peak at the last step."""
    warmup = max(1, round(recipe.warmup_frac * recipe.steps))
    if step < warmup:
        return recipe.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, recipe.steps - warmup)
    floor = recipe.final_lr_frac
    return recipe.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def _save_checkpoint(model, tokenizer, folder: Path) -> None:
    import copy

    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tmp = folder.with_name(folder.name + ".tmp")
    half = copy.deepcopy(model).to(torch.float16)
    half.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    if folder.exists():
        import shutil
        shutil.rmtree(folder)
    os.replace(tmp, folder)


class _Session:
    """One size's training state: model, optimiser, held-out rows and the record being written."""

    def __init__(self, recipe: Recipe, size: Size, out: Path):
        import torch
        from transformers import GPTNeoXForCausalLM

        self.recipe, self.size, self.out = recipe, size, out
        self.model = GPTNeoXForCausalLM(build_config(size, recipe)).float()
        self.tokenizer = build_tokenizer()
        decay = [p for n, p in self.model.named_parameters() if p.ndim >= 2]
        no_decay = [p for n, p in self.model.named_parameters() if p.ndim < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": recipe.weight_decay},
             {"params": no_decay, "weight_decay": 0.0}],
            lr=recipe.lr, betas=recipe.betas)
        self.train_rows, held_out = training_rows(recipe, out / STATE_DIR)
        self.state_path = out / STATE_DIR / f"{size.name}.pt"
        self.record = {"loss_curve": [], "eval_loss_curve": [], "train_time_s": 0.0, "start_step": 0}
        self.step = 0
        self.held_x = torch.from_numpy(held_out[:, :-1])
        self.held_y = torch.from_numpy(held_out[:, 1:])

    def resume(self) -> bool:
        """Continue from the saved state, where there is one."""
        import torch

        if not self.state_path.exists():
            return False
        state = torch.load(self.state_path, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.record = state["step"], state["record"]
        log.info("%s: resuming at step %d", self.size.name, self.step)
        return True

    def held_out_loss(self) -> float:
        import torch

        self.model.eval()
        with torch.no_grad():
            logits = self.model(input_ids=self.held_x).logits
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), self.held_y.flatten())
        self.model.train()
        return float(loss)

    def checkpoint(self, at: int) -> None:
        """Held-out loss now; the weights at a saved step; the full state to resume from."""
        import torch

        self.record["eval_loss_curve"].append([at, self.held_out_loss()])
        if at in self.recipe.save_steps:
            _save_checkpoint(self.model, self.tokenizer, self.out / self.size.name / f"step{at}")
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        torch.save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "step": at, "record": self.record}, tmp)
        os.replace(tmp, self.state_path)

    def train_step(self) -> float:
        """One optimiser step on the next batch of rows; its loss."""
        import torch

        recipe, step = self.recipe, self.step
        batch = torch.from_numpy(self.train_rows[step * recipe.batch_size:
                                                 (step + 1) * recipe.batch_size])
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(recipe, step)
        logits = self.model(input_ids=batch[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), recipe.grad_clip)
        self.optimizer.step()
        self.step += 1
        return loss.item()

    def size_record(self, threads: int) -> dict:
        """This size's entry in family.json."""
        # the backend's count (tied embeddings once), so family.json and every run agree
        from harness.models.hf_load import parameter_counts

        total, non_embedding = parameter_counts(self.model)
        size, record = self.size, self.record
        return {
            "name": size.name, "layers": size.layers, "d_model": size.d_model, "heads": size.heads,
            "init_seed": self.recipe.init_seed_of(size),
            "total_params": total, "non_embedding_params": non_embedding,
            "train_time_s": round(record["train_time_s"], 1), "threads": threads,
            "checkpoints": [f"step{s}" for s in self.recipe.save_steps],
            "final_eval_loss": record["eval_loss_curve"][-1][1],
            "loss_curve": [[s, round(v, 5)] for s, v in record["loss_curve"]],
            "eval_loss_curve": [[s, round(v, 5)] for s, v in record["eval_loss_curve"]],
        }


def train_size(recipe: Recipe, size: Size, out: Path, threads: int,
               progress: Callable[[int], None] | None = None, stop_at: int | None = None,
               resumed: Callable[[int], None] | None = None) -> dict:
    """Train one size (resuming from its saved state) and return its family.json record.

    `progress(n)` is called after every step, `resumed(step)` once when training resumes from a
    saved state. `stop_at` ends the session after that step's checkpoint (a later call resumes
    there).
    """
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(recipe.init_seed_of(size))
    session = _Session(recipe, size, out)
    if session.resume() and resumed:
        resumed(session.step)
    if session.step == 0 and not session.record["eval_loss_curve"]:
        session.checkpoint(0)
    session.model.train()
    # held-out loss at every saved step and at 20 evenly spaced steps
    marks = set(recipe.save_steps) | set(range(0, recipe.steps + 1, max(1, recipe.steps // 20)))
    running, count = 0.0, 0
    started = time.perf_counter()
    last = recipe.steps if stop_at is None else min(stop_at, recipe.steps)
    while session.step < last:
        running += session.train_step()
        count += 1
        step = session.step
        if step % 20 == 0 or step == recipe.steps:
            session.record["loss_curve"].append([step, running / count])
            running, count = 0.0, 0
        if progress:
            progress(1)
        if step in marks:
            session.record["train_time_s"] += time.perf_counter() - started
            started = time.perf_counter()
            session.checkpoint(step)
    return session.size_record(threads)


def _git_commit() -> str:
    """The trainer's code state: only harness/ matters to the weights."""
    return git_label(git_state(("harness",))) or "unknown"


def hardware() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA)"
    return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores"


def _worker(args: tuple) -> dict:
    recipe, size, out, threads, position, stop_at = args
    from tqdm import tqdm

    with tqdm(total=recipe.steps, desc=size.name, position=position, leave=True,
              dynamic_ncols=True) as bar:
        def resumed(step: int) -> None:  # the bar starts at the resumed step, its rate from there
            bar.initial = bar.n = step
            bar.refresh()

        return train_size(recipe, size, out, threads, progress=bar.update, stop_at=stop_at,
                          resumed=resumed)


def train_family(recipe: Recipe, out: Path, jobs: int = 1, sizes: list[str] | None = None,
                 threads: int | None = None, stop_at: int | None = None) -> dict:
    """Train (or resume) every size of `recipe` under `out`; write and return family.json.

    With `stop_at`, every size stops after that step (resumable) and no family.json is written.
    """
    chosen = [recipe.size(name) for name in sizes] if sizes else list(recipe.sizes)
    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    out.mkdir(parents=True, exist_ok=True)
    training_rows(recipe, out / STATE_DIR)  # generate once, before workers start
    work = [(recipe, size, out, threads, i % jobs, stop_at)
            for i, size in enumerate(sorted(chosen, key=lambda s: -s.d_model * s.layers))]
    started = time.time()
    commit = _git_commit()  # the code that trains, recorded before training starts
    if jobs == 1:
        results = [_worker(item) for item in work]
    else:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            results = pool.map(_worker, work, chunksize=1)
    if stop_at is not None and stop_at < recipe.steps:
        return {}
    command = " ".join([Path(sys.executable).name, "-m", "harness.family", *sys.argv[1:]])
    calls = {"command": command, "harness_commit": commit, "hardware": hardware(),
             "wall_time_s": round(time.time() - started, 1), "jobs": jobs}
    manifest_path = out / "family.json"
    previous = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    by_name = {s["name"]: s for s in previous.get("sizes", [])}
    # a size trained by a later call (a seed variant) records that call; the family's own
    # command, commit and hardware stay those of the call that trained it first
    by_name.update({r["name"]: {**r, "trained_by": calls} if previous else r for r in results})
    ordered = [by_name[s.name] for s in recipe.sizes if s.name in by_name]
    manifest = {
        "family": recipe.family,
        "description": (f"GPT-NeoX models trained by scripts in this repository on synthetic "
                        f"arithmetic in BIG-bench's Q/A format ({recipe.style} answers), every "
                        "BIG-bench arithmetic problem excluded."),
        **{key: previous.get(key, value) for key, value in calls.items()},
        "recipe": recipe.to_json(),
        "tokenizer": {"kind": "character", "special_tokens": list(SPECIAL_TOKENS),
                      "chars": CHARS},
        "sizes": ordered,
        "weights": {f"{s['name']}/{c}": _weights_sha256(out / s["name"] / c)
                    for s in ordered for c in s["checkpoints"]},
    }
    if "harness_commit_note" in previous:
        manifest["harness_commit_note"] = previous["harness_commit_note"]
    atomic_write_text(manifest_path, json.dumps(manifest, indent=1) + "\n")
    return manifest


def _weights_sha256(folder: Path) -> str:
    path = folder / "model.safetensors"
    if not path.exists():
        raise HarnessError(f"{path} missing after training; rerun `make family` to resume")
    return hashlib.sha256(path.read_bytes()).hexdigest()
