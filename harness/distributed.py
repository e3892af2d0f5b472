"""Data parallelism across processes (GPUs, or CPU processes on gloo) through accelerate.

Started by `accelerate launch --multi_gpu --num_processes N -m harness ...` or
`torchrun --nproc_per_node N -m harness ...`: every rank loads the model on its own device,
takes every N-th example of each chunk, and rank 0 gathers the records, writes them once and
scores. Without a launcher (WORLD_SIZE unset) everything is a no-op on one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any


@dataclass(frozen=True)
class Ranks:
    rank: int
    world: int
    device: str  # this rank's device, "auto" on a single process

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@lru_cache(maxsize=1)
def current() -> Ranks:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks(0, 1, "auto")
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    device = str(state.device)
    return Ranks(state.process_index, state.num_processes,
                 "cpu" if device.startswith("cpu") else device)


def barrier() -> None:
    if current().world > 1:
        import torch.distributed as dist

        dist.barrier()


def gather(items: list[Any]) -> list[Any]:
    """Concatenate every rank's list on rank 0 (rank order); other ranks get []."""
    ranks = current()
    if ranks.world == 1:
        return items
    import torch.distributed as dist

    parts: list[Any] = [None] * ranks.world if ranks.is_main else []
    dist.gather_object(items, parts if ranks.is_main else None, dst=0)
    return [item for part in parts for item in part] if ranks.is_main else []


def broadcast(value: Any) -> Any:
    """Rank 0's value, on every rank."""
    if current().world == 1:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def finish() -> None:
    """End this rank's part: wait for every rank, then close the process group. A rank that
    exits while rank 0 still writes would leave its communication threads running when the
    interpreter shuts down, and the C++ runtime aborts such a process (SIGABRT)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
