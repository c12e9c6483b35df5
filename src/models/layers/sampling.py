"""Resolution changes by pixel (un)shuffle, as in Restormer, PromptIR, AdaIR and MoCE-IR.

A 3x3 convolution first sets the channel count so that the shuffle lands on the wanted width:
down-sampling halves H, W and doubles channels; up-sampling does the reverse.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class Downsample(nn.Module):
    """``C x H x W -> 2C x H/2 x W/2``: 3x3 conv to ``C/2`` channels, then pixel-unshuffle (x4 channels)."""

    def __init__(self, channels: int, bias: bool = False) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError(f"Downsample needs an even channel count, got {channels}")
        self.conv = nn.Conv2d(channels, channels // 2, 3, padding=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.pixel_unshuffle(self.conv(x), 2)


class Upsample(nn.Module):
    """``C x H x W -> C/2 x 2H x 2W``: 3x3 conv to ``2C`` channels, then pixel-shuffle (/4 channels)."""

    def __init__(self, channels: int, bias: bool = False) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError(f"Upsample needs an even channel count, got {channels}")
        self.conv = nn.Conv2d(channels, channels * 2, 3, padding=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.pixel_shuffle(self.conv(x), 2)
