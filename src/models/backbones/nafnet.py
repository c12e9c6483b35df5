"""NAFNet (Chen et al., ECCV 2022): a U-Net of nonlinear-activation-free blocks, any number of levels.

Encoder level ``i`` (0 = full resolution) works at ``width * 2**i`` channels and stride ``2**i`` and ends with a
strided 2x2 convolution; the middle blocks run at level ``L = len(enc_blk_nums)``. Decoder level ``i``
upsamples the level below (1x1 convolution + pixel shuffle), *adds* the encoder skip and runs its blocks.

Head positions (``feature_info``) are the decoder-side features just before each upsampling, named
``dec{i}`` for the level ``i`` they sit at (``dec4`` is the middle output for four levels), as in
:class:`~src.models.backbones.restormer.Restormer`, so PromptIR-style heads fit either backbone.

``local_pool_train_size`` gives NAFNetLocal (the GoPro models): its channel attention averages over a local
window (test-time local converter, TLC) instead of the whole map. The window is 1.5x the training crop,
scaled to each level, so it differs from global pooling only on inputs larger than 1.5x the crop.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.models.backbones.base import Backbone, FeatureInfo, Head, add_aux, crop_to, pad_to_multiple
from src.models.layers.norm import ChannelLayerNorm

#: NAFNetLocal's pooling window, relative to the training crop.
LOCAL_POOL_SCALE = 1.5


def simple_gate(x: Tensor) -> Tensor:
    """NAFNet's replacement for the activation: split channels in two halves and multiply them."""
    a, b = x.chunk(2, dim=1)
    return a * b


def local_average(x: Tensor, kernel: tuple[int, int]) -> Tensor:
    """Mean over a ``kernel`` window at each position, replicate-padded back to the input size (TLC).

    Follows NAFNetLocal's pooling: the window is clipped to the map, only windows lying fully inside are
    computed (with a summed-area table, so large windows stay cheap), and the border is filled by
    replicating the nearest computed value. A window covering the whole map gives the global mean.
    """
    h, w = x.shape[-2:]
    if kernel[0] >= h and kernel[1] >= w:
        return F.adaptive_avg_pool2d(x, 1)
    k1, k2 = min(h, kernel[0]), min(w, kernel[1])
    # at least float32: a running sum in bf16 would lose the small terms entirely.
    table = F.pad(x.to(torch.promote_types(x.dtype, torch.float32)).cumsum(-1).cumsum(-2), (1, 0, 1, 0))
    sums = table[..., k1:, k2:] + table[..., :-k1, :-k2] - table[..., :-k1, k2:] - table[..., k1:, :-k2]
    out = (sums / (k1 * k2)).to(x.dtype)
    oh, ow = out.shape[-2:]
    return F.pad(out, ((w - ow) // 2, (w - ow + 1) // 2, (h - oh) // 2, (h - oh + 1) // 2), mode="replicate")


class SimplifiedChannelAttention(nn.Module):
    """Scale each channel by a 1x1 projection of its (global or local) mean: ``x * proj(pool(x))``."""

    def __init__(self, channels: int, local_kernel: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, channels, 1)
        self.local_kernel = local_kernel

    def forward(self, x: Tensor) -> Tensor:
        pooled = F.adaptive_avg_pool2d(x, 1) if self.local_kernel is None else local_average(x, self.local_kernel)
        return x * self.proj(pooled)

    def extra_repr(self) -> str:
        return f"local_kernel={self.local_kernel}"


class NAFBlock(nn.Module):
    """Two residual branches, each scaled by a learned per-channel factor that starts at zero.

    Mixing branch: norm, 1x1 expand, 3x3 depthwise, gate, channel attention, 1x1 project (scaled by ``beta``).
    FFN branch: norm, 1x1 expand, gate, 1x1 project (scaled by ``gamma``). With ``beta = gamma = 0`` (the
    official initialisation) the block is the identity.
    """

    def __init__(
        self, channels: int, dw_expand: int = 2, ffn_expand: int = 2, local_kernel: tuple[int, int] | None = None
    ) -> None:
        super().__init__()
        mixed, ffn = channels * dw_expand, channels * ffn_expand
        self.mix_norm = ChannelLayerNorm(channels, eps=1e-6)
        self.mix_in = nn.Conv2d(channels, mixed, 1)
        self.mix_dw = nn.Conv2d(mixed, mixed, 3, padding=1, groups=mixed)
        self.sca = SimplifiedChannelAttention(mixed // 2, local_kernel)
        self.mix_out = nn.Conv2d(mixed // 2, channels, 1)
        self.ffn_norm = ChannelLayerNorm(channels, eps=1e-6)
        self.ffn_in = nn.Conv2d(channels, ffn, 1)
        self.ffn_out = nn.Conv2d(ffn // 2, channels, 1)
        # 1 x C x 1 x 1 as in the official checkpoints
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        mixed = self.sca(simple_gate(self.mix_dw(self.mix_in(self.mix_norm(x)))))
        y = x + self.mix_out(mixed) * self.beta
        return y + self.ffn_out(simple_gate(self.ffn_in(self.ffn_norm(y)))) * self.gamma


class PixelShuffleUp(nn.Module):
    """``C x H x W -> C/2 x 2H x 2W``: 1x1 convolution (no bias) to ``2C`` channels, then pixel shuffle."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * 2, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.pixel_shuffle(self.conv(x), 2)


class EncoderLevel(nn.Module):
    """Blocks at one resolution; returns the skip feature and its downsampled (strided 2x2 conv) version."""

    def __init__(self, blocks: nn.Sequential, channels: int) -> None:
        super().__init__()
        self.blocks = blocks
        self.down = nn.Conv2d(channels, channels * 2, 2, stride=2)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        skip = self.blocks(x)
        return skip, self.down(skip)


class DecoderLevel(nn.Module):
    """Upsample the level below, add the encoder skip, then blocks."""

    def __init__(self, blocks: nn.Sequential, below_channels: int) -> None:
        super().__init__()
        self.up = PixelShuffleUp(below_channels)
        self.blocks = blocks

    def forward(self, below: Tensor, skip: Tensor) -> Tensor:
        return self.blocks(self.up(below) + skip)


def local_kernels(train_size: Sequence[int], levels: int) -> list[tuple[int, int]]:
    """NAFNetLocal's window at each level ``0..levels`` for a training crop ``(H, W)``.

    The official code measures the feature size of a (padded) training-size input at each pooling layer and
    sets ``kernel = feature * int(1.5 * crop) // crop``; this reproduces it without running a forward.
    """
    th, tw = (int(s) for s in train_size[-2:])
    multiple = 2**levels
    ph, pw = -(-th // multiple) * multiple, -(-tw // multiple) * multiple
    bh, bw = int(th * LOCAL_POOL_SCALE), int(tw * LOCAL_POOL_SCALE)
    return [((ph >> i) * bh // th, (pw >> i) * bw // tw) for i in range(levels + 1)]


class NAFNet(Backbone):
    """The NAFNet backbone; with no head it is exactly the official network (or NAFNetLocal).

    ``enc_blk_nums`` and ``dec_blk_nums`` give one entry per level (same length); the input is zero-padded on
    the right/bottom to a multiple of ``2**levels`` and the output cropped back. ``local_pool_train_size``
    (``(H, W)`` of the training crops, e.g. ``(256, 256)``) switches the channel attention to NAFNetLocal's
    local average pooling; ``None`` keeps global pooling (plain NAFNet).
    """

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 16,
        enc_blk_nums: Sequence[int] = (1, 1, 1, 28),
        middle_blk_num: int = 1,
        dec_blk_nums: Sequence[int] = (1, 1, 1, 1),
        local_pool_train_size: Sequence[int] | None = None,
        global_residual: bool = True,
    ) -> None:
        super().__init__()
        enc_blk_nums, dec_blk_nums = tuple(enc_blk_nums), tuple(dec_blk_nums)
        if len(enc_blk_nums) != len(dec_blk_nums) or not enc_blk_nums:
            raise ValueError(
                f"enc_blk_nums {enc_blk_nums} and dec_blk_nums {dec_blk_nums} need one entry per level, >= 1 level"
            )
        levels = len(enc_blk_nums)
        widths = tuple(width * 2**i for i in range(levels + 1))
        kernels: list[tuple[int, int] | None] = (
            list(local_kernels(local_pool_train_size, levels))
            if local_pool_train_size is not None
            else [None] * (levels + 1)
        )

        def stage(level: int, depth: int) -> nn.Sequential:
            return nn.Sequential(*(NAFBlock(widths[level], local_kernel=kernels[level]) for _ in range(depth)))

        self.channels_per_level = widths
        self.multiple = 2**levels
        self.in_channels = self.out_channels = in_channels
        self.global_residual = global_residual
        self.local_pool_train_size = None if local_pool_train_size is None else tuple(local_pool_train_size[-2:])

        self.intro = nn.Conv2d(in_channels, width, 3, padding=1)
        self.encoders = nn.ModuleList(EncoderLevel(stage(i, n), widths[i]) for i, n in enumerate(enc_blk_nums))
        self.middle = stage(levels, middle_blk_num)
        # decoders[i] works at level i; the official list runs the other way (deepest first).
        self.decoders = nn.ModuleList(
            DecoderLevel(stage(i, dec_blk_nums[levels - 1 - i]), widths[i + 1]) for i in range(levels)
        )
        self.ending = nn.Conv2d(width, in_channels, 3, padding=1)

        self.feature_info: list[FeatureInfo] = [FeatureInfo(f"dec{i}", widths[i], 2**i) for i in range(levels, 0, -1)]

    def forward(self, lq: Tensor, head: Head | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        image, size = pad_to_multiple(lq, self.multiple, mode="constant")
        aux: dict[str, Tensor] = {}

        x, skips = self.intro(image), []
        for encoder in self.encoders:
            skip, x = encoder(x)
            skips.append(skip)
        x = self.middle(x)

        for level in range(len(self.decoders) - 1, -1, -1):
            if head is not None:
                x, extra = head(f"dec{level + 1}", x, image)
                add_aux(aux, extra)
            x = self.decoders[level](x, skips[level])

        out = self.ending(x)
        if self.global_residual:
            out = out + image
        return crop_to(out, size), aux
