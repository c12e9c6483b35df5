"""DA-CLIP's noise network (Luo et al., ICLR 2024; Algolzw/daclip-uir ``ConditionalUNet``): a U-Net that predicts
the noise of an IR-SDE state, conditioned on the time step, the degraded image and two CLIP embeddings.

The input is ``cat([x_t - lq, lq])`` (reflect-padded at the bottom/right to a multiple of ``2 ** levels`` and
cropped back). Each level holds two residual blocks (no normalisation; the time embedding gives a scale and
shift after the first convolution), an attention block and a resampling; the attention is a linear "channel"
attention (4 heads of 32, a softmax over channels for queries and over positions for keys), except where the
image embedding is used (``use_image_context``): from the fourth level on, and in the middle, a spatial
transformer (self-attention, cross-attention to the image embedding as one token, a GEGLU feed-forward). The
degradation embedding (DA-CLIP's controller output) enters the time embedding:
``t + prompt_mlp(softmax(text_mlp(degradation)) * prompt)``. Two quirks of the release are kept: the attention
blocks sit in a residual around a pre-norm while the spatial transformer adds its own input too
(``x + LN(x) + attention``), and the cross-attention to a single token is a constant per image
(``to_out(to_v(embedding))``: its query and key weights exist but do nothing). Module names are the official
ones, so its checkpoints (``universal-ir.pth``) load as they are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ChannelNorm(nn.Module):
    """Normalisation over the channels of each pixel (biased variance, eps 1e-5), a gain and no bias."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.g = nn.Parameter(torch.ones(1, dim, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(dim=1, keepdim=True)
        var = x.var(dim=1, unbiased=False, keepdim=True)
        return (x - mean) * (var + 1e-5).rsqrt() * self.g


class PreNorm(nn.Module):
    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.fn, self.norm = fn, ChannelNorm(dim)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return self.fn(self.norm(x), context)


class Residual(nn.Module):
    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return self.fn(x, context) + x


class SinusoidalEmbedding(nn.Module):
    """``cat[sin(t f), cos(t f)]`` with ``f = exp(-i log(10000) / (half - 1))``, ``half = dim // 2``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, time: Tensor) -> Tensor:
        half = self.dim // 2
        frequencies = torch.exp(torch.arange(half, device=time.device) * -(math.log(10000) / (half - 1)))
        angles = time[:, None] * frequencies[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class ConvBlock(nn.Module):
    """3x3 convolution without bias, an optional (scale, shift), SiLU."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(dim_in, dim_out, 3, padding=1, bias=False)

    def forward(self, x: Tensor, scale_shift: tuple[Tensor, Tensor] | None = None) -> Tensor:
        x = self.proj(x)
        if scale_shift is not None:
            scale, shift = scale_shift
            x = x * (scale + 1) + shift
        return F.silu(x)


class ResBlock(nn.Module):
    """Two conv blocks, the time embedding's scale and shift after the first, a 1x1 skip where widths differ."""

    def __init__(self, dim_in: int, dim_out: int, time_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(time_dim, 2 * dim_out))
        self.block1, self.block2 = ConvBlock(dim_in, dim_out), ConvBlock(dim_out, dim_out)
        self.res_conv = nn.Conv2d(dim_in, dim_out, 1, bias=False) if dim_in != dim_out else nn.Identity()

    def forward(self, x: Tensor, time: Tensor) -> Tensor:
        scale, shift = self.mlp(time)[:, :, None, None].chunk(2, dim=1)
        return self.block2(self.block1(x, (scale, shift))) + self.res_conv(x)


class LinearAttention(nn.Module):
    """Linear attention over channels: 4 heads of 32 whatever the width; ignores any context."""

    def __init__(self, dim: int, heads: int = 4, dim_head: int = 32) -> None:
        super().__init__()
        self.heads, self.scale = heads, dim_head**-0.5
        hidden = heads * dim_head
        self.to_qkv = nn.Conv2d(dim, 3 * hidden, 1, bias=False)
        self.to_out = nn.Sequential(nn.Conv2d(hidden, dim, 1), ChannelNorm(dim))

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        b, _, h, w = x.shape
        q, k, v = (t.reshape(b, self.heads, -1, h * w) for t in self.to_qkv(x).chunk(3, dim=1))
        q = q.softmax(dim=-2) * self.scale
        k = k.softmax(dim=-1)
        v = v / (h * w)
        summary = torch.einsum("bhdn,bhen->bhde", k, v)
        out = torch.einsum("bhde,bhdn->bhen", summary, q)
        return self.to_out(out.reshape(b, -1, h, w))


class CrossAttention(nn.Module):
    """Softmax attention of ``heads`` x 32 from tokens to a context (the tokens themselves when none)."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None, dim_head: int = 32) -> None:
        super().__init__()
        inner, context_dim = heads * dim_head, context_dim or dim
        self.heads, self.scale = heads, dim_head**-0.5
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(0.0))

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        context = x if context is None else context
        b, n, _ = x.shape

        def heads(t: Tensor) -> Tensor:
            return t.reshape(b, t.shape[1], self.heads, -1).transpose(1, 2)

        q, k, v = heads(self.to_q(x)), heads(self.to_k(context)), heads(self.to_v(context))
        attention = (torch.einsum("bhid,bhjd->bhij", q, k) * self.scale).softmax(dim=-1)
        out = torch.einsum("bhij,bhjd->bhid", attention, v).transpose(1, 2).reshape(b, n, -1)
        return self.to_out(out)


class GEGLU(nn.Module):
    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, 2 * dim_out)

    def forward(self, x: Tensor) -> Tensor:
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(GEGLU(dim, dim * mult), nn.Dropout(0.0), nn.Linear(dim * mult, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, context_dim: int) -> None:
        super().__init__()
        self.attn1 = CrossAttention(dim, heads)
        self.attn2 = CrossAttention(dim, heads, context_dim)
        self.ff = FeedForward(dim)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), context) + x
        return self.ff(self.norm3(x)) + x


class SpatialTransformer(nn.Module):
    """Group norm, 1x1 in, a transformer block over the pixels, zero-initialised 1x1 out, plus the input."""

    def __init__(self, dim: int, heads: int, context_dim: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(32, dim, eps=1e-6)
        self.proj_in = nn.Conv2d(dim, dim, 1)
        self.transformer_blocks = nn.ModuleList([TransformerBlock(dim, heads, context_dim)])
        self.proj_out = nn.Conv2d(dim, dim, 1)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        b, c, h, w = x.shape
        tokens = self.proj_in(self.norm(x)).flatten(2).transpose(1, 2)
        for block in self.transformer_blocks:
            tokens = block(tokens, context)
        return self.proj_out(tokens.transpose(1, 2).reshape(b, c, h, w)) + x


class ConditionalUNet(nn.Module):
    """``forward(xt, lq, time, degradation, image)`` -> the predicted noise of ``xt`` (its shape)."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 64,
                 multipliers: Sequence[int] = (1, 2, 4, 8), context_dim: int = 512, use_degradation: bool = True,
                 use_image: bool = True) -> None:
        super().__init__()
        if width % 32:
            raise ValueError(f"DA-CLIP's U-Net needs a width that is a multiple of 32 (group norm, 32-wide heads), "
                             f"got {width}")
        self.levels = len(multipliers)
        self.use_degradation, self.use_image = use_degradation and context_dim > 0, use_image and context_dim > 0
        time_dim = 4 * width
        self.init_conv = nn.Conv2d(2 * in_channels, width, 7, padding=3, bias=False)
        self.time_mlp = nn.Sequential(SinusoidalEmbedding(width), nn.Linear(width, time_dim), nn.GELU(),
                                      nn.Linear(time_dim, time_dim))
        if self.use_degradation:
            self.prompt = nn.Parameter(torch.rand(1, time_dim))
            self.text_mlp = nn.Sequential(nn.Linear(context_dim, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
            self.prompt_mlp = nn.Linear(time_dim, time_dim)

        def attention(dim: int, level: int) -> nn.Module:
            if self.use_image and level >= 3:
                return SpatialTransformer(dim, dim // 32, context_dim)
            return LinearAttention(dim)

        dims = [width * m for m in (1, *multipliers)]
        self.downs, self.ups = nn.ModuleList(), nn.ModuleList()
        for level in range(self.levels):
            dim_in, dim_out, last = dims[level], dims[level + 1], level == self.levels - 1
            self.downs.append(nn.ModuleList([
                ResBlock(dim_in, dim_in, time_dim), ResBlock(dim_in, dim_in, time_dim),
                Residual(PreNorm(dim_in, attention(dim_in, level))),
                nn.Conv2d(dim_in, dim_out, 3, padding=1, bias=False) if last else nn.Conv2d(dim_in, dim_out, 4, 2, 1),
            ]))
            self.ups.insert(0, nn.ModuleList([
                ResBlock(dim_out + dim_in, dim_out, time_dim), ResBlock(dim_out + dim_in, dim_out, time_dim),
                Residual(PreNorm(dim_out, attention(dim_out, level))),
                nn.Conv2d(dim_out, dim_in, 3, padding=1, bias=False) if level == 0
                else nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                   nn.Conv2d(dim_out, dim_in, 3, padding=1)),
            ]))
        middle = dims[-1]
        self.mid_block1 = ResBlock(middle, middle, time_dim)
        self.mid_attn = Residual(PreNorm(middle, SpatialTransformer(middle, middle // 32, context_dim)
                                         if self.use_image else LinearAttention(middle)))
        self.mid_block2 = ResBlock(middle, middle, time_dim)
        self.final_res_block = ResBlock(2 * width, width, time_dim)
        self.final_conv = nn.Conv2d(width, out_channels, 3, padding=1)

    def forward(self, xt: Tensor, lq: Tensor, time: Tensor | float, degradation: Tensor | None = None,
                image: Tensor | None = None) -> Tensor:
        if not torch.is_tensor(time):
            time = torch.tensor([time], device=xt.device)
        height, width = xt.shape[-2:]
        multiple = 2**self.levels
        x = torch.cat([xt - lq, lq], dim=1)
        pad_w, pad_h = -width % multiple, -height % multiple
        # reflect, as the release; an image smaller than its own padding (where the release fails) replicates
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        x = self.init_conv(x)
        first = x.clone()
        t = self.time_mlp(time)
        if self.use_degradation and degradation is not None:
            t = t + self.prompt_mlp(self.text_mlp(degradation).softmax(dim=1) * self.prompt)
        context = image[:, None] if self.use_image and image is not None else None
        skips = []
        for block1, block2, attend, down in self.downs:
            x = block1(x, t)
            skips.append(x)
            x = attend(block2(x, t), context)
            skips.append(x)
            x = down(x)
        x = self.mid_block2(self.mid_attn(self.mid_block1(x, t), context), t)
        for block1, block2, attend, up in self.ups:
            x = block1(torch.cat([x, skips.pop()], dim=1), t)
            x = attend(block2(torch.cat([x, skips.pop()], dim=1), t), context)
            x = up(x)
        x = self.final_res_block(torch.cat([x, first], dim=1), t)
        return self.final_conv(x)[..., :height, :width]
