"""The hf backend on tiny random GPT-NeoX models: batching invariance, boundaries, greedy."""

from __future__ import annotations

import random

import pytest
import torch

from harness.answers import StopRule, extract_answer
from harness.errors import HarnessError
from harness.models import load_model
from harness.models.base import GenRequest, LoglikRequest

PROMPT = "\nQ: What is the name of the element with an atomic number of 1?\nA: "
REQUESTS = [
    LoglikRequest(PROMPT, "hydrogen"),
    LoglikRequest(PROMPT, "helium"),
    LoglikRequest(PROMPT, "finding nemo"),
    LoglikRequest("\nQ: What is 12 plus 7?\n  choice: 19\n  choice: banana\nA: ", "19"),
    LoglikRequest("\nQ: What is 12 plus 7?\n  choice: 19\n  choice: banana\nA: ", "banana"),
    LoglikRequest("house", " banana house"),
    LoglikRequest("A", "B"),
    LoglikRequest("\nQ: What movie does this emoji describe?\nA: ", "the element with atomic"),
]


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(str(tiny_model_dir), batch_size="auto")


def _reference_scores(backend, request):
    """Score by one plain forward pass over context + continuation ids (no cache, no padding)."""
    ctx, cont = backend.encode_pair(request.context, request.continuation)
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logits = backend.model(input_ids=ids).logits[0].float()
    logprobs = torch.log_softmax(logits, -1)
    positions = range(len(ctx) - 1, len(ctx) + len(cont) - 1)
    values = [float(logprobs[p, t]) for p, t in zip(positions, cont)]
    greedy = [bool(logits[p].argmax() == t) for p, t in zip(positions, cont)]
    return values, greedy


def test_cached_scoring_equals_a_plain_forward_pass(model):
    for request, scores in zip(REQUESTS, model.loglikelihood(REQUESTS)):
        values, greedy = _reference_scores(model, request)
        assert scores.logprobs == pytest.approx(values, abs=1e-4)
        assert list(scores.is_greedy) == greedy
        assert len(scores.tokens) == len(values) > 0


SHARED = [LoglikRequest(PROMPT, c) for c in ("hydrogen", "helium", "banana house finding nemo",
                                             "19", "the element", "What is 12 plus 7?", "A", "")]
SHARED += [LoglikRequest("house", c) for c in (" banana", " banana house", " What movie", " 1")]


@pytest.mark.parametrize("budget", [None, 40, 1 << 14])
def test_packed_continuations_equal_plain_forward_passes(tiny_model_dir, budget):
    """Several continuations of one context share a packed row (a block-diagonal mask after the
    context); a small budget splits them over several rows. Every token's log-prob must equal a
    plain forward pass over context + continuation."""
    backend = load_model(str(tiny_model_dir), batch_size="2" if budget is None else "auto")
    if budget is not None:
        backend.token_budget = budget
    for request, scores in zip(SHARED, backend.loglikelihood(SHARED)):
        values, greedy = _reference_scores(backend, request)
        assert scores.logprobs == pytest.approx(values, abs=1e-4)
        assert list(scores.is_greedy) == greedy


def test_output_layer_apart_equals_the_full_model_call(tiny_model_dir):
    """The packed pass runs the output layer on scored positions only when the model's logits
    are exactly head(base(...)); forcing the full model call gives the same numbers."""
    split = load_model(str(tiny_model_dir))
    assert split._head_is_separable()
    full = load_model(str(tiny_model_dir))
    full._split_head = False
    for a, b in zip(split.loglikelihood(SHARED), full.loglikelihood(SHARED)):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-5) and a.is_greedy == b.is_greedy


@pytest.mark.parametrize("batch_size", ["1", "3", "auto"])
def test_scores_do_not_depend_on_batch_size_or_order(tiny_model_dir, model, batch_size):
    reference = model.loglikelihood(REQUESTS)
    other = load_model(str(tiny_model_dir), batch_size=batch_size)
    order = list(range(len(REQUESTS)))
    random.Random(batch_size).shuffle(order)
    shuffled = other.loglikelihood([REQUESTS[i] for i in order])
    for position, i in enumerate(order):
        assert shuffled[position].logprobs == pytest.approx(reference[i].logprobs, abs=1e-4)
        assert shuffled[position].is_greedy == reference[i].is_greedy
    single = [other.loglikelihood([r])[0] for r in REQUESTS]
    for one, batched in zip(single, reference):
        assert one.logprobs == pytest.approx(batched.logprobs, abs=1e-4)


def test_natural_boundary_moves_the_trailing_space_into_the_continuation(model):
    whole = model.tokenizer(PROMPT + "hydrogen")["input_ids"]
    ctx, cont = model.encode_pair(PROMPT, "hydrogen")  # non-space continuation
    assert ctx + cont == whole  # joint tokens are the whole string's tokens
    assert model.tokenizer.convert_ids_to_tokens(cont)[0].startswith("Ġ")
    ctx2, cont2 = model.encode_pair(PROMPT.rstrip(), " hydrogen")  # space-prefixed continuation
    assert (ctx2, cont2) == (ctx, cont)


def test_bigbench_boundary_tokenises_separately(tiny_model_dir):
    backend = load_model(str(tiny_model_dir), boundary="bigbench")
    ctx, cont = backend.encode_pair(PROMPT, "hydrogen")
    assert ctx == backend.tokenizer(PROMPT)["input_ids"]  # ends with a lone space token
    assert backend.tokenizer.convert_ids_to_tokens(ctx)[-1] == "Ġ"
    assert cont == backend.tokenizer("hydrogen", add_special_tokens=False)["input_ids"]
    assert backend.info.boundary == "bigbench"


def _greedy_loop(backend, context: str, n: int) -> list[int]:
    """Step-by-step argmax over full recomputation: the definition of greedy decoding."""
    ids = backend.tokenizer(context)["input_ids"]
    out = []
    with torch.no_grad():
        for _ in range(n):
            logits = backend.model(input_ids=torch.tensor([ids + out])).logits[0, -1].float()
            token = int(logits.argmax())
            if token in backend.eos_ids:
                break
            out.append(token)
    return out


def test_cpu_budgets_score_in_short_batches_and_generate_in_long_ones(tiny_model_dir):
    from harness.models import hf

    auto = load_model(str(tiny_model_dir), batch_size="auto", device="cpu")
    assert (auto.token_budget, auto.generation_token_budget) == (
        hf.CPU_TOKEN_BUDGET, hf.CPU_GENERATION_TOKEN_BUDGET)
    assert hf.CPU_TOKEN_BUDGET < hf.CPU_GENERATION_TOKEN_BUDGET
    rows = load_model(str(tiny_model_dir), batch_size="3", device="cpu")
    assert (rows.max_rows, rows.token_budget, rows.generation_token_budget) == (3, None, None)


@pytest.mark.parametrize("batch_size", ["1", "2", "auto", "auto-40"])
def test_batched_greedy_generation_equals_step_by_step_argmax(tiny_model_dir, batch_size):
    backend = load_model(str(tiny_model_dir), batch_size=batch_size.split("-")[0])
    if batch_size == "auto-40":  # a budget that splits the requests over several batches
        backend.generation_token_budget = 40
    contexts = [r.context for r in REQUESTS[:5]] + ["A", "\nQ: What is 100 minus 1?\nA: "]
    generations = backend.generate([GenRequest(c, 12) for c in contexts])
    for context, generation in zip(contexts, generations):
        expected = _greedy_loop(backend, context, 12)
        assert generation.n_tokens == len(expected)
        prefix = backend.tokenizer(context)["input_ids"][-4:]
        head = backend.tokenizer.decode(prefix)
        assert generation.text == backend.tokenizer.decode(prefix + expected)[len(head):]


def test_early_stopping_never_changes_the_scored_answer(model):
    regexes = [r"[-+]?\d+", r"[^\.\?\!\;\n]+", r"(?i)hydrogen|helium|banana|house"]
    contexts = [r.context for r in REQUESTS] + [f"\nQ: {w}\nA: " for w in ("x", "12", "house")]
    for regex in regexes:
        full = model.generate([GenRequest(c, 40) for c in contexts])
        early = model.generate([GenRequest(c, 40, stop=StopRule(output_regex=regex)) for c in contexts])
        for f, e in zip(full, early):
            assert e.n_tokens <= f.n_tokens
            assert f.text.startswith(e.text)
            assert extract_answer(e.text, regex, None) == extract_answer(f.text, regex, None)


def test_cuda_oom_backs_off_without_losing_or_repeating_requests(tiny_model_dir, monkeypatch):
    backend = load_model(str(tiny_model_dir), batch_size="4")
    reference = backend.loglikelihood(REQUESTS)
    real_forward = backend.model.forward
    calls = []

    def flaky_forward(*args, **kwargs):
        rows = (kwargs.get("input_ids") if "input_ids" in kwargs else args[0]).shape[0]
        calls.append(rows)
        if rows > 1:
            raise torch.cuda.OutOfMemoryError("simulated")
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(backend.model, "forward", flaky_forward)
    again = backend.loglikelihood(REQUESTS)
    assert backend.max_rows == 1 and max(calls) > 1  # tried big, then backed off to 1 row
    for a, r in zip(again, reference):
        assert a.logprobs == pytest.approx(r.logprobs, abs=1e-5)
    generations = backend.generate([GenRequest(r.context, 5) for r in REQUESTS[:3]])
    assert len(generations) == 3 and all(g is not None for g in generations)


def test_parameter_counts_from_the_loaded_model(tmp_path):
    from tests.conftest import build_tiny_model

    untied = load_model(str(build_tiny_model(tmp_path / "untied", tie=False)))
    tied = load_model(str(build_tiny_model(tmp_path / "tied", tie=True)))
    embedding = untied.model.get_input_embeddings().weight.numel()
    assert untied.info.total_params - untied.info.non_embedding_params == 2 * embedding
    assert tied.info.total_params - tied.info.non_embedding_params == embedding
    assert tied.info.non_embedding_params == untied.info.non_embedding_params
    assert untied.info.dtype == "float32" and untied.info.device == "cpu"


def test_pickled_weights_are_refused_unless_allowed(tmp_path, tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path / "pickled"
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)
    for path in folder.glob("*.safetensors"):
        path.unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")  # a pickled checkpoint
    with pytest.raises(HarnessError, match="pickled weights"):
        load_model(str(folder))
    assert load_model(str(folder), allow_pickle=True).info.total_params > 0


def test_cuda_requested_without_a_gpu_is_one_clear_error(tiny_model_dir):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(HarnessError, match="no CUDA GPU is visible"):
        load_model(str(tiny_model_dir), device="cuda")


def test_loading_a_model_leaves_the_allocator_alone(tiny_model_dir, monkeypatch):
    from harness import allocator

    def refuse() -> bool:
        raise AssertionError("a model constructor tuned malloc")

    monkeypatch.setattr(allocator, "keep_freed_memory", refuse)
    assert load_model(str(tiny_model_dir), device="cpu").info.total_params > 0


def test_malloc_tuning_is_the_command_lines_explicit_choice(monkeypatch):
    import argparse
    import os
    import platform
    import subprocess
    import sys

    from harness import allocator, cli

    calls = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: calls.append(1) or True)
    assert cli._tune_allocator(argparse.Namespace(malloc_tuning=False, device="cpu")) is False
    assert cli._tune_allocator(argparse.Namespace(command="tasks")) is False
    assert calls == []
    assert cli._tune_allocator(argparse.Namespace(malloc_tuning=True, device="cpu")) is True
    assert cli._tune_allocator(argparse.Namespace(malloc_tuning=True, device="cuda")) is False
    assert calls == [1]
    eval_args = ["eval", "--model", "m"]
    assert cli.build_parser().parse_args(eval_args).malloc_tuning is allocator.wanted(os.environ)
    assert cli.build_parser().parse_args([*eval_args, "--no-malloc-tuning"]).malloc_tuning is False
    assert allocator.wanted({}) and not allocator.wanted({"HARNESS_MALLOC_TUNING": "0"})
    # the real setting, in a process of its own (it is process-wide)
    code = "from harness.allocator import keep_freed_memory as k; print(k(), k())"
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    if sys.platform == "linux" and platform.libc_ver()[0] == "glibc":
        assert on.stdout.split() == ["True", "True"]


def test_peak_gpu_memory_is_reported_to_the_manifest(tiny_model_dir):
    """The runner records backend.peak_memory_mb() as the session's peak_gpu_mb: None on CPU,
    megabytes on CUDA (the GPU side runs in scripts/gpu_check.sh)."""
    backend = load_model(str(tiny_model_dir))
    if backend.device == "cpu":
        assert backend.peak_memory_mb() is None
    else:
        assert backend.peak_memory_mb() > 0
