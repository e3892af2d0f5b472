"""The `hf` backend: any transformers causal LM (hub id, local folder or .gguf file).

Scoring encodes each distinct context once: contexts are left-padded into a batch and run
with a KV cache, then the continuations of each context are packed into one row behind its
cached keys and values, each attending to the context and to itself only (a block-diagonal
causal mask after the shared prefix): periodic_elements/subtask_0 scores 118 choices per
prompt in one row of about 140 tokens instead of 118 rows. Generation is greedy, batched
with left padding, and drops rows from the batch (and their cache) as soon as they stop.
Batches fill a token budget, longest first; on CUDA out-of-memory the budget halves and the
batch is retried, so no request is lost or done twice. All log-softmaxes are taken in float32.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from harness.errors import HarnessError
from harness.models.base import (
    BOUNDARIES,
    Generation,
    GenRequest,
    LoglikRequest,
    ModelInfo,
    Progress,
    TokenScores,
)
from harness.models.registry import ModelSource
from harness.models.scheduling import group_by_context, plan_batches

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
          "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
CPU_TOKEN_BUDGET = 8192
# Most continuation tokens packed into one row behind a shared context (see _score_groups).
PACK_TOKENS = 512
# Positions per call of the output layer when it runs apart from the model (_score_hidden).
HEAD_SLICE = 1024
MIN_TOKEN_BUDGET = 64
# glibc malloc: blocks up to this size come from the heap, and the heap is trimmed back to the
# OS only above TRIM_THRESHOLD (see keep_freed_memory).
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 1 << 30
_malloc_tuned: bool | None = None


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed activation buffers for reuse instead of returning each one
    to the OS (the default for blocks over its mmap threshold).

    A forward pass on CPU allocates and frees many tensors of a few to tens of MB; with the
    default, every one is a fresh mmap whose pages fault in on first touch, and on small VMs
    that costs more than the arithmetic (scoring periodic_elements/subtask_0 on SmolLM2-135M,
    2 cores: 59.7 s -> 42.6 s). Numbers are unchanged: only where memory comes from changes.
    The process keeps up to TRIM_THRESHOLD of freed memory. Applies once per process, on Linux
    with glibc only; HARNESS_MALLOC_TUNING=0 turns it off. Returns whether it is in effect.
    """
    global _malloc_tuned
    if _malloc_tuned is None:
        _malloc_tuned = False
        if os.environ.get("HARNESS_MALLOC_TUNING", "1") != "0" and sys.platform == "linux":
            import ctypes

            try:
                mallopt = ctypes.CDLL(None).mallopt
            except (OSError, AttributeError):  # not glibc (musl, ...)
                return False
            m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's <malloc.h>
            _malloc_tuned = bool(mallopt(m_mmap_threshold, MMAP_THRESHOLD)) and bool(
                mallopt(m_trim_threshold, TRIM_THRESHOLD))
    return _malloc_tuned


def cache_dir() -> Path:
    return Path(os.environ.get("HARNESS_CACHE", Path.home() / ".cache" / "harness"))


def pick_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise HarnessError(f"--device {device} asked for, but no CUDA GPU is visible to torch "
                           f"{torch.__version__}; use --device cpu (or auto)")
    if device not in ("cpu", "mps") and not device.startswith("cuda"):
        raise HarnessError(f"unknown --device {device!r}; use auto, cpu or cuda[:N]")
    return device


def _sha256_file(path: Path, limit: int | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        read = 0
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            read += len(chunk)
            if limit is not None and read >= limit:
                digest.update(str(path.stat().st_size).encode())
                break
    return digest.hexdigest()


def weights_fingerprint(folder: Path) -> str:
    """sha256 over the weight files of a local checkpoint (first 64 MB of files over 1 GB)."""
    files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".gguf"))
    digest = hashlib.sha256()
    for path in files:
        limit = 64 << 20 if path.stat().st_size > (1 << 30) else None
        digest.update(f"{path.name}:{_sha256_file(path, limit)}".encode())
    return digest.hexdigest()


def _resolve_dtype(dtype: str, device: str, estimated_params: int | None) -> torch.dtype:
    if dtype != "auto":
        if dtype not in DTYPES:
            raise HarnessError(f"unknown --dtype {dtype!r}; use auto, float32, bfloat16 or "
                               "float16")
        return DTYPES[dtype]
    # auto: float32, the reference whose numbers do not move with batch size; bfloat16
    # only when float32 weights would not fit the GPU.
    if device.startswith("cuda") and estimated_params:
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        if estimated_params * 4 > 0.8 * free:
            log.warning("float32 weights (%.1f GB) do not fit this GPU; using bfloat16",
                        estimated_params * 4 / 1e9)
            return torch.bfloat16
    return torch.float32


class HFBackend:
    """transformers `AutoModelForCausalLM` + fast tokenizer behind the Backend protocol."""

    def __init__(self, source: ModelSource, dtype: str = "auto", device: str = "auto",
                 batch_size: str | int = "auto", boundary: str = "natural",
                 allow_pickle: bool = False) -> None:
        if boundary not in BOUNDARIES:
            raise HarnessError(f"unknown --boundary {boundary!r}; use {' or '.join(BOUNDARIES)}")
        self.source = source
        self.boundary = boundary
        self.device = pick_device(device)
        if self.device == "cpu":
            keep_freed_memory()
        self._set_batching(batch_size)
        location, fingerprint = self._local_copy(source)
        self.tokenizer = self._load_tokenizer(source, location)
        self.model = self._load_model(source, location, dtype, allow_pickle)
        self.model.eval()
        # transformers renamed the KV-cache argument and output from `past_key_values` to
        # `cache`; use the model's own name so neither version warns on every call.
        self._cache_arg = ("cache" if "cache" in inspect.signature(self.model.forward).parameters
                           else "past_key_values")
        self.max_length = int(getattr(self.model.config, "max_position_embeddings", 0) or 4096)
        self._split_head = None  # decided on first use: see _head_is_separable
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = next(iter(self.eos_ids), 0)
        start = self.tokenizer.bos_token_id
        self.start_id = start if start is not None else next(iter(self.eos_ids), self.pad_id)
        total, non_embedding = self._parameter_counts()
        if source.kind == "hub":
            fingerprint = getattr(self.model.config, "_commit_hash", None) or source.revision
        self.info = ModelInfo(
            name=source.name, source=source.location if source.kind != "gguf"
            else str(Path(source.location) / source.gguf_file),
            revision=source.revision, backend="hf", dtype=str(self.model.dtype).replace("torch.", ""),
            device=self.device, total_params=total, non_embedding_params=non_embedding,
            weights_fingerprint=fingerprint, boundary=boundary,
            tokenizer_fingerprint=hashlib.sha256(
                self.tokenizer.backend_tokenizer.to_str().encode()).hexdigest(),
        )

    # ------------------------------------------------------------------ loading

    def _set_batching(self, batch_size: str | int) -> None:
        if batch_size == "auto":
            self.max_rows = None
            if self.device.startswith("cuda"):
                free, _ = torch.cuda.mem_get_info(torch.device(self.device))
                self.token_budget = int(min(1 << 18, max(1024, free // (2 << 20))))
            else:
                self.token_budget = CPU_TOKEN_BUDGET
        else:
            try:
                rows = int(batch_size)
            except ValueError:
                raise HarnessError(f"--batch-size must be auto or a positive integer, not "
                                   f"{batch_size!r}") from None
            if rows < 1:
                raise HarnessError(f"--batch-size {rows} must be at least 1")
            self.max_rows, self.token_budget = rows, None
        self.batch_size = str(batch_size)

    def _local_copy(self, source: ModelSource) -> tuple[str, str]:
        """Where to load from, and the weights fingerprint for local sources.

        A .gguf file is converted once to a float32 safetensors folder in the cache (keyed
        by the file's sha256): transformers dequantizes GGUF tensors to exactly these
        values, and later loads take seconds instead of tens of seconds.
        """
        if source.kind == "folder":
            folder = Path(source.location)
            return source.location, weights_fingerprint(folder)
        if source.kind == "gguf":
            gguf = Path(source.location) / source.gguf_file
            digest = _sha256_file(gguf)
            converted = cache_dir() / "gguf" / digest[:16]
            if not (converted / "config.json").is_file():
                self._convert_gguf(source, converted)
            return str(converted), digest
        return source.location, ""

    def _convert_gguf(self, source: ModelSource, target: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        log.info("converting %s to float32 safetensors in %s (once)", source.gguf_file, target)
        try:
            tokenizer = AutoTokenizer.from_pretrained(source.location, gguf_file=source.gguf_file)
            model = AutoModelForCausalLM.from_pretrained(source.location, gguf_file=source.gguf_file,
                                                         dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise HarnessError(f"cannot read GGUF file {source.gguf_file}: {exc}") from None
        tmp = target.with_name(target.name + f".tmp{os.getpid()}")
        model.config.quantization_config = None
        if hasattr(model, "hf_quantizer"):
            model.hf_quantizer = None
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if target.exists():  # another process finished first
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
            return
        os.replace(tmp, target)

    def _hub_error(self, source: ModelSource, exc: Exception) -> HarnessError:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "revision" in text.lower() or type(exc).__name__ == "RevisionNotFoundError":
            return HarnessError(f"{source.location} has no revision {source.revision!r} ({text})")
        return HarnessError(
            f"cannot load {source.location}@{source.revision} from the Hugging Face Hub ({text}); "
            "if the Hub is unreachable, pass a local folder or a .gguf file, or set HF_HOME to a "
            "cache that holds it")

    def _load_tokenizer(self, source: ModelSource, location: str):
        from transformers import AutoTokenizer

        kwargs = {"revision": source.revision} if source.kind == "hub" else {}
        try:
            tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
        except Exception as exc:  # the hub client raises many types; all mean "not loadable"
            if source.kind == "hub":
                raise self._hub_error(source, exc) from None
            raise HarnessError(f"cannot load a tokenizer from {location}: {exc}") from None
        if not getattr(tokenizer, "is_fast", False):
            raise HarnessError(f"{source.name}: the tokenizer is not a fast tokenizer; the "
                               "harness needs character offsets to split prompts exactly")
        return tokenizer

    def _load_model(self, source: ModelSource, location: str, dtype: str, allow_pickle: bool):
        from transformers import AutoConfig, AutoModelForCausalLM

        kwargs: dict = {"revision": source.revision} if source.kind == "hub" else {}
        if source.kind == "folder":
            folder = Path(location)
            has_safe = any(folder.glob("*.safetensors"))
            if not has_safe and any(folder.glob("*.bin")) and not allow_pickle:
                raise HarnessError(f"{folder} holds only pickled weights (*.bin), which can run "
                                   "code when loaded; convert them to safetensors, or pass "
                                   "--allow-pickle if you trust the source")
        if not allow_pickle:
            kwargs["use_safetensors"] = True
        try:
            config = AutoConfig.from_pretrained(location, **{k: v for k, v in kwargs.items()
                                                             if k == "revision"})
        except Exception as exc:
            if source.kind == "hub":
                raise self._hub_error(source, exc) from None
            raise HarnessError(f"cannot read the model config in {location}: {exc}") from None
        estimated = (_estimate_params(config)
                     if dtype == "auto" and self.device.startswith("cuda") else None)
        torch_dtype = _resolve_dtype(dtype, self.device, estimated)
        try:
            model = AutoModelForCausalLM.from_pretrained(
                location, dtype=torch_dtype, device_map={"": self.device}, **kwargs)
        except torch.cuda.OutOfMemoryError:
            raise HarnessError(f"{source.name} does not fit on {self.device} in {torch_dtype}; try "
                               "--dtype bfloat16 or a larger GPU") from None
        except Exception as exc:
            if source.kind == "hub":
                raise self._hub_error(source, exc) from None
            raise HarnessError(f"cannot load model weights from {location}: {exc}") from None
        return model

    def _parameter_counts(self) -> tuple[int, int]:
        """(total, non-embedding), counting tied input/output embeddings once."""
        total = sum(p.numel() for p in self.model.parameters())
        embedding = self.model.get_input_embeddings().weight
        output = self.model.get_output_embeddings()
        embedded = embedding.numel()
        if output is not None and output.weight.data_ptr() != embedding.data_ptr():
            embedded += output.weight.numel()
        return total, total - embedded

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

    # ------------------------------------------------------------------ scoring

    def loglikelihood(self, requests: Sequence[LoglikRequest],
                      progress: Progress | None = None) -> list[TokenScores]:
        encoded = [self.encode_pair(r.context, r.continuation) for r in requests]
        groups = group_by_context([tuple(ctx) for ctx, _ in encoded])
        results: list[TokenScores | None] = [None] * len(requests)
        # A context with one continuation is scored in one pass over context + continuation;
        # a context with several is encoded once and its continuations scored on its cache.
        single = [g for g in groups if len(g) == 1]
        shared = [g for g in groups if len(g) > 1]
        queue: list[tuple[str, list[list[int]]]] = []
        for batch in plan_batches([len(encoded[g[0]][0]) + len(encoded[g[0]][1]) for g in single],
                                  self.token_budget, self.max_rows):
            queue.append(("single", [single[i] for i in batch]))
        for batch in plan_batches([len(encoded[g[0]][0]) for g in shared], self.token_budget,
                                  self.max_rows):
            queue.append(("shared", [shared[i] for i in batch]))
        while queue:
            kind, batch_groups = queue.pop(0)
            try:
                if kind == "single":
                    self._score_single(batch_groups, encoded, results)
                else:
                    self._score_groups(batch_groups, encoded, results)
            except torch.cuda.OutOfMemoryError:
                queue[:0] = [(kind, part) for part in self._split_after_oom(batch_groups)]
                continue
            if progress:
                progress(sum(len(g) for g in batch_groups))
        return results  # type: ignore[return-value]

    @torch.inference_mode()
    def _score_single(self, batch_groups: list[list[int]], encoded: list, results: list) -> None:
        """One forward pass over left-padded context + continuation[:-1] rows."""
        indices = [g[0] for g in batch_groups]
        rows = [encoded[i][0] + encoded[i][1][:-1] for i in indices]
        keep = max(1, max(len(encoded[i][1]) for i in indices))
        ids, mask, positions = self._left_pad(rows)
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                            logits_to_keep=keep).logits.float()
        logprobs = torch.log_softmax(logits, dim=-1)
        greedy = logits.argmax(-1)
        targets = torch.zeros((len(indices), keep), dtype=torch.long)
        for row, i in enumerate(indices):
            cont = encoded[i][1]
            if cont:  # rows are right-aligned: the last len(cont) positions predict cont
                targets[row, keep - len(cont):] = torch.tensor(cont)
        targets = targets.to(self.device)
        token_lp = logprobs.gather(-1, targets[..., None]).squeeze(-1).cpu().tolist()
        is_greedy = (greedy == targets).cpu().tolist()
        for row, i in enumerate(indices):
            cont = encoded[i][1]
            if not cont:
                results[i] = TokenScores((), (), ())
                continue
            n = len(cont)
            results[i] = self._finish(cont, list(zip(token_lp[row][keep - n:],
                                                     is_greedy[row][keep - n:])))

    def _split_after_oom(self, items: list) -> list[list]:
        torch.cuda.empty_cache()
        if len(items) == 1 and (self.token_budget or 0) <= MIN_TOKEN_BUDGET:
            raise HarnessError("CUDA out of memory on a single request even at the smallest "
                               "batch; use a smaller model, --dtype bfloat16 or a larger GPU")
        if self.token_budget is not None:
            self.token_budget = max(MIN_TOKEN_BUDGET, self.token_budget // 2)
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

    @torch.inference_mode()
    def _score_groups(self, batch_groups: list[list[int]], encoded: list, results: list) -> None:

        contexts = [encoded[g[0]][0] for g in batch_groups]
        ids, mask, positions = self._left_pad(contexts)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                         use_cache=True, logits_to_keep=1)
        first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # (groups, vocab)
        first_greedy = first.argmax(-1)
        cache = self._cache_of(out)
        context_lengths = mask.sum(-1)

        # Token 0 of every continuation comes from its context's last position.
        tails: dict[int, list[int]] = {}  # group row -> requests with tokens 1..m-1 to score
        for row, group in enumerate(batch_groups):
            for index in group:
                cont = encoded[index][1]
                if not cont:
                    results[index] = TokenScores((), (), ())
                    continue
                results[index] = (float(first[row, cont[0]]), bool(first_greedy[row] == cont[0]))
                if len(cont) > 1:
                    tails.setdefault(row, []).append(index)
                else:
                    results[index] = self._finish(cont, [results[index]])
        if not tails:
            return
        width = ids.shape[1]
        # Pack the tails of one context into one row, each tail attending to the context and to
        # itself only (a block-diagonal causal mask after the shared prefix): no copy of the
        # context's cache per continuation, and long rows instead of many short ones.
        cap = PACK_TOKENS if self.token_budget is None else max(
            1, min(PACK_TOKENS, self.token_budget - width))
        packed: list[tuple[int, list[int]]] = []  # (group row, requests), tails <= cap tokens
        for row, indices in tails.items():
            current, length = [], 0
            for index in indices:
                n = len(encoded[index][1]) - 1
                if current and length + n > cap:
                    packed.append((row, current))
                    current, length = [], 0
                current.append(index)
                length += n
            packed.append((row, current))
        lengths = [sum(len(encoded[i][1]) - 1 for i in members) for _, members in packed]
        for chunk in plan_batches([width + n for n in lengths], self.token_budget, self.max_rows):
            self._score_packed([packed[i] for i in chunk], encoded, results, cache, mask,
                               context_lengths)

    def _score_packed(self, items: list[tuple[int, list[int]]], encoded: list, results: list,
                      cache, context_mask: torch.Tensor, context_lengths: torch.Tensor) -> None:
        from transformers import DynamicCache

        select = torch.tensor([row for row, _ in items], device=self.device)
        chunk_cache = DynamicCache(
            [(layer.keys.index_select(0, select), layer.values.index_select(0, select))
             for layer in cache.layers])
        steps = max(sum(len(encoded[i][1]) - 1 for i in members) for _, members in items)
        n_rows, width = len(items), context_mask.shape[1]
        inputs = torch.full((n_rows, steps), self.pad_id, dtype=torch.long)
        targets = torch.zeros((n_rows, steps), dtype=torch.long)
        offsets = torch.zeros((n_rows, steps), dtype=torch.long)  # position after the context
        segment = torch.full((n_rows, steps), -1, dtype=torch.long)  # which tail; -1: padding
        spans: list[list[tuple[int, int, int]]] = []  # per row: (request, start, length)
        for r, (_, members) in enumerate(items):
            start, row_spans = 0, []
            for k, index in enumerate(members):
                cont = encoded[index][1]
                n = len(cont) - 1
                inputs[r, start:start + n] = torch.tensor(cont[:-1])
                targets[r, start:start + n] = torch.tensor(cont[1:])
                offsets[r, start:start + n] = torch.arange(n)
                segment[r, start:start + n] = k
                row_spans.append((index, start, n))
                start += n
            spans.append(row_spans)
        # query q sees the context's real tokens, and the tail tokens of its own segment up to
        # itself; a padding query sees only itself (a row of -inf would give NaN)
        same = (segment[:, :, None] == segment[:, None, :]) & (segment[:, :, None] >= 0)
        causal = torch.ones(steps, steps, dtype=torch.bool).tril()
        own = (same & causal) | torch.eye(steps, dtype=torch.bool)
        sees_context = context_mask.index_select(0, select).bool().cpu()[:, None, :].expand(
            n_rows, steps, width) & (segment[:, :, None] >= 0)
        allowed = torch.cat([sees_context, own], dim=-1)[:, None]  # (rows, 1, steps, width+steps)
        dtype = self.model.dtype
        additive = torch.zeros(allowed.shape, dtype=dtype).masked_fill(
            ~allowed, torch.finfo(dtype).min).to(self.device)
        pos = context_lengths.index_select(0, select)[:, None] + offsets.to(self.device)
        inputs, targets = inputs.to(self.device), targets.to(self.device)
        kwargs = {"input_ids": inputs, "attention_mask": additive, "position_ids": pos,
                  "use_cache": False, self._cache_arg: chunk_cache}
        if self._head_is_separable():
            # the output layer only where a token is scored, a slice at a time: no
            # (rows x steps x vocab) logits in memory
            hidden = self.model.base_model(**kwargs).last_hidden_state
            real = (segment >= 0).to(self.device)
            scored_lp, scored_greedy = self._score_hidden(hidden[real], targets[real])
            token_lp = torch.zeros(targets.shape, dtype=torch.float32)
            greedy_mask = torch.zeros(targets.shape, dtype=torch.bool)
            token_lp[real.cpu()] = scored_lp
            greedy_mask[real.cpu()] = scored_greedy
            token_lp, greedy = token_lp.tolist(), greedy_mask.tolist()
        else:
            logits = self.model(**kwargs).logits.float()
            logprobs = torch.log_softmax(logits, dim=-1)
            token_lp = logprobs.gather(-1, targets[..., None]).squeeze(-1).cpu().tolist()
            greedy = (logits.argmax(-1) == targets).cpu().tolist()
        for r, row_spans in enumerate(spans):
            for index, start, n in row_spans:
                cont = encoded[index][1]
                head = results[index]
                results[index] = self._finish(
                    cont, [head, *zip(token_lp[r][start:start + n], greedy[r][start:start + n])])

    def peak_memory_mb(self) -> float | None:
        """Peak GPU memory allocated by torch on this backend's device so far (None on CPU)."""
        if not self.device.startswith("cuda"):
            return None
        return round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)

    def _head_is_separable(self) -> bool:
        """Whether the logits are the output layer applied to the base model's last hidden
        state (checked once, numerically, on a 3-token input): then scoring may run the output
        layer on the scored positions only. False for models that do more (soft-capping, ...)."""
        if self._split_head is None:
            head, base = self.model.get_output_embeddings(), self.model.base_model
            self._split_head = False
            if head is not None and base is not self.model:
                ids = torch.tensor([[self.start_id, self.pad_id, self.start_id]], device=self.device)
                with torch.inference_mode():
                    full = self.model(input_ids=ids).logits.float()
                    split = head(base(input_ids=ids).last_hidden_state).float()
                self._split_head = full.shape == split.shape and bool(
                    torch.allclose(full, split, rtol=0, atol=1e-6))
        return self._split_head

    def _score_hidden(self, hidden: torch.Tensor, targets: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-prob (float32) and is-greedy of each target after its hidden state, (n, d) -> (n,)."""
        head = self.model.get_output_embeddings()
        logprobs, greedy = [], []
        for start in range(0, hidden.shape[0], HEAD_SLICE):
            logits = head(hidden[start:start + HEAD_SLICE]).float()
            wanted = targets[start:start + HEAD_SLICE]
            logprobs.append(torch.log_softmax(logits, dim=-1).gather(-1, wanted[:, None])[:, 0])
            greedy.append(logits.argmax(-1) == wanted)
        return torch.cat(logprobs).cpu(), torch.cat(greedy).cpu()

    def _cache_of(self, out):
        return getattr(out, self._cache_arg)

    def _finish(self, cont: list[int], pairs: list[tuple[float, bool]]) -> TokenScores:
        return TokenScores(tokens=tuple(self.tokenizer.convert_ids_to_tokens(cont)),
                           logprobs=tuple(p[0] for p in pairs),
                           is_greedy=tuple(p[1] for p in pairs))

    # ------------------------------------------------------------------ generation

    def generate(self, requests: Sequence[GenRequest],
                 progress: Progress | None = None) -> list[Generation]:
        contexts = []
        for request in requests:
            ids = self.tokenizer(request.context, add_special_tokens=True)["input_ids"] or [
                self.start_id]
            room = self.max_length - request.max_new_tokens
            contexts.append(ids[-room:] if len(ids) > room else ids)
        results: list[Generation | None] = [None] * len(requests)
        batches = plan_batches([len(c) + r.max_new_tokens for c, r in zip(contexts, requests)],
                               self.token_budget, self.max_rows)
        queue = [list(b) for b in batches]
        while queue:
            batch = queue.pop(0)
            try:
                self._generate_batch(batch, contexts, requests, results)
            except torch.cuda.OutOfMemoryError:
                queue[:0] = self._split_after_oom(batch)
                continue
            if progress:
                progress(len(batch))
        return results  # type: ignore[return-value]

    def _decode_new(self, context: list[int], new: list[int]) -> str:
        # Decode with a few context tokens in front, then drop their text: tokenizers that
        # mark word starts (SentencePiece) otherwise lose the leading space.
        anchor = context[-4:]
        full = self.tokenizer.decode(anchor + new, skip_special_tokens=True,
                                     clean_up_tokenization_spaces=False)
        head = self.tokenizer.decode(anchor, skip_special_tokens=True,
                                     clean_up_tokenization_spaces=False)
        return full[len(head):] if full.startswith(head) else full

    @torch.inference_mode()
    def _generate_batch(self, batch: list[int], contexts: list, requests: Sequence[GenRequest],
                        results: list) -> None:
        ids, mask, positions = self._left_pad([contexts[i] for i in batch])
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                         use_cache=True, logits_to_keep=1)
        cache = self._cache_of(out)
        logits = out.logits[:, -1]
        last_pos = positions[:, -1]
        active = list(batch)
        new_tokens: dict[int, list[int]] = {i: [] for i in batch}
        while active:
            next_ids = logits.float().argmax(-1)
            keep = []
            for row, index in enumerate(active):
                token = int(next_ids[row])
                request = requests[index]
                reason = None
                if token in self.eos_ids:
                    reason = "eos"
                else:
                    new_tokens[index].append(token)
                    text = self._decode_new(contexts[index], new_tokens[index])
                    if request.stop is not None and request.stop.is_final(text):
                        reason = "rule"
                    elif len(new_tokens[index]) >= request.max_new_tokens:
                        reason = "max_new_tokens"
                if reason:
                    results[index] = Generation(
                        text=self._decode_new(contexts[index], new_tokens[index]),
                        n_tokens=len(new_tokens[index]), stop_reason=reason)
                else:
                    keep.append(row)
            if not keep:
                break
            if len(keep) < len(active):
                select = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(select)
                mask, last_pos, next_ids = mask[select], last_pos[select], next_ids[select]
                active = [active[r] for r in keep]
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)
            last_pos = last_pos + 1
            out = self.model(input_ids=next_ids[:, None], attention_mask=mask,
                             position_ids=last_pos[:, None], use_cache=True,
                             **{self._cache_arg: cache})
            cache, logits = self._cache_of(out), out.logits[:, -1]


def _estimate_params(config) -> int | None:
    """Parameter count of a config without allocating weights (for the dtype decision)."""
    try:
        from accelerate import init_empty_weights
        from transformers import AutoModelForCausalLM

        with init_empty_weights():
            model = AutoModelForCausalLM.from_config(config)
        return sum(p.numel() for p in model.parameters())
    except Exception:  # an exotic config: fall back to float32 without the fit check
        return None
