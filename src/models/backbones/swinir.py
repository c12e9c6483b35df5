"""SwinIR (Liang et al., ICCVW 2021) for same-size restoration (denoising, JPEG): residual groups of Swin blocks.

A 3x3 convolution embeds the image; residual Swin transformer groups (RSTB: Swin blocks, then a convolution,
plus the group's input) run at full resolution on ``H*W`` tokens; a LayerNorm, a convolution with a long skip
and a last convolution predict a residual added to the input. Blocks alternate plain and shifted windows.

Matching the official code where it matters for equal outputs:

* a fixed RGB mean ``(0.4488, 0.4371, 0.4040)`` is subtracted (a constant, not a buffer: the official state
  dicts hold none) and ``img_range`` scales the input;
* H and W are reflect-padded to a multiple of the window and the output cropped back;
* each shifted block keeps its ``attn_mask`` buffer for ``img_size`` (it is in every checkpoint) and uses it
  when the padded input has that size; any other size gets a mask computed for it.

Only the same-size configuration exists here (``upscale=1``, no upsampler): the super-resolution tails are
another network's job.

Head positions (``feature_info``): after each residual group, as a ``B x embed_dim x H x W`` map at full
resolution (``rstb0``, ``rstb1``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp, to_2tuple, trunc_normal_
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from src.models.backbones.base import Backbone, FeatureInfo, Head, add_aux, crop_to, pad_to_multiple

#: the RGB mean the official code subtracts (DIV2K's); other channel counts subtract nothing.
RGB_MEAN = (0.4488, 0.4371, 0.4040)
#: the value the official shifted-window mask gives to pairs of tokens from different regions.
MASK_VALUE = -100.0
RESI_CONNECTIONS = ("1conv", "3conv")


# ----------------------------------------------------------------------------------------------- windows


def window_partition(x: Tensor, window: int) -> Tensor:
    """``B x H x W x C`` -> ``(B * nW) x window**2 x C``, windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_merge(windows: Tensor, window: int, height: int, width: int) -> Tensor:
    """Inverse of :func:`window_partition`: ``(B * nW) x window**2 x C`` -> ``B x H x W x C``."""
    c = windows.shape[-1]
    x = windows.view(-1, height // window, width // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, height, width, c)


def relative_position_index(window: int) -> Tensor:
    """``window**2 x window**2`` index into the ``(2*window - 1)**2`` relative-offset bias table."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[..., 0] * (2 * window - 1) + rel[..., 1]


def shifted_window_mask(height: int, width: int, window: int, shift: int, device=None) -> Tensor:
    """``nW x window**2 x window**2`` additive mask (0 or -100) for windows shifted by ``shift``.

    After the cyclic shift, a window at the bottom/right edge holds tokens from up to four image regions that
    were not neighbours; attention between different regions is suppressed.
    """
    region = torch.zeros(1, height, width, 1, device=device)
    bands = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for i, rows in enumerate(bands):
        for j, cols in enumerate(bands):
            region[:, rows, cols, :] = 3 * i + j
    ids = window_partition(region, window).squeeze(-1)
    diff = ids.unsqueeze(1) - ids.unsqueeze(2)
    return torch.zeros_like(diff).masked_fill(diff != 0, MASK_VALUE)


# ----------------------------------------------------------------------------------------------- blocks


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window, with a learned bias per relative offset and head."""

    def __init__(
        self, dim: int, window: int, heads: int, qkv_bias: bool = True, qk_scale: float | None = None,
        attn_drop: float = 0.0, proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"WindowAttention: {dim} channels do not split into {heads} heads")
        self.heads = heads
        self.window = window
        self.scale = qk_scale or (dim // heads) ** -0.5
        self.attn_drop = attn_drop
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        # persistent: the official checkpoints store it
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        trunc_normal_(self.relative_position_bias_table, std=0.02)

    def position_bias(self) -> Tensor:
        """``heads x N x N`` bias for the ``N = window**2`` tokens of a window."""
        n = self.window * self.window
        return self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1).permute(2, 0, 1)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x``: ``(B * nW) x N x C``; ``mask``: ``nW x N x N`` (0 / -100) or ``None``."""
        bw, n, c = x.shape
        q, k, v = self.qkv(x).view(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        bias = self.position_bias().unsqueeze(0)  # 1 x heads x N x N
        if mask is not None:
            # fold the windows into the head axis so that one (1, nW*heads, N, N) bias broadcasts over B
            nw = mask.shape[0]
            bias = (bias + mask.unsqueeze(1)).reshape(1, nw * self.heads, n, n)
            q, k, v = (t.reshape(bw // nw, nw * self.heads, n, -1) for t in (q, k, v))
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias.to(q.dtype), dropout_p=self.attn_drop if self.training else 0.0, scale=self.scale
        )
        out = out.reshape(bw, self.heads, n, -1).transpose(1, 2).reshape(bw, n, c)
        return self.proj_drop(self.proj(out))

    def extra_repr(self) -> str:
        return f"window={self.window}, heads={self.heads}"


class SwinBlock(nn.Module):
    """Pre-norm window attention (optionally on cyclically shifted windows) and MLP, each residual.

    ``resolution`` is the token grid of ``img_size``: the stored ``attn_mask`` is made for it. As in the
    official code, a grid no larger than the window gets one window and no shift.
    """

    def __init__(
        self, dim: int, resolution: tuple[int, int], heads: int, window: int, shift: int, mlp_ratio: float = 2.0,
        qkv_bias: bool = True, qk_scale: float | None = None, drop: float = 0.0, attn_drop: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        if min(resolution) <= window:
            window, shift = min(resolution), 0
        if not 0 <= shift < window:
            raise ValueError(f"SwinBlock: shift {shift} must lie in [0, window {window})")
        self.resolution = tuple(resolution)
        self.window = window
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, heads, qkv_bias, qk_scale, attn_drop, drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop)
        mask = shifted_window_mask(*self.resolution, window, shift) if shift else None
        self.register_buffer("attn_mask", mask)

    def mask_for(self, size: tuple[int, int], device: torch.device) -> Tensor | None:
        """The stored mask for the ``img_size`` grid, a fresh one for any other grid, ``None`` when unshifted."""
        if not self.shift:
            return None
        if tuple(size) == self.resolution:
            return self.attn_mask
        return shifted_window_mask(*size, self.window, self.shift, device=device)

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        h, w = size
        b, _, c = x.shape
        y = self.norm1(x).view(b, h, w, c)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        y = self.attn(window_partition(y, self.window), mask=self.mask_for(size, x.device))
        y = window_merge(y, self.window, h, w)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + self.drop_path(y.reshape(b, h * w, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def resi_conv(dim: int, kind: str) -> nn.Module:
    """The convolution closing a group (and the body): one 3x3 (``1conv``) or a 3x3-1x1-3x3 bottleneck (``3conv``)."""
    if kind == "1conv":
        return nn.Conv2d(dim, dim, 3, padding=1)
    if kind == "3conv":
        return nn.Sequential(
            nn.Conv2d(dim, dim // 4, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(dim // 4, dim // 4, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(dim // 4, dim, 3, padding=1),
        )
    raise ValueError(f"resi_connection must be one of {RESI_CONNECTIONS}, not {kind!r}")


def tokens_to_map(x: Tensor, size: tuple[int, int]) -> Tensor:
    """``B x (H*W) x C`` tokens -> ``B x C x H x W`` feature map."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *size)


def map_to_tokens(x: Tensor) -> Tensor:
    """``B x C x H x W`` -> ``B x (H*W) x C``."""
    return x.flatten(2).transpose(1, 2)


class ResidualSwinGroup(nn.Module):
    """RSTB: Swin blocks (shift every second one by half a window), a convolution, plus the group's input."""

    def __init__(self, blocks: nn.ModuleList, conv: nn.Module, grad_checkpoint: bool = False) -> None:
        super().__init__()
        self.blocks = blocks
        self.conv = conv
        self.grad_checkpoint = grad_checkpoint

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        y = x
        for block in self.blocks:
            if self.grad_checkpoint and self.training:
                y = checkpoint(block, y, size, use_reentrant=False)
            else:
                y = block(y, size)
        return map_to_tokens(self.conv(tokens_to_map(y, size))) + x


# ----------------------------------------------------------------------------------------------- network


class SwinIR(Backbone):
    """The SwinIR backbone for same-size restoration; with no head it is the official ``upscale=1`` network.

    Args:
        in_channels: image channels (3 subtracts the fixed RGB mean, other counts subtract 0).
        img_size: the training crop; sets the stored shifted-window masks (and nothing else).
        window_size: attention window; inputs are reflect-padded to a multiple of it.
        embed_dim, depths, num_heads, mlp_ratio: group widths and sizes (one entry per group).
        drop_path_rate: stochastic depth, rising linearly to this over all blocks (official default 0.1).
        resi_connection: ``1conv`` or ``3conv`` (see :func:`resi_conv`).
        img_range: the input is scaled by this after the mean is removed (1 or 255 in the official models).
        grad_checkpoint: recompute each Swin block in the backward pass (saves memory when training).
    """

    def __init__(
        self,
        in_channels: int = 3,
        img_size: int | Sequence[int] = 128,
        window_size: int = 8,
        embed_dim: int = 180,
        depths: Sequence[int] = (6, 6, 6, 6, 6, 6),
        num_heads: Sequence[int] = (6, 6, 6, 6, 6, 6),
        mlp_ratio: float = 2.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        patch_norm: bool = True,
        resi_connection: str = "1conv",
        img_range: float = 1.0,
        grad_checkpoint: bool = False,
    ) -> None:
        super().__init__()
        depths, num_heads = tuple(depths), tuple(num_heads)
        if len(depths) != len(num_heads) or not depths:
            raise ValueError(f"depths {depths} and num_heads {num_heads} need one entry per group, >= 1 group")
        resolution = tuple(int(s) for s in to_2tuple(img_size))
        self.in_channels = in_channels
        self.img_size = resolution
        self.window_size = window_size
        self.multiple = window_size
        self.out_channels = in_channels
        self.img_range = float(img_range)
        self.mean = RGB_MEAN if in_channels == 3 else (0.0,) * in_channels

        self.conv_first = nn.Conv2d(in_channels, embed_dim, 3, padding=1)
        self.embed_norm = nn.LayerNorm(embed_dim) if patch_norm else nn.Identity()
        self.pos_drop = nn.Dropout(drop_rate)
        rates = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()
        groups = []
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            first = sum(depths[:i])
            blocks = nn.ModuleList(
                SwinBlock(embed_dim, resolution, heads, window_size, 0 if j % 2 == 0 else window_size // 2,
                          mlp_ratio, qkv_bias, qk_scale, drop_rate, attn_drop_rate, rates[first + j])
                for j in range(depth)
            )
            groups.append(ResidualSwinGroup(blocks, resi_conv(embed_dim, resi_connection), grad_checkpoint))
        self.groups = nn.ModuleList(groups)
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = resi_conv(embed_dim, resi_connection)
        self.conv_last = nn.Conv2d(embed_dim, in_channels, 3, padding=1)
        self.apply(_init_weights)

        self.feature_info: list[FeatureInfo] = [FeatureInfo(f"rstb{i}", embed_dim, 1) for i in range(len(depths))]

    def deep_features(self, x: Tensor, image: Tensor, head: Head | None, aux: dict[str, Tensor]) -> Tensor:
        """Groups on the tokens of ``x`` (``B x C x H x W``), the head after each, then the final norm."""
        size = (x.shape[-2], x.shape[-1])
        tokens = self.pos_drop(self.embed_norm(map_to_tokens(x)))
        for i, group in enumerate(self.groups):
            tokens = group(tokens, size)
            if head is not None:
                feature, extra = head(f"rstb{i}", tokens_to_map(tokens, size), image)
                add_aux(aux, extra)
                tokens = map_to_tokens(feature)
        return tokens_to_map(self.norm(tokens), size)

    def forward(self, lq: Tensor, head: Head | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        image, size = pad_to_multiple(lq, self.multiple, mode="reflect")
        aux: dict[str, Tensor] = {}
        mean = image.new_tensor(self.mean).view(1, -1, 1, 1)
        x = (image - mean) * self.img_range
        first = self.conv_first(x)
        res = self.conv_after_body(self.deep_features(first, image, head, aux)) + first
        out = (x + self.conv_last(res)) / self.img_range + mean
        return crop_to(out, size), aux


def _init_weights(m: nn.Module) -> None:
    """The official initialisation: truncated-normal linear weights (std 0.02), zero biases, unit LayerNorms."""
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
