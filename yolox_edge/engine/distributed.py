"""torch.distributed helpers for runs started by ``torchrun`` (env:// rendezvous)."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group torchrun prepared (gloo on CPU, nccl on CUDA); no-op alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return info


def local_device(requested: str, info_local_rank: int | None = None) -> torch.device:
    """Resolve 'auto' / 'cpu' / 'cuda' / 'cuda:N'; under torchrun each rank takes its LOCAL_RANK GPU."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            from ..errors import UserError, flag_value
            raise UserError(f"{flag_value('--device', 'device', requested)}: no CUDA GPU is visible; use "
                            f"{flag_value('--device', 'device', 'cpu')}")
        if requested == "cuda":
            lr = info_local_rank if info_local_rank is not None else int(os.environ.get("LOCAL_RANK", "0"))
            requested = f"cuda:{lr}"
        torch.cuda.set_device(torch.device(requested))
    return torch.device(requested)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_int(value: int, info: DistInfo, device: torch.device) -> int:
    """Rank 0's value on every rank (the multi-scale size must agree across ranks)."""
    if not info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.long, device=device)
    dist.broadcast(t, 0)
    return int(t.item())


def all_reduce_mean(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if not info.enabled:
        return x
    y = x.detach().clone()
    dist.all_reduce(y)
    return y / info.world_size


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
