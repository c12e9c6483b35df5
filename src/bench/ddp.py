"""A one-process DDP wrapper, the way the official train.py runs even on one GPU (unused-parameter search on)."""

from __future__ import annotations

import socket

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_process_group(device: str) -> None:
    """A world of one process (gloo on CPU, NCCL on CUDA), created once per benchmark process."""
    if dist.is_initialized():
        return
    backend = "nccl" if device == "cuda" else "gloo"
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)


def wrap(module: nn.Module, device: str, find_unused_parameters: bool) -> nn.Module:
    """``module`` in DDP; gradients are all-reduced (a no-op sum over one rank) after every backward."""
    ensure_process_group(device)
    ids = [torch.cuda.current_device()] if device == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=find_unused_parameters)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
