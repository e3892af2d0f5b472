"""Process-wide glibc malloc tuning, an explicit opt-in of the command line (`harness eval
--malloc-tuning`, on by default there; see cli.py). Library code never calls it: loading a
model must not change how the whole process allocates memory.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

# glibc malloc: blocks up to this size come from the heap, and the heap is trimmed back to the
# OS only above TRIM_THRESHOLD (see keep_freed_memory).
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed activation buffers for reuse instead of returning each one
    to the OS (the default for blocks over its mmap threshold).

    A forward pass on CPU allocates and frees many tensors of a few to tens of MB; with the
    default, every one is a fresh mmap whose pages fault in on first touch, and on small VMs
    that costs more than the arithmetic (scoring periodic_elements/subtask_0 on SmolLM2-135M,
    2 cores: 59.7 s -> 42.6 s). Numbers are unchanged: only where memory comes from changes.
    The process keeps up to TRIM_THRESHOLD of freed memory. Linux with glibc only; calling it
    again sets the same values. Returns whether it is in effect.
    """
    if sys.platform != "linux":
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's <malloc.h>
    return bool(mallopt(m_mmap_threshold, MMAP_THRESHOLD)) and bool(
        mallopt(m_trim_threshold, TRIM_THRESHOLD))


def wanted(environ: Mapping[str, str]) -> bool:
    """The command line's default: on, unless HARNESS_MALLOC_TUNING=0 (for scripts and CI that
    cannot pass a flag through)."""
    return environ.get("HARNESS_MALLOC_TUNING", "1") != "0"
