"""MIRNet (Zamir et al., ECCV 2020; swz30/MIRNet): multi-scale residual blocks of dual-attention units.

Recursive residual groups of multi-scale residual blocks (MSRB), each a convolution-closed group plus its
input. An MSRB holds ``height`` scales (widths x``stride`` per halving) and ``width`` columns: the first column
runs a dual-attention unit (DAU: convolutions, spatial and channel attention side by side, fused) on
successively down-sampled features; each further column first fuses, at every scale, all scales brought to it
(selective-kernel fusion over ``height`` inputs), then runs the DAUs again; at the end every scale is brought to
full resolution and fused once more. Down-sampling is residual and anti-aliased (a fixed binomial blur before
the stride, Zhang 2019), up-sampling residual (transposed convolution beside bilinear).

Two weight-sharing quirks of the official code are kept, as its checkpoints depend on them: a scale's DAU is
one module used in every column (the state dict lists it under each column's key), and one PReLU serves every
DAU of the network (in the official code a default argument, so shared even across instances; here per
network). Works at multiples of 2^(height-1), padded with reflection.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.models.backbones.base import Backbone, Head, crop_to, pad_to_multiple


def conv(in_channels: int, out_channels: int, kernel_size: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)


class BlurPool(nn.Module):
    """Anti-aliased stride-2 down-sampling: reflection pad 1, the 3x3 binomial filter per channel, stride 2.
    The filter is a (persistent) buffer ``filt``, as in the official checkpoints."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = torch.outer(taps, taps)
        self.register_buffer("filt", (kernel / kernel.sum()).expand(channels, 1, 3, 3).clone())

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.filt, stride=2, groups=x.shape[1])


class ResidualDown(nn.Module):
    """Halve and double the channels: (1x1, PReLU, 3x3, PReLU, blur-pool, 1x1) plus (blur-pool, 1x1)."""

    def __init__(self, channels: int, bias: bool = False) -> None:
        super().__init__()
        self.top = nn.Sequential(nn.Conv2d(channels, channels, 1, bias=bias), nn.PReLU(),
                                 nn.Conv2d(channels, channels, 3, padding=1, bias=bias), nn.PReLU(),
                                 BlurPool(channels), nn.Conv2d(channels, 2 * channels, 1, bias=bias))
        self.bot = nn.Sequential(BlurPool(channels), nn.Conv2d(channels, 2 * channels, 1, bias=bias))

    def forward(self, x: Tensor) -> Tensor:
        return self.top(x) + self.bot(x)


class ResidualUp(nn.Module):
    """Double and halve the channels: (1x1, PReLU, 3x3 transposed stride 2, PReLU, 1x1) plus (bilinear, 1x1)."""

    def __init__(self, channels: int, bias: bool = False) -> None:
        super().__init__()
        self.top = nn.Sequential(
            nn.Conv2d(channels, channels, 1, bias=bias), nn.PReLU(),
            nn.ConvTranspose2d(channels, channels, 3, stride=2, padding=1, output_padding=1, bias=bias), nn.PReLU(),
            nn.Conv2d(channels, channels // 2, 1, bias=bias),
        )  # fmt: skip
        self.bot = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                 nn.Conv2d(channels, channels // 2, 1, bias=bias))

    def forward(self, x: Tensor) -> Tensor:
        return self.top(x) + self.bot(x)


def resampler(cls: type[nn.Module], channels: int, factor: int, stride: int) -> nn.Sequential:
    """log2(``factor``) residual resamplings, the channels scaled by ``stride`` (down) or divided (up) each."""
    steps = []
    for _ in range(factor.bit_length() - 1):
        steps.append(cls(channels))
        channels = channels * stride if cls is ResidualDown else channels // stride
    return nn.Sequential(*steps)


class SKFF(nn.Module):
    """Selective-kernel fusion with a PReLU after the squeeze (MIRNet's version)."""

    def __init__(self, channels: int, inputs: int, reduction: int = 8) -> None:
        super().__init__()
        hidden = max(int(channels / reduction), 4)
        self.squeeze = nn.Conv2d(channels, hidden, 1, bias=False)
        self.act = nn.PReLU()
        self.excite = nn.ModuleList(nn.Conv2d(hidden, channels, 1, bias=False) for _ in range(inputs))

    def forward(self, features: list[Tensor]) -> Tensor:
        stacked = torch.stack(features, dim=1)
        z = self.act(self.squeeze(stacked.sum(dim=1).mean(dim=(2, 3), keepdim=True)))
        weights = torch.softmax(torch.stack([fc(z) for fc in self.excite], dim=1), dim=1)
        return (stacked * weights).sum(dim=1)


class DAU(nn.Module):
    """Dual attention unit: conv, the shared PReLU, conv; spatial attention (5x5 conv of the channel max and
    mean, sigmoid) and channel attention (squeeze-excite, ReLU, sigmoid) side by side; a 1x1 fusion; plus x."""

    def __init__(self, channels: int, act: nn.Module, reduction: int = 8, bias: bool = False) -> None:
        super().__init__()
        self.conv1 = conv(channels, channels, 3, bias)
        self.act = act
        self.conv2 = conv(channels, channels, 3, bias)
        self.spatial = nn.Conv2d(2, 1, 5, padding=2, bias=False)
        self.squeeze = nn.Conv2d(channels, channels // reduction, 1, bias=bias)
        self.excite = nn.Conv2d(channels // reduction, channels, 1, bias=bias)
        self.fuse = nn.Conv2d(2 * channels, channels, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        res = self.conv2(self.act(self.conv1(x)))
        pooled = torch.cat([res.amax(dim=1, keepdim=True), res.mean(dim=1, keepdim=True)], dim=1)
        spatial = res * torch.sigmoid(self.spatial(pooled))
        channel = res * torch.sigmoid(self.excite(F.relu(self.squeeze(res.mean(dim=(2, 3), keepdim=True)))))
        return self.fuse(torch.cat([spatial, channel], dim=1)) + x


class MSRB(nn.Module):
    """Multi-scale residual block: ``height`` scales x ``width`` columns of DAUs with fusion between columns."""

    def __init__(self, width_feat: int, height: int, width: int, stride: int, bias: bool, act: nn.Module) -> None:
        super().__init__()
        self.height, self.width = height, width
        feats = [int(width_feat * stride**i) for i in range(height)]
        # one DAU per scale, listed once per column (the official aliasing)
        self.blocks = nn.ModuleList(nn.ModuleList([DAU(f, act)] * width) for f in feats)
        self.last_up = nn.ModuleDict({str(i): resampler(ResidualUp, feats[i], 2**i, stride) for i in range(1, height)})
        scales = [2**i for i in range(height - 1, 0, -1)]  # largest first, as the official dictionaries are filled
        self.down = nn.ModuleDict({f"{f}_{s}": resampler(ResidualDown, f, s, stride)
                                   for i, f in enumerate(feats) for s in scales[i:]})
        self.up = nn.ModuleDict({f"{f}_{s}": resampler(ResidualUp, f, s, stride)
                                 for i, f in enumerate(reversed(feats)) for s in scales[i:]})
        self.conv = nn.Conv2d(width_feat, width_feat, 3, padding=1, bias=bias)
        self.fuse = nn.ModuleList(SKFF(int(width_feat * stride**i), height) for i in range(height))

    def _to_scale(self, x: Tensor, j: int, k: int) -> Tensor:
        """Scale ``k``'s feature brought to scale ``j``."""
        if j == k:
            return x
        table = self.up if j < k else self.down
        return table[f"{x.shape[1]}_{2 ** abs(j - k)}"](x)

    def forward(self, x: Tensor) -> Tensor:
        outs = []
        feature = x
        for j in range(self.height):
            feature = self.blocks[j][0](feature if j == 0 else self.down[f"{feature.shape[1]}_2"](feature))
            outs.append(feature)
        for i in range(1, self.width):
            fused = [self.fuse[j]([self._to_scale(outs[k], j, k) for k in range(self.height)])
                     for j in range(self.height)]
            outs = [self.blocks[j][i](fused[j]) for j in range(self.height)]
        full = [outs[0], *(self.last_up[str(k)](outs[k]) for k in range(1, self.height))]
        return self.conv(self.fuse[0](full)) + x


class RRG(nn.Module):
    """Recursive residual group: MSRBs and a 3x3 convolution, plus the input."""

    def __init__(self, n_feat: int, blocks: int, height: int, width: int, stride: int, bias: bool,
                 act: nn.Module) -> None:
        super().__init__()
        self.msrbs = nn.Sequential(*(MSRB(n_feat, height, width, stride, bias, act) for _ in range(blocks)))
        self.conv = conv(n_feat, n_feat, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.msrbs(x)) + x


class MIRNet(Backbone):
    """Arguments as the official ``MIRNet`` (paper: 64 features, 3 groups of 2 MSRBs, 3 scales, 2 columns)."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, n_feat: int = 64, kernel_size: int = 3,
                 stride: int = 2, n_RRG: int = 3, n_MSRB: int = 2, height: int = 3, width: int = 2,  # noqa: N803
                 bias: bool = False) -> None:
        super().__init__()
        if in_channels != out_channels:
            raise ValueError(f"MIRNet adds its input to its output: in_channels ({in_channels}) must equal "
                             f"out_channels ({out_channels})")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.multiple = 2 ** (height - 1)
        act = nn.PReLU()  # every DAU's activation (the official default argument)
        self.head = nn.Conv2d(in_channels, n_feat, kernel_size, padding=(kernel_size - 1) // 2, bias=bias)
        self.groups = nn.Sequential(*(RRG(n_feat, n_MSRB, height, width, stride, bias, act) for _ in range(n_RRG)))
        self.tail = nn.Conv2d(n_feat, out_channels, kernel_size, padding=(kernel_size - 1) // 2, bias=bias)

    def forward(self, lq: Tensor, head: Head | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        x, size = pad_to_multiple(lq, self.multiple)
        return crop_to(self.tail(self.groups(self.head(x))) + x, size), {}
