"""ConStyle v2's prompting on any backbone (``model/head=constyle``): its style encoder reads the degraded image and
its prompt ``q1`` modulates the backbone's features at every head position, as ConStyle's NAFNet modulates its
bottleneck: ``fuse([f, f * proj(q1)])`` (a linear projection of the prompt to the position's width, a bias-free 1x1
convolution back from twice the width). The encoder runs once per forward (on the padded input the backbone
hands the head); ``strategy=constyle_pretrain`` pre-trains it and ``strategy=constyle_frozen`` freezes it, as for
``model=constyle_v2_nafnet``.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from src.models.backbones.base import FeatureInfo, Head
from src.models.layers.constyle import EMBED_DIM, StyleEncoder


class ConStyleHead(Head):
    """The style encoder and, per head position, a prompt projection and a 1x1 fusion."""

    def __init__(self, feature_info: Sequence[FeatureInfo]) -> None:
        super().__init__()
        if not feature_info:
            raise ValueError("ConStyleHead needs at least one head position (the backbone's feature_info)")
        self.prompter = StyleEncoder(classes=None)
        self.projections = nn.ModuleDict({f.name: nn.Linear(EMBED_DIM, f.channels) for f in feature_info})
        self.fusions = nn.ModuleDict({f.name: nn.Conv2d(2 * f.channels, f.channels, 1, bias=False)
                                      for f in feature_info})
        self._seen: weakref.ref | None = None
        self._q1: Tensor | None = None

    def prompt(self, image: Tensor) -> Tensor:
        """``q1`` of ``image`` (B x 128), computed once per forward: the backbone hands every position the same
        input tensor, recognised by identity (a weak reference, so a later tensor is never mistaken for it)."""
        if self._seen is None or self._seen() is not image:
            (_, q1), _, _ = self.prompter(image)
            self._seen, self._q1 = weakref.ref(image), q1
        return self._q1

    def forward(self, name: str, feature: Tensor, image: Tensor, **context: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        q = self.projections[name](self.prompt(image))[..., None, None].to(feature.dtype)
        return self.fusions[name](torch.cat([feature, feature * q], dim=1)), {}

    def degradation_embeddings(self) -> dict[str, nn.Module]:
        return {"constyle_q1": self.prompter.mlp2}
