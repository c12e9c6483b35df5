"""MIRNet-v2 (Zamir et al., TPAMI 2022; swz30/MIRNetv2): multi-scale residual blocks with context and fusion.

Four recursive residual groups, each a multi-scale residual block (MRB) then a convolution, plus their input.
An MRB keeps three resolutions of its input (full, 1/2, 1/4, widened by ``chan_factor`` per halving), runs a
residual context block (convolutions, a global-context attention, LeakyReLU) at each, and fuses coarse into
fine with selective-kernel fusion (SKFF: softmax weights over the inputs from pooled features); it does so
twice with the same blocks and fusions but separate up-samplers, as the official code does.

The official constructor's ``n_RRG``, ``height``, ``width`` and ``scale`` do not change the network (always
four groups with convolution groups 1, 2, 4, 4; three scales; two-input fusions; no up-sampler): they are
accepted and ignored. ``task="defocus_deblurring"`` (dual-pixel, 6 input channels) adds the shallow features
to the deep ones and has no image residual. Works at multiples of 4 (padded with reflection, as the official
test scripts pad).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.models.backbones.base import Backbone, Head, crop_to, pad_to_multiple

SLOPE = 0.2
#: the body's four groups and their convolution groups
GROUPS = (1, 2, 4, 4)


class SKFF(nn.Module):
    """Selective-kernel fusion of ``inputs`` same-shape features: softmax (over the inputs) channel weights from
    the pooled sum, then the weighted sum."""

    def __init__(self, channels: int, inputs: int = 2, reduction: int = 8) -> None:
        super().__init__()
        hidden = max(int(channels / reduction), 4)
        self.squeeze = nn.Conv2d(channels, hidden, 1, bias=False)
        self.excite = nn.ModuleList(nn.Conv2d(hidden, channels, 1, bias=False) for _ in range(inputs))

    def forward(self, features: list[Tensor]) -> Tensor:
        stacked = torch.stack(features, dim=1)  # B x inputs x C x H x W
        pooled = stacked.sum(dim=1).mean(dim=(2, 3), keepdim=True)
        z = F.leaky_relu(self.squeeze(pooled), SLOPE)
        weights = torch.softmax(torch.stack([fc(z) for fc in self.excite], dim=1), dim=1)
        return (stacked * weights).sum(dim=1)


class GlobalContext(nn.Module):
    """GCNet's context: a softmax over the pixels of a 1x1 mask pools the feature; the pooled vector through
    1x1-LeakyReLU-1x1 is added to every pixel."""

    def __init__(self, channels: int, bias: bool) -> None:
        super().__init__()
        self.mask = nn.Conv2d(channels, 1, 1, bias=bias)
        self.add1 = nn.Conv2d(channels, channels, 1, bias=bias)
        self.add2 = nn.Conv2d(channels, channels, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        weights = torch.softmax(self.mask(x).view(b, 1, h * w), dim=2)  # B x 1 x HW
        context = torch.matmul(x.view(b, 1, c, h * w), weights.view(b, 1, h * w, 1)).view(b, c, 1, 1)
        return x + self.add2(F.leaky_relu(self.add1(context), SLOPE))


class RCB(nn.Module):
    """Residual context block: grouped conv-LeakyReLU-conv, global context, LeakyReLU, plus the input."""

    def __init__(self, channels: int, bias: bool, groups: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias, groups=groups)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias, groups=groups)
        self.context = GlobalContext(channels, bias)

    def forward(self, x: Tensor) -> Tensor:
        res = self.conv2(F.leaky_relu(self.conv1(x), SLOPE))
        return F.leaky_relu(self.context(res), SLOPE) + x


class Down(nn.Module):
    """2x2 average (ceil mode, counting only the pixels inside) then a 1x1 conv to ``int(C * factor)``."""

    def __init__(self, channels: int, factor: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, int(channels * factor), 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.avg_pool2d(x, 2, ceil_mode=True, count_include_pad=False))


class Up(nn.Module):
    """A 1x1 conv to ``int(C // factor)`` then bilinear x2 (align_corners false)."""

    def __init__(self, channels: int, factor: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, int(channels // factor), 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(self.conv(x), scale_factor=2, mode="bilinear", align_corners=False)


class MRB(nn.Module):
    """Multi-scale residual block (three scales, two rounds of context and fusion, plus the input)."""

    def __init__(self, width: int, factor: float, bias: bool, groups: int) -> None:
        super().__init__()
        widths = [int(width * factor**k) for k in range(3)]
        self.rcbs = nn.ModuleList(RCB(w, bias, groups) for w in widths)
        self.down_mid = nn.Sequential(Down(widths[0], factor))
        self.down_bot = nn.Sequential(Down(widths[0], factor), Down(widths[1], factor))
        #: one up-sampler per round: ``up_top[r]`` (1/2 -> full) and ``up_mid[r]`` (1/4 -> 1/2)
        self.up_top = nn.ModuleList(Up(widths[1], factor) for _ in range(2))
        self.up_mid = nn.ModuleList(Up(widths[2], factor) for _ in range(2))
        self.fuse_top = SKFF(widths[0])
        self.fuse_mid = SKFF(widths[1])
        self.conv = nn.Conv2d(width, width, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        top, mid, bot = x, self.down_mid(x), self.down_bot(x)
        for r in range(2):
            top, mid, bot = self.rcbs[0](top), self.rcbs[1](mid), self.rcbs[2](bot)
            mid = self.fuse_mid([mid, self.up_mid[r](bot)])
            top = self.fuse_top([top, self.up_top[r](mid)])
        return self.conv(top) + x


class RRG(nn.Module):
    """Recursive residual group: MRBs, a 3x3 convolution, plus the input."""

    def __init__(self, width: int, blocks: int, factor: float, bias: bool, groups: int) -> None:
        super().__init__()
        self.mrbs = nn.Sequential(*(MRB(width, factor, bias, groups) for _ in range(blocks)))
        self.conv = nn.Conv2d(width, width, 3, padding=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.mrbs(x)) + x


class MIRNetV2(Backbone):
    """Arguments as the official ``MIRNet_v2`` (``inp_channels`` -> ``in_channels``); see the module docstring
    for the ones that change nothing."""

    multiple = 4

    def __init__(self, in_channels: int = 3, out_channels: int = 3, n_feat: int = 80, chan_factor: float = 1.5,
                 n_MRB: int = 2, bias: bool = False, task: str | None = None, n_RRG: int = 4,  # noqa: N803
                 height: int = 3, width: int = 2, scale: int = 1) -> None:
        super().__init__()
        if task not in (None, "defocus_deblurring"):
            raise ValueError(f"MIRNet-v2 task must be null or 'defocus_deblurring', got {task!r}")
        if task is None and in_channels != out_channels:
            raise ValueError("MIRNet-v2 adds its input to its output unless task='defocus_deblurring': "
                             f"in_channels ({in_channels}) must equal out_channels ({out_channels})")
        self.in_channels, self.out_channels, self.task = in_channels, out_channels, task
        self.head = nn.Conv2d(in_channels, n_feat, 3, padding=1, bias=bias)
        self.groups = nn.Sequential(*(RRG(n_feat, n_MRB, chan_factor, bias, g) for g in GROUPS))
        self.tail = nn.Conv2d(n_feat, out_channels, 3, padding=1, bias=bias)

    def forward(self, lq: Tensor, head: Head | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        x, size = pad_to_multiple(lq, self.multiple)
        shallow = self.head(x)
        deep = self.groups(shallow)
        # dual-pixel defocus: shallow features added, no image residual (6 channels in, 3 out)
        out = self.tail(deep + shallow) if self.task == "defocus_deblurring" else self.tail(deep) + x
        return crop_to(out, size), {}
