"""RCAN (Zhang et al., ECCV 2018; yulunzhang/RCAN): residual-in-residual groups of channel-attention blocks.

Around the body, the same frame as EDSR (:class:`~src.models.backbones.edsr.PixelRangeSR`): pixel range, mean
shifts, head, long skip, pixel-shuffle up-sampler. The body is ``n_resgroups`` groups, each ``n_resblocks``
residual channel-attention blocks (conv-ReLU-conv, then the features times a sigmoid gate from their global
average through a ``reduction`` bottleneck, plus the input) and a closing convolution plus the group input, then
one more convolution. The official code trains its mean shifts (it marks the module, not its parameters, as
frozen), so they are trainable parameters here too.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from src.models.backbones.edsr import PixelRangeSR, conv3x3
from src.models.layers.super_resolution import DIV2K_RGB_MEAN


class ChannelAttention(nn.Module):
    """Global average, 1x1 squeeze to ``channels // reduction``, ReLU, 1x1 excite, sigmoid; scales the input."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.squeeze = nn.Conv2d(channels, channels // reduction, 1)
        self.act = nn.ReLU(inplace=True)
        self.excite = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.excite(self.act(self.squeeze(self.pool(x)))).sigmoid()


class RCAB(nn.Module):
    """Residual channel-attention block: conv-ReLU-conv, channel attention, plus the input."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(channels, channels)
        self.attention = ChannelAttention(channels, reduction)

    def forward(self, x: Tensor) -> Tensor:
        return self.attention(self.conv2(self.act(self.conv1(x)))) + x


class ResidualGroup(nn.Module):
    """``n_resblocks`` RCABs and a closing convolution, plus the group's input."""

    def __init__(self, channels: int, reduction: int, n_resblocks: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(RCAB(channels, reduction) for _ in range(n_resblocks)))
        self.end = conv3x3(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.end(self.blocks(x)) + x


class RCAN(PixelRangeSR):
    """RCAN for ``scale`` x super-resolution of a ``[0, 1]`` image (any size; the output is ``scale`` times it)."""

    def __init__(self, scale: int = 2, n_resgroups: int = 10, n_resblocks: int = 20, n_feats: int = 64,
                 reduction: int = 16, n_colors: int = 3, rgb_range: float = 255.0,
                 rgb_mean: Sequence[float] = DIV2K_RGB_MEAN) -> None:
        super().__init__(scale, n_feats, n_colors, rgb_range, rgb_mean, train_mean_shift=True)
        self.body = nn.Sequential(*(ResidualGroup(n_feats, reduction, n_resblocks) for _ in range(n_resgroups)),
                                  conv3x3(n_feats, n_feats))
