"""EDSR (Lim et al., CVPRW 2017; sanghyun-son/EDSR-PyTorch): residual blocks without batch norm, then up-sampling.

The image is scaled to ``[0, rgb_range]``, the DIV2K mean is shifted out, a 3x3 convolution opens, ``n_resblocks``
blocks (conv-ReLU-conv, scaled by ``res_scale``, plus input) and a closing convolution run with a long skip, and a
pixel-shuffle up-sampler and a last convolution give the ``scale``-times larger image, mean shifted back. The
baseline model: 16 blocks of 64 features, ``res_scale`` 1; the paper model: 32 blocks of 256, ``res_scale`` 0.1.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from src.models.backbones.base import Backbone, Head
from src.models.layers.super_resolution import DIV2K_RGB_MEAN, MeanShift, Upsampler


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


class ResBlock(nn.Module):
    """conv-ReLU-conv, scaled by ``res_scale``, plus the input."""

    def __init__(self, channels: int, res_scale: float) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(channels, channels)
        self.res_scale = float(res_scale)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(self.act(self.conv1(x))) * self.res_scale + x


class PixelRangeSR(Backbone):
    """What EDSR and RCAN share around their bodies: pixel range, mean shifts, head, long skip, up-sampler.

    Subclasses build ``body`` (features in, features out, same size)."""

    body: nn.Module

    def __init__(self, scale: int, n_feats: int, n_colors: int, rgb_range: float, rgb_mean: Sequence[float],
                 train_mean_shift: bool) -> None:
        super().__init__()
        if len(rgb_mean) != n_colors:
            raise ValueError(f"rgb_mean has {len(rgb_mean)} values for {n_colors} colour channels")
        self.scale = int(scale)
        self.in_channels = self.out_channels = n_colors
        self.rgb_range = float(rgb_range)
        self.mean_in = MeanShift(rgb_range, rgb_mean, sign=-1, trainable=train_mean_shift)
        self.mean_out = MeanShift(rgb_range, rgb_mean, sign=1, trainable=train_mean_shift)
        self.head = conv3x3(n_colors, n_feats)
        self.upsample = Upsampler(n_feats, self.scale)
        self.last = conv3x3(n_feats, n_colors)

    def forward(self, lq: Tensor, head: Head | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        x = self.head(self.mean_in(lq * self.rgb_range))
        x = self.body(x) + x
        return self.mean_out(self.last(self.upsample(x))) / self.rgb_range, {}


class EDSR(PixelRangeSR):
    """EDSR for ``scale`` x super-resolution of a ``[0, 1]`` image (any size; the output is ``scale`` times it)."""

    def __init__(self, scale: int = 2, n_resblocks: int = 16, n_feats: int = 64, res_scale: float = 1.0,
                 n_colors: int = 3, rgb_range: float = 255.0, rgb_mean: Sequence[float] = DIV2K_RGB_MEAN) -> None:
        super().__init__(scale, n_feats, n_colors, rgb_range, rgb_mean, train_mean_shift=False)
        self.body = nn.Sequential(*(ResBlock(n_feats, res_scale) for _ in range(n_resblocks)),
                                  conv3x3(n_feats, n_feats))
