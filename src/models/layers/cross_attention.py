"""Channel (transposed) cross attention shared by AdaIR's frequency head and MoCE-IR's decoder blocks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


class CrossChannelAttention(nn.Module):
    """Transposed (channel) attention with queries from ``query`` and keys/values from ``context``.

    1x1 then depth-wise projections (3x3 for q, ``kv_kernel`` for k and v), L2-normalised q and k over the
    pixels, a learned per-head temperature, softmax over channels. AdaIR's ``Chanel_Cross_Attention`` uses
    ``kv_kernel=3``, MoCE-IR's ``CrossAttention`` 7 (there the normalisation makes the output blind to a
    per-image scale of ``query``, e.g. a gate value).
    """

    def __init__(self, channels: int, heads: int, bias: bool = False, kv_kernel: int = 3) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"CrossChannelAttention: {channels} channels do not split into {heads} heads")
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.q = nn.Conv2d(channels, channels, 1, bias=bias)
        self.q_dw = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=bias)
        self.kv = nn.Conv2d(channels, channels * 2, 1, bias=bias)
        self.kv_dw = nn.Conv2d(
            channels * 2, channels * 2, kv_kernel, padding=kv_kernel // 2, groups=channels * 2, bias=bias
        )
        self.proj = nn.Conv2d(channels, channels, 1, bias=bias)

    def forward(self, query: Tensor, context: Tensor) -> Tensor:
        if query.shape != context.shape:
            raise ValueError(f"query {tuple(query.shape)} and context {tuple(context.shape)} differ in shape")
        height = query.shape[-2]
        split = "b (n c) h w -> b n c (h w)"
        q = rearrange(self.q_dw(self.q(query)), split, n=self.heads)
        k, v = (rearrange(t, split, n=self.heads) for t in self.kv_dw(self.kv(context)).chunk(2, dim=1))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1)) * self.temperature
        out = attn.softmax(dim=-1) @ v
        return self.proj(rearrange(out, "b n c (h w) -> b (n c) h w", h=height))
