"""DeepDeblur (Nah, Kim and Lee, CVPR 2017; the authors' PyTorch ``MSResNet``): coarse-to-fine deblurring.

The blurry image and the coarser levels of its Gaussian pyramid are restored coarsest first, each level by a
residual network of ``n_resblocks`` blocks (conv-ReLU-conv plus the input; no normalisation); a level's result
is up-sampled (a convolution to 4x the channels, then pixel shuffle) and concatenated to the next finer input.
It returns the restored pyramid, finest first; the finest is the restored image.

As the official code, the network works in 0..``rgb_range`` units with half the range subtracted; the suite's
[0, 1] images are scaled on the way in and out. The pyramid is skimage's ``pyramid_gaussian`` (Gaussian of
sigma 2/3, scipy's ``reflect`` border, then a bilinear halving) computed in torch: the official data code
builds it with skimage for the blurry input and the sharp target alike. Each level must be twice the next, so
the network pads to a multiple of 2^(n_scales-1) with edge values, as the official demo mode does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.models.backbones.base import Backbone, Head, crop_to, pad_to_multiple

#: skimage's pyramid_reduce smooths with sigma = 2 * downscale / 6 and scipy's truncate of 4 sigmas
PYRAMID_SIGMA = 2 * 2 / 6
PYRAMID_RADIUS = int(4 * PYRAMID_SIGMA + 0.5)


def _symmetric_pad(x: Tensor, pad: int, dim: int) -> Tensor:
    """scipy.ndimage's ``reflect`` border (the edge sample repeated: d c b a | a b c d) along ``dim``."""
    size = x.shape[dim]
    index = torch.arange(-pad, size + pad, device=x.device)
    period = 2 * size
    index = index % period
    index = torch.where(index >= size, period - 1 - index, index)
    return x.index_select(dim, index)


def pyramid_reduce(x: Tensor) -> Tensor:
    """One level down: the Gaussian of skimage's ``pyramid_reduce`` (separable, per channel), then a bilinear
    resize to ``ceil(h/2) x ceil(w/2)`` with pixel-area alignment (skimage's ``resize``, order 1)."""
    taps = torch.arange(-PYRAMID_RADIUS, PYRAMID_RADIUS + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (taps / PYRAMID_SIGMA) ** 2)
    kernel = (kernel / kernel.sum()).to(x.dtype).to(x.device)
    b, c, h, w = x.shape
    flat = x.reshape(b * c, 1, h, w)
    flat = F.conv2d(_symmetric_pad(flat, PYRAMID_RADIUS, 2), kernel.view(1, 1, -1, 1))
    flat = F.conv2d(_symmetric_pad(flat, PYRAMID_RADIUS, 3), kernel.view(1, 1, 1, -1))
    smoothed = flat.reshape(b, c, h, w)
    return F.interpolate(smoothed, size=(math.ceil(h / 2), math.ceil(w / 2)), mode="bilinear", align_corners=False)


def gaussian_pyramid(x: Tensor, levels: int) -> list[Tensor]:
    """``[x, reduce(x), reduce(reduce(x)), ...]``: ``levels`` images, finest first."""
    pyramid = [x]
    for _ in range(levels - 1):
        pyramid.append(pyramid_reduce(pyramid[-1]))
    return pyramid


class ResBlock(nn.Module):
    """conv-ReLU-conv plus the input."""

    def __init__(self, features: int, kernel_size: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, kernel_size, padding=kernel_size // 2)
        self.conv2 = nn.Conv2d(features, features, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class LevelNet(nn.Module):
    """One pyramid level's restorer: a convolution in, residual blocks, a convolution out (no skip overall)."""

    def __init__(self, in_channels: int, out_channels: int, features: int, blocks: int, kernel_size: int) -> None:
        super().__init__()
        self.head = nn.Conv2d(in_channels, features, kernel_size, padding=kernel_size // 2)
        self.blocks = nn.Sequential(*(ResBlock(features, kernel_size) for _ in range(blocks)))
        self.tail = nn.Conv2d(features, out_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.tail(self.blocks(self.head(x)))


class UpLevel(nn.Module):
    """A coarse level's result to the next finer size: a convolution to 4x the channels, then pixel shuffle."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 4 * channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor) -> Tensor:
        return F.pixel_shuffle(self.conv(x), 2)


class DeepDeblur(Backbone):
    """The multi-scale ResNet. ``levels[s]`` restores pyramid level ``s`` (0 finest); the finer levels take the
    blurry level concatenated with the up-sampled result of the level below (6 channels)."""

    def __init__(self, n_scales: int = 3, n_resblocks: int = 19, n_feats: int = 64, kernel_size: int = 5,
                 rgb_range: float = 255.0, channels: int = 3) -> None:
        super().__init__()
        if n_scales < 1:
            raise ValueError(f"DeepDeblur needs at least one scale, got n_scales={n_scales}")
        self.in_channels = self.out_channels = channels
        self.n_scales = n_scales
        self.multiple = 2 ** (n_scales - 1)
        self.rgb_range = float(rgb_range)
        self.levels = nn.ModuleList(
            LevelNet(channels * (1 if s == n_scales - 1 else 2), channels, n_feats, n_resblocks, kernel_size)
            for s in range(n_scales)
        )
        #: ``ups[s - 1]`` brings level ``s`` up to level ``s - 1``
        self.ups = nn.ModuleList(UpLevel(channels, kernel_size) for _ in range(n_scales - 1))

    def restore_pyramid(self, pyramid: list[Tensor]) -> list[Tensor]:
        """The restored pyramid (finest first) of a blurry one (finest first, [0, 1]; each level twice the next)."""
        if len(pyramid) != self.n_scales:
            raise ValueError(f"DeepDeblur with {self.n_scales} scales needs {self.n_scales} levels, got {len(pyramid)}")
        mean = self.rgb_range / 2
        inputs = [level * self.rgb_range - mean for level in pyramid]
        outputs: list[Tensor] = [inputs[0]] * self.n_scales
        x = inputs[-1]
        for s in reversed(range(self.n_scales)):
            outputs[s] = self.levels[s](x)
            if s > 0:
                x = torch.cat([inputs[s - 1], self.ups[s - 1](outputs[s])], dim=1)
        return [(out + mean) / self.rgb_range for out in outputs]

    def _run(self, lq: Tensor) -> tuple[list[Tensor], tuple[int, int]]:
        x, size = pad_to_multiple(lq, self.multiple, mode="replicate")
        return self.restore_pyramid(gaussian_pyramid(x, self.n_scales)), size

    def forward(self, lq: Tensor, head: Head | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        outputs, size = self._run(lq)
        return crop_to(outputs[0], size), {}

    def forward_train(
        self, lq: Tensor, head: Head | None = None
    ) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
        """Also the coarser restored levels (``scale1``, ``scale2``, ...) for the multi-scale loss."""
        outputs, size = self._run(lq)
        return crop_to(outputs[0], size), {}, {f"scale{s}": out for s, out in enumerate(outputs[1:], start=1)}
