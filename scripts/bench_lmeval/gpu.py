"""GPU throughput: tokens/s and MFU of log-likelihood scoring on Pythia-shaped models.

The models are GPT-NeoX with Pythia's published shapes and random weights (speed does not
depend on the weights; nothing is downloaded), saved in bf16 with the benchmark model's
tokenizer, then loaded by each engine from that folder like any checkpoint.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

# Pythia's shapes (EleutherAI/pythia config.json): hidden, layers, heads; MLP is 4 x hidden.
PYTHIA_SHAPES = {
    "pythia-160m": (768, 12, 12),
    "pythia-410m": (1024, 24, 16),
    "pythia-1.4b": (2048, 24, 16),
}
PYTHIA_VOCAB = 50304

# Dense (no sparsity) bf16 tensor-core peaks from the vendors' data sheets, in TFLOP/s;
# the first name found in torch.cuda.get_device_name() wins.
PEAK_BF16_TFLOPS = (
    ("H200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("GH200", 989.0),
    ("A100", 312.0), ("L40S", 362.0), ("L4", 121.0), ("A10", 125.0), ("B200", 2250.0),
)


# Dense float32 peaks (CUDA cores, no TF32: torch's default for float32 matmuls), TFLOP/s.
PEAK_FP32_TFLOPS = (
    ("H200", 67.0), ("H100 PCIe", 51.0), ("H100", 67.0), ("GH200", 67.0),
    ("A100", 19.5), ("L40S", 91.6), ("L4", 30.3), ("A10", 31.2),
)


def shape_dims(shape: str) -> tuple[int, int, int]:
    """(hidden, layers, heads) of a Pythia name, or of a custom "d<hidden>l<layers>h<heads>"."""
    if shape in PYTHIA_SHAPES:
        return PYTHIA_SHAPES[shape]
    match = re.fullmatch(r"d(\d+)l(\d+)h(\d+)", shape)
    if not match:
        raise ValueError(f"unknown shape {shape!r}; use {', '.join(PYTHIA_SHAPES)} or "
                         "d<hidden>l<layers>h<heads> (e.g. d64l2h4)")
    hidden, layers, heads = (int(g) for g in match.groups())
    return hidden, layers, heads


def unavailable_reason() -> str | None:
    """Why the GPU section cannot run here, or None when it can."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return (f"no CUDA GPU visible to torch {torch.__version__} (torch.cuda.is_available() "
                "is False); on a GPU machine this section runs unchanged")
    return None


def peak_tflops(device_name: str, dtype: str = "bfloat16") -> float | None:
    """The data-sheet dense peak of the device for `dtype` (bfloat16 or float32), or None."""
    for key, value in PEAK_FP32_TFLOPS if dtype == "float32" else PEAK_BF16_TFLOPS:
        if key.lower() in device_name.lower():
            return value
    return None


def build_random_model(shape: str, folder: Path, tokenizer_source: str) -> dict:
    """Save a randomly initialised bf16 GPT-NeoX with `shape` and the given tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPTNeoXConfig

    hidden, layers, heads = shape_dims(shape)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    config = GPTNeoXConfig(
        vocab_size=max(PYTHIA_VOCAB, len(tokenizer)), hidden_size=hidden,
        num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=4 * hidden,
        max_position_embeddings=2048, rotary_pct=0.25, use_parallel_residual=True,
        tie_word_embeddings=False, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id if tokenizer.bos_token_id is not None
        else tokenizer.eos_token_id)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    total = sum(p.numel() for p in model.parameters())
    embedded = model.get_input_embeddings().weight.numel() + \
        model.get_output_embeddings().weight.numel()
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    info = {"shape": shape, "total_params": total, "non_embedding_params": total - embedded,
            "hidden": hidden, "layers": layers, "heads": heads, "vocab": config.vocab_size}
    (folder / "bench_shape.json").write_text(json.dumps(info))
    return info


def throughput_row(shape: dict, engine: str, record: dict, request_tokens: int,
                   peak: float | None, dtype: str = "bfloat16") -> dict:
    """tokens/s over the median repeat, and MFU = 2 N tokens/s / peak of `dtype` (forward only)."""
    import statistics

    run = record["runs"][0]
    median_s = statistics.median(run["wall_s"])
    tokens_per_s = request_tokens / median_s if median_s > 0 else None
    mfu = (2 * shape["non_embedding_params"] * tokens_per_s / (peak * 1e12)
           if peak and tokens_per_s else None)
    return {"shape": shape["shape"], "non_embedding_params": shape["non_embedding_params"],
            "engine": engine, "dtype": dtype, "peak_tflops": peak, "median_s": median_s,
            "wall_s": run["wall_s"],
            "tokens": request_tokens, "tokens_per_s": tokens_per_s, "mfu": mfu,
            "gpu_peak_mb": run.get("gpu_peak_mb"), "load_s": record["load_s"]}
