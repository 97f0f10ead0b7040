"""Multi-process training on torch.distributed, started by ``torchrun``.

``torchrun --nproc_per_node=2 -m lowbit train RECIPE --out DIR`` sets RANK/WORLD_SIZE; each
process then trains on its shard of every batch (the recipe's batch size is the global batch)
and DDP averages gradients. Backend: nccl on GPUs, gloo on CPU. Only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as tdist

from ..errors import ConfigError


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def check_device(device: Optional[str]) -> Optional[str]:
    """``--device``: cpu, cuda or cuda:N (a GPU that exists); a ConfigError otherwise."""
    if device is None:
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be cpu, cuda or cuda:N, got {device!r}")
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"--device {device}: no CUDA GPU is available here (this torch "
                              f"build or machine has none); use --device cpu")
        if dev.index is not None and dev.index >= count:
            raise ConfigError(f"--device {device}: only {count} GPU(s), cuda:0..cuda:{count - 1}")
    return device


def init_distributed(device: Optional[str] = None) -> DistInfo:
    """Join the process group torchrun describes (or run single-process)."""
    device = check_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    if world <= 1:
        return DistInfo(device=torch.device(device or ("cuda" if use_cuda else "cpu")))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if use_cuda else "gloo")
    dev = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    return DistInfo(rank, world, local, dev)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        tdist.barrier()


def average_gradients(module: torch.nn.Module) -> None:
    """Average the gradients of ``module`` over all processes (what DDP does for the model;
    used for networks a method trains next to it)."""
    world = tdist.get_world_size()
    for p in module.parameters():
        if p.grad is not None:
            tdist.all_reduce(p.grad)
            p.grad.div_(world)


def broadcast_state(module: torch.nn.Module) -> None:
    """Give every process rank 0's parameters and buffers (e.g. batch-norm statistics)."""
    for t in list(module.parameters()) + list(module.buffers()):
        tdist.broadcast(t.data, src=0)
