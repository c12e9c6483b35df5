"""The backbone contract (:class:`Backbone`), the head contract (:class:`Head`) and padding to a multiple.

A backbone is a plain ``nn.Module`` that knows nothing of losses, data or devices. What it publishes is
declared once, here, so that heads, losses, inference, the summary and the tests read attributes every
backbone has instead of guessing with ``getattr``; the registry-driven contract test
(``tests/models/test_contract.py``) checks every ``conf/model`` config against it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

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


class Head(nn.Module, ABC):
    """A degradation-aware part (prompts, experts, frequency modulation) built as ``head(feature_info=...)``.

    Called at each position as ``head(name, feature, image, **context)`` with the position's name, the feature
    map there and the (padded) degraded input image; returns the new feature and a dict of auxiliary losses
    (empty when none). The feature keeps its spatial size and, unless the backbone was built for another width
    there (PromptIR's latent: ``latent_out_channels``), its channels. ``context_keys`` names further tensors
    the head reads, which backbones that have them pass (MoCE-IR: ``shared``, ``latent``); others never do.
    """

    context_keys: tuple[str, ...] = ()

    @abstractmethod
    def forward(self, name: str, feature: Tensor, image: Tensor, **context: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The feature at position ``name`` after the head, and the head's auxiliary losses."""

    def degradation_embeddings(self) -> dict[str, nn.Module]:
        """Modules whose output is the head's own per-image degradation embedding (PromptIR's prompt-selection
        logits, MoCE-IR's routing logits), by name; ``python -m src.analysis.probe`` probes them beside the
        backbone's features. Default: none."""
        return {}


class Backbone(nn.Module, ABC):
    """What every backbone publishes. Subclasses set these in ``__init__`` (the defaults suit a single-scale
    RGB network that hosts no head):

    * ``in_channels``, ``out_channels``: image channels in and out (RGB 3; gray DnCNN 1; dual-pixel Restormer
      6 in, 3 out).
    * ``multiple``: the size multiple the network works at; ``forward`` pads any input up to it and crops the
      output back, so callers may pass any size (tiled inference aligns tiles to it).
    * ``channels_per_level``: the feature width of each scale level, finest first (empty: single scale).
    * ``feature_info``: where a head may act (:class:`FeatureInfo`, in call order); empty: no head fits.
    * ``scale``: how many times larger than ``lq`` the output is on each side (super-resolution networks
      such as EDSR: 2, 3, 4); 1 for every restorer that keeps the size.
    * ``condition_dim``: the width of a per-image condition the network is called with
      (``forward(lq, head, condition=B x condition_dim)``: InstructIR's instruction embedding); 0 for none.
    * ``derived_inputs``: a fixed (not learned) function from a whole 3 x H x W image in [0, 1] to the network's
      ``in_channels`` input, the image first (Water-Net's white-balanced, contrast-enhanced and gamma-corrected
      versions beside it); the data pipeline and ``src.restore`` apply it before the network (and before
      tiling); ``None`` for every network that reads the image itself.

    ``forward(lq, head=None)`` returns ``(image, aux_losses)``: the restored image, ``scale`` times the size
    of ``lq``, and a
    (possibly empty) dict of scalar auxiliary losses (a head's balance loss, AirNet's contrastive loss) that
    training adds to the objective. ``forward_train`` also returns the further outputs a loss may ask for.
    """

    in_channels: int = 3
    out_channels: int = 3
    multiple: int = 1
    channels_per_level: Sequence[int] = ()
    feature_info: Sequence[FeatureInfo] = ()
    scale: int = 1
    condition_dim: int = 0
    derived_inputs: Callable[[Tensor], Tensor] | None = None

    @abstractmethod
    def forward(self, lq: Tensor, head: Head | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """The restored image of ``lq`` (B x in_channels x H x W) and the auxiliary losses."""

    def degradation_embeddings(self, lq: Tensor) -> dict[str, Tensor]:
        """Per-image embeddings (B x D) the network makes of its input without restoring it (DA-CLIP's content
        and degradation embeddings), by name; ``python -m src.analysis.probe`` probes them. Default: none."""
        return {}

    def forward_train(
        self, lq: Tensor, head: Head | None = None
    ) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
        """``forward`` plus named outputs a loss may need besides the image (Zero-DCE's curve maps); a loss
        names what it reads (:class:`src.training.losses.Objective`). Default: no further outputs."""
        image, aux = self(lq, head=head)
        return image, aux, {}


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


class NoHead(Head):
    """The identity head: leaves every feature unchanged (a backbone with it equals the backbone alone)."""

    def __init__(self, feature_info: Sequence[FeatureInfo] | None = None) -> None:
        super().__init__()

    def forward(self, name: str, feature: Tensor, image: Tensor, **context: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return feature, {}


def add_aux(total: dict[str, Tensor], new: Mapping[str, Tensor]) -> None:
    """Accumulate a head's auxiliary losses; a name reported at several positions is summed, never dropped."""
    for name, value in new.items():
        total[name] = total[name] + value if name in total else value
