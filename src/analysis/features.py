"""What the analysis commands read a network's features from: degraded images per family, the device, the model
and its weights. (The features themselves are recorded by :func:`src.inference.routing.collect`.)"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor


def family_samples(datamodule: Any, per_family: int, seed: int) -> dict[str, list[Tensor]]:
    """Up to ``per_family`` degraded images of each family, chosen with ``seed``: training patches where the
    setting has training sets, else the test images of each family."""
    generator = np.random.default_rng(seed)
    chosen: dict[str, list[Tensor]] = {}
    sets: Mapping[str, Any] = getattr(datamodule, "train_sets", {}) or {}
    if sets:  # training sets are indexed (epoch, index): a new epoch gives new crops and degradations
        for family, dataset in sets.items():
            order = generator.permutation(len(dataset))
            keys = [(n // len(dataset), int(order[n % len(dataset)])) for n in range(per_family)]
            chosen[family] = [dataset[key]["lq"] for key in keys]
        return chosen
    for dataset in getattr(datamodule, "test_sets", {}).values():
        for i in generator.permutation(len(dataset)):
            sample = dataset[int(i)]
            bucket = chosen.setdefault(sample["family"], [])
            if len(bucket) < per_family:
                bucket.append(sample["lq"])
    return chosen


def analysis_device(choice: str) -> torch.device:
    """``auto``: CUDA where there is one; else the device named."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def analysed_model(cfg: Any, overridden: Iterable[str] = ()) -> tuple[Any, Any, str]:
    """The model an analysis command reads and what its weights are: a checkpoint (its stored groups unless
    ``overridden`` on the command line), pretrained weights, or a seeded random init (``(cfg, model, source)``)."""
    from src.run.assemble import build_model, load_weights, untrained

    if untrained(cfg):
        torch.manual_seed(cfg.seed)
        return cfg, build_model(cfg), f"random initialisation (seed {cfg.seed})"
    cfg, model = load_weights(cfg, overridden)
    source = f"ckpt_path={cfg.ckpt_path}" if cfg.get("ckpt_path") else f"model.pretrained={cfg.model.pretrained}"
    return cfg, model, source
