"""Parts the EDSR-family super-resolution networks share: the mean shift, the pixel-shuffle up-sampler and the
pixel range they compute in.

EDSR and RCAN work on pixel values in ``[0, rgb_range]`` (255) with the DIV2K mean subtracted by a 1x1
convolution and added back at the end. The mean shifts are ordinary parameters that the released files carry
(EDSR freezes them; RCAN's official code, by a quirk, trains them), so they are loaded rather than rebuilt.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

#: the DIV2K training set's RGB mean in [0, 1] (EDSR-PyTorch and RCAN ``common.MeanShift`` defaults)
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


class MeanShift(nn.Conv2d):
    """A 1x1 convolution that adds ``sign * rgb_range * mean`` per channel (identity weight)."""

    def __init__(self, rgb_range: float, mean: Sequence[float] = DIV2K_RGB_MEAN, sign: int = -1,
                 trainable: bool = False) -> None:
        channels = len(mean)
        super().__init__(channels, channels, kernel_size=1)
        with torch.no_grad():
            self.weight.copy_(torch.eye(channels).view(channels, channels, 1, 1))
            self.bias.copy_(sign * rgb_range * torch.tensor(mean, dtype=torch.float32))
        self.weight.requires_grad_(trainable)
        self.bias.requires_grad_(trainable)


class UpsampleStage(nn.Module):
    """One up-sampling step: a 3x3 convolution to ``factor**2`` times the channels, then a pixel shuffle."""

    def __init__(self, channels: int, factor: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, factor * factor * channels, 3, padding=1)
        self.shuffle = nn.PixelShuffle(factor)

    def forward(self, x: Tensor) -> Tensor:
        return self.shuffle(self.conv(x))


def upsample_factors(scale: int) -> list[int]:
    """The pixel-shuffle steps of an overall ``scale``: 2 repeated for powers of two, one step of 3 for 3."""
    if scale == 3:
        return [3]
    if scale >= 2 and scale & (scale - 1) == 0:
        return [2] * (scale.bit_length() - 1)
    raise ValueError(f"super-resolution scale must be 2, 3, 4 or another power of two, got {scale}")


class Upsampler(nn.Sequential):
    """Up-sampling by ``scale`` in pixel-shuffle steps (EDSR's ``common.Upsampler`` without its unused options)."""

    def __init__(self, channels: int, scale: int) -> None:
        super().__init__(*(UpsampleStage(channels, f) for f in upsample_factors(scale)))
