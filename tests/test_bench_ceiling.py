"""bench_lmeval.ceiling: the model-FLOP count behind the benchmark's utilisation table.

The count is checked against torch's own FLOP counter on a tiny GPT-NeoX built in the test,
and the per-workload sums against hand computations.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from bench_lmeval import ceiling  # noqa: E402

DIMS = ceiling.ModelDims(stack_linear_params=1000, layers=2, attention_width=8, hidden=4,
                         vocab=10)


def test_prefix_flops_is_the_sum_over_positions():
    for start, stop in ((0, 1), (0, 7), (3, 9), (5, 5)):
        by_position = sum(DIMS.position_flops(t + 1) for t in range(start, stop))
        assert DIMS.prefix_flops(start, stop) == by_position
    # one position attending to itself: 2 * 1000 linear + 4 * 2 layers * 8 width * 1 key
    assert DIMS.position_flops(1) == 2064
    assert DIMS.head_flops == 80


def test_loglik_flops_encodes_each_distinct_context_once():
    # two continuations (2 and 1 tokens) after the same 3-token context, one after another
    pairs = [([1, 2, 3], [4, 5]), ([1, 2, 3], [6]), ([7], [8])]
    expected = (DIMS.prefix_flops(0, 3) + DIMS.prefix_flops(0, 1)  # the two contexts
                + DIMS.prefix_flops(3, 4) + 2 * 80  # [4, 5]: one new position, two heads
                + 0 + 80  # [6]: predicted from the context's last position
                + 0 + 80)  # [8]
    assert ceiling.loglik_flops(DIMS, pairs) == expected


def test_generation_flops_counts_the_prompt_once_and_one_position_per_new_token():
    # 4 prompt tokens, 3 new tokens: positions 0..5 through the stack, 3 output layers
    assert ceiling.generation_flops(DIMS, [4], [3]) == DIMS.prefix_flops(0, 6) + 3 * 80
    # a row that stopped at once still ran the prompt and one output layer
    assert ceiling.generation_flops(DIMS, [4], [0]) == DIMS.prefix_flops(0, 4) + 80


def test_counts_match_torch_flop_counter_on_a_tiny_model(tiny_model_dir):
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="eager")
    dims = ceiling.model_dims(model)
    assert dims.layers == model.config.num_hidden_layers
    assert dims.vocab == model.config.vocab_size
    length = 9
    ids = torch.arange(length)[None] % dims.vocab
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(input_ids=ids, use_cache=False)
    counted = counter.get_total_flops()
    # torch counts eager attention as full length x length products; ours is causal
    full_attention = 4 * dims.layers * dims.attention_width * length * length
    causal_attention = 4 * dims.layers * dims.attention_width * length * (length + 1) // 2
    ours = dims.prefix_flops(0, length) + length * dims.head_flops
    assert ours - causal_attention == counted - full_attention
