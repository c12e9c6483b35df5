"""Restormer's transformer block and its two halves, reused by PromptIR, AdaIR and MoCE-IR.

* :class:`ChannelAttention` (MDTA): attention between channels, so its cost is linear in the pixel count;
* :class:`GatedDconvFFN` (GDFN): a depth-wise-convolved, GELU-gated feed-forward;
* :class:`TransformerBlock`: pre-norm residual ``x + attn(norm(x))`` then ``x + ffn(norm(x))``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from src.models.layers.norm import ChannelLayerNorm


class ChannelAttention(nn.Module):
    """Multi-Dconv head transposed attention: a ``C/heads x C/heads`` attention map per head.

    q, k and v come from a 1x1 then a depth-wise 3x3 convolution; q and k are L2-normalised over the
    pixels, so their product is a cosine similarity, which a learned per-head ``temperature`` rescales
    before the softmax.
    """

    def __init__(self, channels: int, heads: int, bias: bool = False) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"ChannelAttention: {channels} channels do not split into {heads} heads")
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(channels, channels * 3, 1, bias=bias)
        self.qkv_dw = nn.Conv2d(channels * 3, channels * 3, 3, padding=1, groups=channels * 3, bias=bias)
        self.proj = nn.Conv2d(channels, channels, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        height = x.shape[-2]
        q, k, v = (
            rearrange(t, "b (n c) h w -> b n c (h w)", n=self.heads)
            for t in self.qkv_dw(self.qkv(x)).chunk(3, dim=1)
        )
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1)) * self.temperature
        out = attn.softmax(dim=-1) @ v
        return self.proj(rearrange(out, "b n c (h w) -> b (n c) h w", h=height))


class GatedDconvFFN(nn.Module):
    """Gated-Dconv feed-forward: ``proj_out(gelu(a) * b)``, with ``a, b`` the halves of a depth-wise conv.

    The hidden width is ``int(channels * expansion)``: truncated, as the official code does (48 -> 127).
    """

    def __init__(self, channels: int, expansion: float = 2.66, bias: bool = False) -> None:
        super().__init__()
        hidden = int(channels * expansion)
        self.proj_in = nn.Conv2d(channels, hidden * 2, 1, bias=bias)
        self.dw = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=bias)
        self.proj_out = nn.Conv2d(hidden, channels, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        gate, value = self.dw(self.proj_in(x)).chunk(2, dim=1)
        return self.proj_out(F.gelu(gate) * value)


class TransformerBlock(nn.Module):
    """Pre-norm residual block: channel attention, then the gated feed-forward, each with its own norm."""

    def __init__(
        self,
        channels: int,
        heads: int,
        ffn_expansion_factor: float = 2.66,
        bias: bool = False,
        norm_with_bias: bool = True,
    ) -> None:
        super().__init__()
        self.attn_norm = ChannelLayerNorm(channels, with_bias=norm_with_bias)
        self.attn = ChannelAttention(channels, heads, bias=bias)
        self.ffn_norm = ChannelLayerNorm(channels, with_bias=norm_with_bias)
        self.ffn = GatedDconvFFN(channels, ffn_expansion_factor, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.attn_norm(x))
        return x + self.ffn(self.ffn_norm(x))
