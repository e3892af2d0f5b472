"""The `hf` backend: any transformers causal LM (hub id, local folder or .gguf file).

One class in three rooms: loading, fingerprints and parameter counts (`hf_load`),
log-likelihood scoring (`hf_score.LoglikelihoodScoring`) and greedy generation
(`hf_generate.GreedyGeneration`). This module wires them together and holds what both
request kinds share: the token budget, left padding, the KV-cache argument, and the back-off
on CUDA out-of-memory. Batches fill a token budget, longest first; on CUDA out-of-memory the
budget halves and the batch is retried, so no request is lost or done twice.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from harness.errors import HarnessError
from harness.locations import portable
from harness.models.base import BOUNDARIES, ModelInfo
from harness.models.hf_generate import GreedyGeneration
from harness.models.hf_load import (
    hub_commit,
    load_tokenizer,
    load_weights,
    local_copy,
    parameter_counts,
    pick_device,
    tokenizer_fingerprint,
)
from harness.models.hf_score import LoglikelihoodScoring
from harness.models.registry import ModelSource

log = logging.getLogger(__name__)

# CPU batch sizes, in padded token positions per forward pass. Scoring runs each batch once,
# and its matrix multiplies (rows x positions by the weights) are fastest at a few thousand
# rows: at 8,192 the activations leave the cache, and the longer a batch the more padding
# sorting leaves in it (SmolLM2-135M, 2 cores: emoji_movie 14.4-15.4 s at 8,192, 11.0-11.4 s
# at 2,048). Generation's decoding steps multiply one row per sequence, so it wants many
# sequences per batch (arithmetic, 200 x 16 tokens: 24.8-25.5 s at 2,048, 22.7-24.2 s at 8,192).
CPU_TOKEN_BUDGET = 2048
CPU_GENERATION_TOKEN_BUDGET = 8192
MIN_TOKEN_BUDGET = 64


class HFBackend(LoglikelihoodScoring, GreedyGeneration):
    """transformers `AutoModelForCausalLM` + fast tokenizer behind the Backend protocol."""

    def __init__(self, source: ModelSource, dtype: str = "auto", device: str = "auto",
                 batch_size: str | int = "auto", boundary: str = "natural",
                 allow_pickle: bool = False) -> None:
        if boundary not in BOUNDARIES:
            raise HarnessError(f"unknown --boundary {boundary!r}; use {' or '.join(BOUNDARIES)}")
        self.source = source
        self.boundary = boundary
        self.device = pick_device(device)
        self._set_batching(batch_size)
        location, fingerprint = local_copy(source)
        self.tokenizer = load_tokenizer(source, location)
        self.model = load_weights(source, location, dtype, self.device, allow_pickle)
        self.model.eval()
        # transformers renamed the KV-cache argument and output from `past_key_values` to
        # `cache`; use the model's own name so neither version warns on every call.
        self._cache_arg = ("cache" if "cache" in inspect.signature(self.model.forward).parameters
                           else "past_key_values")
        self.max_length = int(getattr(self.model.config, "max_position_embeddings", 0) or 4096)
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = next(iter(self.eos_ids), 0)
        start = self.tokenizer.bos_token_id
        self.start_id = start if start is not None else next(iter(self.eos_ids), self.pad_id)
        total, non_embedding = parameter_counts(self.model)
        if source.kind == "hub":
            # the commit the revision resolved to; without one, the repo and revision
            # label, never the label alone
            fingerprint = hub_commit(source.location, source.revision) or (
                f"{source.location}@{source.revision}")
        self.info = ModelInfo(
            name=source.name, source=portable(source.location) if source.kind != "gguf"
            else portable(Path(source.location) / source.gguf_file),
            revision=source.revision, backend="hf", dtype=str(self.model.dtype).replace("torch.", ""),
            device=self.device, total_params=total, non_embedding_params=non_embedding,
            weights_fingerprint=fingerprint, boundary=boundary,
            tokenizer_fingerprint=tokenizer_fingerprint(self.tokenizer),
        )

    def _set_batching(self, batch_size: str | int) -> None:
        if batch_size == "auto":
            self.max_rows = None
            if self.device.startswith("cuda"):
                free, _ = torch.cuda.mem_get_info(torch.device(self.device))
                self.token_budget = int(min(1 << 18, max(1024, free // (2 << 20))))
                self.generation_token_budget = self.token_budget
            else:
                self.token_budget = CPU_TOKEN_BUDGET
                self.generation_token_budget = CPU_GENERATION_TOKEN_BUDGET
        else:
            try:
                rows = int(batch_size)
            except ValueError:
                raise HarnessError(f"--batch-size must be auto or a positive integer, not "
                                   f"{batch_size!r}") from None
            if rows < 1:
                raise HarnessError(f"--batch-size {rows} must be at least 1")
            self.max_rows, self.token_budget, self.generation_token_budget = rows, None, None
        self.batch_size = str(batch_size)

    def close(self) -> None:
        del self.model
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()

    # ------------------------------------------------------------------ tokenisation

    def tokenize(self, texts: Sequence[str]) -> list[tuple[str, ...]]:
        encoded = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [tuple(self.tokenizer.convert_ids_to_tokens(ids)) for ids in encoded]

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Token ids of (context, continuation) under the boundary convention."""
        if self.boundary == "bigbench":
            ctx = self.tokenizer(context, add_special_tokens=True)["input_ids"]
            cont = self.tokenizer(continuation, add_special_tokens=False)["input_ids"]
        else:
            stripped = context.rstrip()
            whole = context + continuation
            enc = self.tokenizer(whole, add_special_tokens=True, return_offsets_mapping=True,
                                 return_special_tokens_mask=True)
            split = len(stripped)
            ids, offsets, special = (enc["input_ids"], enc["offset_mapping"],
                                     enc["special_tokens_mask"])
            cut = next((i for i, (_, end) in enumerate(offsets)
                        if end > split and not special[i]), len(ids))
            ctx = ids[:cut]
            cont = [t for t, s in zip(ids[cut:], special[cut:]) if not s]
        if not ctx:
            ctx = [self.start_id]
        room = self.max_length - len(cont)
        if len(ctx) > room:
            log.warning("context of %d tokens cut to the last %d (model max %d)", len(ctx),
                        room, self.max_length)
            ctx = ctx[-room:]
        return ctx, cont

    # ------------------------------------------------------------------ shared by both request kinds

    def _split_after_oom(self, items: list) -> list[list]:
        torch.cuda.empty_cache()
        if len(items) == 1 and (self.token_budget or 0) <= MIN_TOKEN_BUDGET:
            raise HarnessError("CUDA out of memory on a single request even at the smallest "
                               "batch; use a smaller model, --dtype bfloat16 or a larger GPU")
        if self.token_budget is not None:
            self.token_budget = max(MIN_TOKEN_BUDGET, self.token_budget // 2)
        if self.generation_token_budget is not None:
            self.generation_token_budget = max(MIN_TOKEN_BUDGET, self.generation_token_budget // 2)
        if self.max_rows is not None:
            self.max_rows = max(1, self.max_rows // 2)
        log.warning("CUDA out of memory; retrying with a token budget of %s and %s rows",
                    self.token_budget, self.max_rows)
        half = max(1, len(items) // 2)
        return [items[:half], items[half:]] if len(items) > 1 else [items]

    def _left_pad(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return ids.to(self.device), mask.to(self.device), positions.to(self.device)

    def peak_memory_mb(self) -> float | None:
        """Peak GPU memory allocated by torch on this backend's device so far (None on CPU)."""
        if not self.device.startswith("cuda"):
            return None
        return round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)

    def _cache_of(self, out):
        return getattr(out, self._cache_arg)
