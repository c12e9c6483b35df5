"""Model size and cost for the summary printout: parameter count and forward FLOPs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(model: nn.Module, input_size: Sequence[int], condition_dim: int = 0) -> int:
    """FLOPs of one forward on a zero input of ``input_size`` (e.g. ``(1, 3, 256, 256)``).

    Counted by PyTorch's ``FlopCounterMode`` (convolutions and matrix products, one multiply-add = 2 FLOPs;
    element-wise ops are not counted). Runs under ``no_grad`` on the model's device and dtype; a model built
    under ``torch.device("meta")`` is counted from shapes alone, with no memory or compute.
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    x = torch.zeros(*input_size, device=device, dtype=dtype)
    # a conditioned network (InstructIR) is called with a zero condition of its width
    extra = {"condition": torch.zeros(x.shape[0], condition_dim, device=device, dtype=dtype)} if condition_dim else {}
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x, **extra)
    return counter.get_total_flops()
