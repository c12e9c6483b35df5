"""Contracts shared by every backbone: where heads may act, and padding to the network's multiple.

A backbone is a plain ``nn.Module`` that knows nothing of losses, data or devices. It publishes
``feature_info`` so that a head can be sized from it (no hard-coded channel counts), and its
``forward(lq, head=None)`` returns ``(pred, aux_losses)`` where ``aux_losses`` is a (possibly empty)
dict of scalar tensors that the LightningModule adds to the training loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class FeatureInfo:
    """One place in a backbone where a head may act on the features.

    ``name`` identifies the position (e.g. ``"decoder3"``), ``channels`` the feature width there and
    ``reduction`` the spatial stride relative to the input image.
    """

    name: str
    channels: int
    reduction: int


class Head(Protocol):
    """A degradation-aware part (prompts, experts, frequency modulation) built from ``feature_info``.

    Called at each position as ``head(name, feature, image)`` with the position's name, the feature
    map there and the (padded) degraded input image; returns the new feature and a dict of auxiliary
    losses (empty when none). The feature keeps its spatial size and, unless the backbone was built for
    another width there (PromptIR's latent: ``latent_out_channels``), its channels.
    """

    def __call__(self, name: str, feature: Tensor, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]: ...


def pad_to_multiple(x: Tensor, multiple: int, mode: str = "reflect") -> tuple[Tensor, tuple[int, int]]:
    """Pad H and W on the bottom/right up to ``multiple``; returns the padded tensor and the original size.

    Reflect padding needs the pad to be smaller than the side; we fall back to replicate for tiny inputs.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        if mode == "reflect" and (ph >= h or pw >= w):
            mode = "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def crop_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Crop back to the original ``(H, W)`` after :func:`pad_to_multiple`."""
    return x[..., : size[0], : size[1]]


class NoHead(nn.Module):
    """The identity head (``model/head=none``): leaves every feature unchanged."""

    def __init__(self, feature_info: list[FeatureInfo] | None = None) -> None:
        super().__init__()

    def forward(self, name: str, feature: Tensor, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return feature, {}


def add_aux(total: dict[str, Tensor], new: Mapping[str, Tensor]) -> None:
    """Accumulate a head's auxiliary losses; a name reported at several positions is summed, never dropped."""
    for name, value in new.items():
        total[name] = total[name] + value if name in total else value
