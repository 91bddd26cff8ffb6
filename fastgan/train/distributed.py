"""Multi-process training on ``torch.distributed`` as started by ``torchrun``: one process per
GPU (NCCL) or per CPU process (gloo), DDP-wrapped models, rank 0 alone writing logs,
samples and checkpoints, and small all-reduces at record steps so that every rank makes the
same decision (stop, skip, diverged) at the same step."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["Dist", "setup", "wrap", "cleanup"]


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_reduce(self, t: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """In place; "sum", "max" or "mean" over ranks (no-op in one process)."""
        if self.enabled:
            dist.all_reduce(t, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
            if op == "mean":
                t /= self.world
        return t


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device is available (use --device cpu)")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device(name)


def setup(device: str = "auto") -> Dist:
    """The process group from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK), if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=resolve_device(device))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local)
    if not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend, rank=rank, world_size=world)
    return Dist(rank, world, local, dev)


def wrap(model: nn.Module, d: Dist) -> nn.Module:
    """DDP around ``model`` (which keeps its own parameters: ``model`` stays the bare module)."""
    if not d.enabled or not any(p.requires_grad for p in model.parameters()):
        return model
    ids = [d.device.index] if d.device.type == "cuda" else None
    # broadcast_buffers off: batch-norm buffers stay per rank (no collective per forward)
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)


def cleanup(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()
