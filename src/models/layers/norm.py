"""Layer normalisation over the channel axis of NCHW feature maps (Restormer's per-pixel LayerNorm)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ChannelLayerNorm(nn.Module):
    """Normalise each pixel's channel vector: ``(x - mean) / sqrt(var + eps) * weight + bias``.

    The variance is the biased one, as in Restormer. With ``with_bias=False`` (Restormer's "BiasFree"
    variant, used by its real-denoising models) the mean is *not* subtracted from ``x`` (it is still used
    for the variance) and there is no bias; this is neither LayerNorm nor RMSNorm, so it is written out.
    Statistics are computed in float32 so bf16 autocast does not lose them; the result keeps the input dtype.

    Two passes, the mean and then the mean of the squared deviations (as the official NAFNet's LayerNorm2d):
    ``torch.var_mean`` over the channel axis of an NCHW tensor is 3-8x slower on CPU (a strided reduction;
    `experiments/speed/README.md`), and the one-pass mean of squares loses the variance to cancellation where
    the mean is large.
    """

    def __init__(self, channels: int, with_bias: bool = True, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels)) if with_bias else None

    def forward(self, x: Tensor) -> Tensor:
        x32 = x.float()
        deviation = x32 - x32.mean(dim=1, keepdim=True)
        var = (deviation * deviation).mean(dim=1, keepdim=True)
        centred = deviation if self.bias is not None else x32
        out = centred * torch.rsqrt(var + self.eps) * self.weight[:, None, None]
        if self.bias is not None:
            out = out + self.bias[:, None, None]
        return out.to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, with_bias={self.bias is not None}, eps={self.eps}"
