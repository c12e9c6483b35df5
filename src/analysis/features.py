"""Features a network shows at each of its head positions, for probing what it knows about the degradation.

A :class:`Tap` is passed as the network's head: at every position it records the feature the backbone shows
there (averaged over space: one vector per image) and then hands it to the model's own head, if it has one,
so the network computes exactly what it computes without the tap. A head's own degradation embeddings
(``Head.degradation_embeddings``: PromptIR's prompt selection, MoCE-IR's routing) are recorded beside them as
``head:<position>.<name>``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from src.models.backbones.base import Head


class Tap(Head):
    """Records ``mean over H, W`` of each position's feature, then applies ``inner`` (the model's head)."""

    def __init__(self, inner: Head | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.context_keys = inner.context_keys if inner is not None else ()
        self.recorded: dict[str, list[Tensor]] = defaultdict(list)

    def forward(self, name: str, feature: Tensor, image: Tensor, **context: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        self.recorded[name].append(feature.detach().float().mean(dim=(2, 3)).cpu())
        if self.inner is None:
            return feature, {}
        return self.inner(name, feature, image, **context)


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


@torch.inference_mode()
def collect(net: torch.nn.Module, head: Head | None, images: Iterable[tuple[str, Tensor]],
            device: torch.device) -> tuple[dict[str, np.ndarray], list[str]]:
    """Per position (and per embedding the network makes of its input: DA-CLIP's), an ``N x C`` array of the
    images' features (in order), and the N family labels."""
    tap = Tap(head)
    labels = []
    embeddings = head.degradation_embeddings() if head is not None else {}

    def keep(name: str):
        def record(module: torch.nn.Module, args: Any, output: Tensor) -> None:
            value = output.detach().float()
            tap.recorded[f"head:{name}"].append((value.mean(dim=(2, 3)) if value.dim() == 4 else value).cpu())
        return record

    handles = [module.register_forward_hook(keep(name)) for name, module in embeddings.items()]
    try:
        for family, image in images:
            x = image.unsqueeze(0).to(device)
            if net.feature_info:  # a network with head positions runs; one with its own embeddings need not
                net(x, head=tap)
            for name, value in net.degradation_embeddings(x).items():
                tap.recorded[f"net:{name}"].append(value.detach().float().cpu())
            labels.append(family)
    finally:
        for handle in handles:
            handle.remove()
    return {name: torch.cat(parts).numpy() for name, parts in tap.recorded.items()}, labels


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
