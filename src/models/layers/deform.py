"""A modulated deformable convolution whose offsets and mask are predicted from the feature and a guide map.

This is AirNet's ``DCN_layer``: one convolution over ``cat(x, guide)`` gives ``3 * k * k`` channels, split into
``o1, o2, m``; the sampling offsets are ``cat(o1, o2)`` and the modulation mask ``sigmoid(m)``. The official
code calls ``mmcv.ops.modulated_deform_conv2d``; ``torchvision.ops.deform_conv2d`` with the same offset layout
computes the same function (checked against the official vectors), without a compiled extension.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torchvision.ops import deform_conv2d


class GuidedDeformConv(nn.Module):
    """``k x k`` modulated deformable convolution (stride 1, same size) steered by ``guide``.

    The offset/mask predictor starts at zero (as in the official initialisation): every tap samples its
    regular grid position with weight ``sigmoid(0) = 0.5`` until training moves it.
    """

    def __init__(
        self, in_channels: int, out_channels: int, guide_channels: int, kernel_size: int = 3, bias: bool = False
    ) -> None:
        super().__init__()
        self.padding = (kernel_size - 1) // 2
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.offset_mask = nn.Conv2d(in_channels + guide_channels, 3 * kernel_size * kernel_size, kernel_size,
                                     padding=self.padding)
        bound = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.zeros_(self.offset_mask.weight)
        nn.init.zeros_(self.offset_mask.bias)

    def forward(self, x: Tensor, guide: Tensor) -> Tensor:
        o1, o2, m = self.offset_mask(torch.cat([x, guide], dim=1)).chunk(3, dim=1)
        offset, mask = torch.cat([o1, o2], dim=1), torch.sigmoid(m)
        # torchvision's CPU kernel has no half-precision version: under autocast, sample in float32
        dtype = torch.promote_types(x.dtype, torch.float32)
        bias = None if self.bias is None else self.bias.to(dtype)
        with torch.autocast(x.device.type, enabled=False):
            out = deform_conv2d(x.to(dtype), offset.to(dtype), self.weight.to(dtype), bias, padding=self.padding,
                                mask=mask.to(dtype))
        return out.to(x.dtype)
