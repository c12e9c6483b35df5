"""The official all-in-one learning-rate schedule: linear warm-up, then cosine decay.

PromptIR, AdaIR and MoCE-IR step lightning-bolts' ``LinearWarmupCosineAnnealingLR(warmup_epochs=15,
max_epochs=150)`` once an epoch. That package is unmaintained, so the same closed form is expressed as
a factor for PyTorch's own ``LambdaLR``: during warm-up the rate rises linearly from
``warmup_start_lr`` and reaches the base rate at step ``warmup - 1``; afterwards it follows a half
cosine from the base rate to ``eta_min`` at step ``max_length``.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine_factor(
    step: int, warmup: int, max_length: int, start_factor: float = 0.0, min_factor: float = 0.0
) -> float:
    """Multiplier of the base rate at ``step`` (epochs or optimiser steps, as the scheduler is stepped)."""
    if step < warmup:
        return start_factor + step * (1.0 - start_factor) / max(1, warmup - 1)
    span = max(1, max_length - warmup)
    progress = min(step - warmup, span) / span
    return min_factor + 0.5 * (1.0 - min_factor) * (1.0 + math.cos(math.pi * progress))


def warmup_cosine(
    optimizer: Optimizer,
    warmup: int = 15,
    max_length: int = 150,
    warmup_start_lr: float = 0.0,
    eta_min: float = 0.0,
) -> LambdaLR:
    """``LambdaLR`` with :func:`warmup_cosine_factor`; rates are absolute, relative to the first group's lr."""
    if warmup < 0 or max_length <= 0 or warmup > max_length:
        raise ValueError(
            f"model.scheduler: need 0 <= warmup <= max_length and max_length > 0, got {warmup=} {max_length=}"
        )
    base = optimizer.param_groups[0]["lr"]
    start, low = warmup_start_lr / base, eta_min / base
    return LambdaLR(optimizer, lambda s: warmup_cosine_factor(s, warmup, max_length, start, low))
