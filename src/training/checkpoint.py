"""The random number generators' states in a checkpoint, so that a resumed run draws what the uncut run drew.

(Reading weight files is :mod:`src.utils.weights`.)
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

#: checkpoint key of the random number generators' states (so a resumed run draws what the uncut run drew)
RNG_KEY = "aioir_rng"


def rng_state() -> dict[str, Any]:
    """torch's (CPU and every CUDA device), numpy's and Python's generator states, as types a
    ``weights_only`` load accepts (tensors, ints, tuples)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(cached)),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Put back what :func:`rng_state` saved (a CUDA state only where the devices match)."""
    torch.set_rng_state(state["torch"])
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    random.setstate(state["python"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
