"""Process-group helpers: one code path for a single process and for `torchrun` DDP (gloo on CPU, NCCL on GPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in a (possibly trivial) process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True on the process that does all file I/O and printing."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """True when more than one process trains together."""
        return self.world_size > 1


def default_device() -> torch.device:
    """CUDA (this process's local GPU under torchrun) when present, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
    return torch.device("cpu")


def init_distributed() -> DistInfo:
    """Join the torchrun process group if the environment names one; a no-op for a single process.

    Returns:
        DistInfo with rank and world size (0 and 1 without torchrun).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not torch_dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch_dist.init_process_group(backend=backend)
    return DistInfo(torch_dist.get_rank(), torch_dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def current() -> DistInfo:
    """The DistInfo of this process (rank 0 of 1 when no group is initialised)."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        return DistInfo(
            torch_dist.get_rank(), torch_dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))
        )
    return DistInfo()


def barrier() -> None:
    """Wait for every rank; a no-op without a process group."""
    if current().enabled:
        torch_dist.barrier()


def all_reduce_mean(values: torch.Tensor) -> torch.Tensor:
    """Average a tensor over ranks (identity for one process). Shape is kept."""
    if not current().enabled:
        return values
    out = values.clone()
    torch_dist.all_reduce(out, op=torch_dist.ReduceOp.SUM)
    return out / current().world_size


def broadcast_object(obj: object, src: int = 0) -> object:
    """Send a picklable object from rank `src` to all ranks (identity for one process)."""
    if not current().enabled:
        return obj
    box = [obj]
    torch_dist.broadcast_object_list(box, src=src)
    return box[0]
