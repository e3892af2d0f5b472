"""Loading for the `hf` backend: device and dtype choice, local copies (GGUF converted once),
tokenizer and weights, fingerprints and parameter counts.

Every failure a user can fix becomes one `HarnessError` that keeps its cause (`-v` shows the
traceback); anything else is a bug and surfaces as itself.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import torch

from harness.errors import HarnessError
from harness.locations import cache_dir
from harness.models.registry import ModelSource

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
          "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
# What transformers and the hub client raise for a model that cannot be loaded: missing or
# unreadable files, an unreachable or unknown repository or revision (the hub's errors are
# OSErrors), and a config or checkpoint it does not understand (ValueError).
LOAD_ERRORS = (OSError, ValueError)


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


def hub_commit(repo_id: str, revision: str) -> str | None:
    """The commit a hub revision resolved to: the snapshot folder its files were loaded from.

    `from_pretrained` has just put config.json in the Hugging Face cache (or read it there
    offline), under `snapshots/<commit>/`; `refs/<revision>` maps the branch to it.
    """
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    if not isinstance(cached, str):
        return None
    parts = Path(cached).parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts[:-1] else None


def tokenizer_fingerprint(tokenizer) -> str:
    """sha256 of the tokenizer's serialised vocabulary and rules."""
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()


def parameter_counts(model) -> tuple[int, int]:
    """(total, non-embedding), counting tied input/output embeddings once.

    The one count behind every curve's x-axis: the backend reports it for loaded models and
    the family trainer writes it to family.json.
    """
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight
    output = model.get_output_embeddings()
    embedded = embedding.numel()
    if output is not None and output.weight.data_ptr() != embedding.data_ptr():
        embedded += output.weight.numel()
    return total, total - embedded


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


def _estimate_params(config) -> int | None:
    """Parameter count of a config without allocating weights (for the dtype decision)."""
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    try:
        with init_empty_weights():
            model = AutoModelForCausalLM.from_config(config)
    except (ValueError, KeyError, TypeError) as exc:  # an architecture transformers lacks
        log.debug("cannot size %s without loading it (%s); no fit check", config, exc)
        return None
    return sum(p.numel() for p in model.parameters())


def local_copy(source: ModelSource) -> tuple[str, str]:
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
            _convert_gguf(source, converted)
        return str(converted), digest
    return source.location, ""


def _convert_gguf(source: ModelSource, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to float32 safetensors in %s (once)", source.gguf_file, target)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.location, gguf_file=source.gguf_file)
        model = AutoModelForCausalLM.from_pretrained(source.location, gguf_file=source.gguf_file,
                                                     dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise HarnessError(f"cannot read GGUF file {source.gguf_file}: {exc}") from exc
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


def _hub_error(source: ModelSource, exc: Exception) -> HarnessError:
    from huggingface_hub.errors import RevisionNotFoundError

    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, RevisionNotFoundError) or "revision" in text.lower():
        return HarnessError(f"{source.location} has no revision {source.revision!r} ({text})")
    return HarnessError(
        f"cannot load {source.location}@{source.revision} from the Hugging Face Hub ({text}); "
        "if the Hub is unreachable, pass a local folder or a .gguf file, or set HF_HOME to a "
        "cache that holds it")


def load_tokenizer(source: ModelSource, location: str):
    from transformers import AutoTokenizer

    kwargs = {"revision": source.revision} if source.kind == "hub" else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
    except LOAD_ERRORS as exc:
        if source.kind == "hub":
            raise _hub_error(source, exc) from exc
        raise HarnessError(f"cannot load a tokenizer from {location}: {exc}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise HarnessError(f"{source.name}: the tokenizer is not a fast tokenizer; the "
                           "harness needs character offsets to split prompts exactly")
    return tokenizer


def _refuse_pickle_only(folder: Path) -> None:
    has_safe = any(folder.glob("*.safetensors"))
    if not has_safe and any(folder.glob("*.bin")):
        raise HarnessError(f"{folder} holds only pickled weights (*.bin), which can run "
                           "code when loaded; convert them to safetensors, or pass "
                           "--allow-pickle if you trust the source")


def load_weights(source: ModelSource, location: str, dtype: str, device: str,
                 allow_pickle: bool):
    """The model on `device` in the resolved dtype (see _resolve_dtype)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    kwargs: dict = {"revision": source.revision} if source.kind == "hub" else {}
    if source.kind == "folder" and not allow_pickle:
        _refuse_pickle_only(Path(location))
    if not allow_pickle:
        kwargs["use_safetensors"] = True
    try:
        config = AutoConfig.from_pretrained(location, **{k: v for k, v in kwargs.items()
                                                         if k == "revision"})
    except LOAD_ERRORS as exc:
        if source.kind == "hub":
            raise _hub_error(source, exc) from exc
        raise HarnessError(f"cannot read the model config in {location}: {exc}") from exc
    estimated = (_estimate_params(config)
                 if dtype == "auto" and device.startswith("cuda") else None)
    torch_dtype = _resolve_dtype(dtype, device, estimated)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            location, dtype=torch_dtype, device_map={"": device}, **kwargs)
    except torch.cuda.OutOfMemoryError as exc:
        raise HarnessError(f"{source.name} does not fit on {device} in {torch_dtype}; try "
                           "--dtype bfloat16 or a larger GPU") from exc
    except LOAD_ERRORS as exc:
        if source.kind == "hub":
            raise _hub_error(source, exc) from exc
        raise HarnessError(f"cannot load model weights from {location}: {exc}") from exc
    return model
