"""The machine's own ceiling, and the model FLOPs each workload needs.

A ratio to a slow peer says little about how far an engine is from what the hardware can do,
so the benchmark also measures, in the worker that times our engine (same process set-up,
threads, dtype and allocator):

* the dense matmul ceiling: every distinct linear-layer shape of the loaded model, run as
  `x @ W.T` on `MATMUL_TOKENS` rows, weighted by how often the model uses it: the FLOP/s a
  perfect engine doing nothing but the model's matmuls would reach;
* a raw batched forward of the model (no harness around it): `RAW_BATCH` rows of
  `RAW_LENGTH` tokens through `model(...)` with logits at every position, what a
  one-pass-per-request engine runs.

Model FLOPs are counted per token position from the loaded model's own modules:

* linear layers of the transformer stack: 2 x (their weights) per position;
* attention: 2 x 2 x layers x (query heads x head dim) x (number of keys) per position
  (Q.K and the weighted sum of V; causal, so position t sees t + 1 keys);
* the output layer: 2 x hidden x vocab, only at the positions where logits are used
  (ours computes it only there).

Embedding look-ups, norms, activations and the softmax are not counted (a few percent).
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

MATMUL_TOKENS = 512  # rows of the matmul probe: a typical packed batch on CPU
RAW_BATCH, RAW_LENGTH = 8, 256


@dataclass(frozen=True)
class ModelDims:
    """What the FLOP count needs of a model: its stack's linear weights, attention width,
    layer count and output layer."""

    stack_linear_params: int  # weights of every nn.Linear in the stack (not the output layer)
    layers: int
    attention_width: int  # query heads x head dim
    hidden: int
    vocab: int

    def position_flops(self, n_keys: int) -> int:
        """Forward FLOPs of one position through the stack, attending to `n_keys` keys."""
        return 2 * self.stack_linear_params + 4 * self.layers * self.attention_width * n_keys

    def prefix_flops(self, start: int, stop: int) -> int:
        """Stack FLOPs of positions start..stop-1 (each sees every earlier position)."""
        n = stop - start
        if n <= 0:
            return 0
        keys = (start + 1 + stop) * n // 2  # sum of (t + 1) for t in [start, stop)
        return 2 * self.stack_linear_params * n + 4 * self.layers * self.attention_width * keys

    @property
    def head_flops(self) -> int:
        return 2 * self.hidden * self.vocab

    def to_json(self) -> dict:
        return asdict(self)


def model_dims(model) -> ModelDims:
    """ModelDims of a transformers causal LM, read from its modules and config."""
    import torch

    head = model.get_output_embeddings()
    stack = sum(m.weight.numel() for m in model.modules()
                if isinstance(m, torch.nn.Linear) and m is not head)
    config = model.config
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return ModelDims(stack_linear_params=stack, layers=config.num_hidden_layers,
                     attention_width=heads * head_dim, hidden=config.hidden_size,
                     vocab=head.weight.shape[0])


def loglik_flops(dims: ModelDims, pairs: Iterable[tuple[Sequence[int], Sequence[int]]]) -> int:
    """FLOPs to score continuations after contexts: each distinct context once, each
    continuation after it, the output layer at the positions that predict its tokens."""
    pairs = [(tuple(c), len(k)) for c, k in pairs]
    total = sum(dims.prefix_flops(0, len(c)) for c in {c for c, _ in pairs})
    for context, n_cont in pairs:
        total += dims.prefix_flops(len(context), len(context) + n_cont - 1)
        total += n_cont * dims.head_flops
    return total


def generation_flops(dims: ModelDims, prompt_tokens: Sequence[int],
                     new_tokens: Sequence[int]) -> int:
    """FLOPs of greedy generation with a KV cache: the prompt once, then one position per
    generated token after the first; the output layer once per generated token."""
    total = 0
    for prompt, new in zip(prompt_tokens, new_tokens):
        steps = max(new, 1)
        total += dims.prefix_flops(0, prompt + steps - 1) + steps * dims.head_flops
    return total


def _median_seconds(run, repeats: int) -> float:
    run()  # warm-up: thread pools, allocator
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_ceiling(model, repeats: int = 3) -> dict:
    """FLOP/s of the model's own linear shapes (dtype and device of its weights)."""
    import torch

    shapes = Counter(tuple(m.weight.shape) for m in model.modules()
                     if isinstance(m, torch.nn.Linear))
    weight = next(model.parameters())
    flops, seconds = 0, 0.0
    rows = []
    with torch.inference_mode():
        for (out_features, in_features), count in sorted(shapes.items()):
            w = torch.randn(out_features, in_features, dtype=weight.dtype, device=weight.device)
            x = torch.randn(MATMUL_TOKENS, in_features, dtype=weight.dtype, device=weight.device)
            s = _median_seconds(lambda x=x, w=w: torch.nn.functional.linear(x, w), repeats)
            f = 2 * MATMUL_TOKENS * in_features * out_features
            rows.append({"shape": [in_features, out_features], "count": count,
                         "flops_per_s": f / s})
            flops, seconds = flops + count * f, seconds + count * s
    return {"tokens": MATMUL_TOKENS, "flops_per_s": flops / seconds, "shapes": rows}


def raw_forward(model, dims: ModelDims, repeats: int = 3) -> dict:
    """FLOP/s of the bare model on a full batch, logits at every position."""
    import torch

    device = next(model.parameters()).device
    ids = torch.randint(0, dims.vocab, (RAW_BATCH, RAW_LENGTH),
                        generator=torch.Generator().manual_seed(0)).to(device)
    with torch.inference_mode():
        s = _median_seconds(lambda: model(input_ids=ids, use_cache=False), repeats)
    flops = RAW_BATCH * (dims.prefix_flops(0, RAW_LENGTH) + RAW_LENGTH * dims.head_flops)
    return {"batch": RAW_BATCH, "length": RAW_LENGTH, "seconds": s, "flops_per_s": flops / s}


def measure(model, repeats: int = 3) -> dict:
    """The ceiling record a worker stores: dims, matmul ceiling and raw forward."""
    dims = model_dims(model)
    return {"dims": dims.to_json(), "matmul": matmul_ceiling(model, repeats),
            "raw_forward": raw_forward(model, dims, repeats)}
