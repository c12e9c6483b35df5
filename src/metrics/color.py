"""8-bit quantisation and BT.601 luma as the BasicSR / MATLAB evaluation scripts compute them."""

from __future__ import annotations

import torch
from torch import Tensor

# BT.601 "studio swing" luma weights for R, G, B in [0, 1], giving Y on the 0-255 scale in [16, 235].
_Y_WEIGHTS = (65.481, 128.553, 24.966)
_Y_OFFSET = 16.0


def to_uint8_levels(x: Tensor) -> Tensor:
    """[0,1] floats -> integer levels 0..255 (float64), as BasicSR's ``tensor2img``.

    That function casts to float32, clamps, multiplies by 255 and rounds half to even (``np.round``); the same
    float32 steps here give bit-identical levels.
    """
    return x.to(torch.float32).clamp(0.0, 1.0).mul(255.0).round().to(torch.float64)


def rgb_levels_to_y(levels: Tensor, round_y: bool = False) -> Tensor:
    """B x 3 x H x W levels 0..255 -> B x 1 x H x W luma on the 0-255 scale, in float64.

    ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` with R, G, B the 0..255 levels, i.e. BasicSR's
    ``rgb2ycbcr(y_only=True)`` (``bgr2ycbcr`` on cv2 images) scaled back by 255. ``round_y`` rounds Y to
    integers half away from zero, as MATLAB's ``rgb2ycbcr`` does on uint8 images (Restormer's
    ``evaluate_PSNR_SSIM.m``).
    BasicSR itself evaluates this in float32; float64 here differs from it by float32 rounding only.
    """
    r, g, b = levels.to(torch.float64).unbind(dim=1)
    y = _Y_OFFSET + (_Y_WEIGHTS[0] * r + _Y_WEIGHTS[1] * g + _Y_WEIGHTS[2] * b) / 255.0
    if round_y:
        y = torch.floor(y + 0.5)
    return y.unsqueeze(1)
