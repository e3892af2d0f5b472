"""Shared fixtures: tiny randomly initialised GPT-NeoX models built in the test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Tests never reach the network; a cache of converted GGUF files is shared across tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# transformers' weight-loading bar writes to stderr, which the one-line error tests read; in a
# full run the family trainer turns it off for every later test, so a test run alone must too
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

CORPUS = [
    "\nQ: What is the name of the element with an atomic number of 1?\nA: hydrogen",
    "\nQ: What is 12 plus 7?\n  choice: 19\n  choice: banana\nA: 19",
    "\nQ: What movie does this emoji describe?\n  choice: finding nemo\nA: finding nemo",
    "The element with atomic number 2 is helium. What is 100 minus 1? 99. house banana",
]


def build_bpe_tokenizer():
    """A small byte-level BPE (space-prefixed word tokens, like GPT-NeoX's), trained here."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    core.train_from_iterator(CORPUS * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>")


def build_tiny_model(folder: Path, seed: int = 0, tie: bool = False, layers: int = 2,
                     d_model: int = 32) -> Path:
    """A randomly initialised GPT-NeoX saved with save_pretrained (safetensors) + tokenizer."""
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    tokenizer = build_bpe_tokenizer()
    torch.manual_seed(seed)
    config = GPTNeoXConfig(vocab_size=len(tokenizer), hidden_size=d_model,
                           num_hidden_layers=layers, num_attention_heads=4,
                           intermediate_size=4 * d_model, max_position_embeddings=512,
                           rotary_pct=0.25, use_parallel_residual=True, tie_word_embeddings=tie,
                           eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id)
    model = GPTNeoXForCausalLM(config)
    # Random init with std 0.02 gives near-uniform outputs; widen it so greedy choices and
    # log-probs differ clearly between tokens.
    with torch.no_grad():
        for param in model.parameters():
            if param.ndim >= 2:
                param.normal_(0, 0.3)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-neox")


@pytest.fixture(scope="session")
def mini_family(tmp_path_factory) -> Path:
    """The CI-sized family (3 sizes x 10 checkpoints), trained once per test session (~20 s)."""
    from harness.family.recipes import MINI
    from harness.family.train import train_family

    out = tmp_path_factory.mktemp("families") / "mini"
    train_family(MINI, out, jobs=1, threads=1)
    return out
