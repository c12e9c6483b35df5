"""Zero-DCE (Guo, Li et al., CVPR 2020): low-light enhancement by per-pixel, iterated quadratic curves.

DCE-Net (official ``enhance_net_nopool``) is seven 3x3 convolutions at full resolution: four in a chain,
then two that each take the concatenation of the previous output and the mirrored early feature
(symmetric skips), and a last one whose ``tanh`` gives ``iterations`` curve maps ``r`` of ``in_channels``
channels each. The image is enhanced by ``x <- x + r * (x**2 - x)`` once per map, without clamping.

The zero-reference losses (:mod:`src.training.losses_zero_dce`) need the curve maps: :meth:`ZeroDCE.forward_train`
returns them beside the enhanced image, so a training step runs the network once.
There are no head positions (``feature_info = []``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.models.backbones.base import Backbone, FeatureInfo, Head


def apply_curves(x: Tensor, curves: Tensor) -> Tensor:
    """Apply the light-enhancement curve ``x + r * (x**2 - x)`` once for each group of ``C`` curve channels."""
    channels = x.shape[1]
    if curves.shape[1] % channels:
        raise ValueError(f"{curves.shape[1]} curve channels do not split into groups of {channels}")
    for r in torch.split(curves, channels, dim=1):
        x = x + r * (x * x - x)
    return x


class ZeroDCE(Backbone):
    """DCE-Net: ``forward(lq)`` returns the enhanced image (after all ``iterations`` curve steps) and ``{}``."""

    def __init__(self, in_channels: int = 3, channels: int = 32, iterations: int = 8) -> None:
        super().__init__()
        self.iterations = iterations
        self.enc1 = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.enc2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.enc3 = nn.Conv2d(channels, channels, 3, padding=1)
        self.enc4 = nn.Conv2d(channels, channels, 3, padding=1)
        self.dec3 = nn.Conv2d(2 * channels, channels, 3, padding=1)  # [enc3, enc4]
        self.dec2 = nn.Conv2d(2 * channels, channels, 3, padding=1)  # [enc2, dec3]
        self.to_curves = nn.Conv2d(2 * channels, in_channels * iterations, 3, padding=1)  # [enc1, dec2]
        self.multiple = 1
        self.in_channels = self.out_channels = in_channels
        self.feature_info: list[FeatureInfo] = []

    def curves(self, x: Tensor) -> Tensor:
        """The curve maps ``r`` in ``[-1, 1]``: ``iterations`` groups of ``C`` channels, in order of use."""
        x1 = F.relu(self.enc1(x))
        x2 = F.relu(self.enc2(x1))
        x3 = F.relu(self.enc3(x2))
        x4 = F.relu(self.enc4(x3))
        x5 = F.relu(self.dec3(torch.cat([x3, x4], 1)))
        x6 = F.relu(self.dec2(torch.cat([x2, x5], 1)))
        return torch.tanh(self.to_curves(torch.cat([x1, x6], 1)))


    def forward(self, lq: Tensor, head: Head | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        return apply_curves(lq, self.curves(lq)), {}

    def forward_train(
        self, lq: Tensor, head: Head | None = None
    ) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
        """The enhanced image and, for the zero-reference loss, the curve maps (the network runs once)."""
        curves = self.curves(lq)
        return apply_curves(lq, curves), {}, {"curves": curves}
