"""AdaIR's frequency mining and modulation (Cui et al., ICLR 2025) as a head for any backbone's ``feature_info``.

At each head position the degraded image, resized to the feature, is projected and split by an FFT into a
low- and a high-frequency part; each part attends to the feature (channel cross-attention), the two are
mixed by spatial and channel gates, and the result modulates the feature. Official ``FreModule`` (the
adaptive frequency learning block) at ``fre1``..``fre3`` (strides 8/4/2), with these quirks kept:

* the low-pass box has half-sides ``int((h // 128) * rate)`` with ``rate`` a sigmoid below 1, so it is empty
  for feature maps under 256 px: then the low part is zero and the high part is ``|x|`` (``mask_divisor``
  is the 128; smaller values let tests exercise the box);
* ``channel_cross_l`` attends from the *high* part and ``channel_cross_h`` from the *low* part;
* the output is ``para1 * modulated + para2 * feature`` with ``para1`` starting at zero (identity at init);
* ``conv`` and ``score_gen`` exist but are never used (kept, frozen, with ``official_unused_modules``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.models.backbones.base import FeatureInfo, Head
from src.models.layers.cross_attention import CrossChannelAttention


class SpatialGate(nn.Module):
    """Per-pixel weight in (0, 1) from the channel max and mean (official ``SpatialGate``, 7x7 conv)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 7, padding=3, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return self.conv(pooled).sigmoid()


class ChannelGate(nn.Module):
    """Per-channel weight in (0, 1) from global average and max pooling through a shared bottleneck MLP."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        # the official width channels // reduction, kept at least 1 so narrow (tiny) backbones fit too
        hidden = max(1, channels // reduction)
        self.down = nn.Conv2d(channels, hidden, 1, bias=False)
        self.up = nn.Conv2d(hidden, channels, 1, bias=False)

    def mlp(self, x: Tensor) -> Tensor:
        return self.up(F.relu(self.down(x)))

    def forward(self, x: Tensor) -> Tensor:
        return (self.mlp(F.adaptive_avg_pool2d(x, 1)) + self.mlp(F.adaptive_max_pool2d(x, 1))).sigmoid()


class FrequencyRefine(nn.Module):
    """Cross-gating of the two bands (official ``FreRefine``): the high band gates the low one spatially, the
    low band gates the high one per channel; their sum is projected (1x1 conv with bias)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.spatial_gate = SpatialGate()
        self.channel_gate = ChannelGate(channels)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, low: Tensor, high: Tensor) -> Tensor:
        return self.proj(low * self.spatial_gate(high) + high * self.channel_gate(low))


def low_pass_mask(half_h: Tensor, half_w: Tensor, size: tuple[int, int]) -> Tensor:
    """``(B, 1, H, W)`` 0/1 mask of the centred box with half-sides ``half_h``, ``half_w`` (one per sample),
    rolled back to unshifted FFT layout.

    Official: the spectrum is rolled by ``(H // 2, W // 2)``, multiplied by the box
    ``[H//2 - h_, H//2 + h_) x [W//2 - w_, W//2 + w_)`` and rolled back; rolling the mask instead gives the
    same products.
    """
    h, w = size
    rows = torch.arange(h, device=half_h.device)
    cols = torch.arange(w, device=half_w.device)
    in_rows = (rows >= h // 2 - half_h[:, None]) & (rows < h // 2 + half_h[:, None])
    in_cols = (cols >= w // 2 - half_w[:, None]) & (cols < w // 2 + half_w[:, None])
    box = (in_rows[:, None, :, None] & in_cols[:, None, None, :]).float()
    return torch.roll(box, shifts=(-(h // 2), -(w // 2)), dims=(-2, -1))


class FrequencyBlock(nn.Module):
    """Official ``FreModule`` at one position: frequency mining from the image, modulation of the feature.

    Official names: ``conv1`` -> ``image_proj``, ``rate_conv`` -> ``cutoff``, ``channel_cross_l/h/agg`` ->
    ``high_attn``/``low_attn``/``fuse_attn``, ``frequency_refine`` -> ``refine``, ``para1/2`` ->
    ``scale``/``skip_scale``; the unused ``conv`` and ``score_gen`` -> ``unused.image_conv``/``unused.score_conv``.

    ``cutoff`` only sizes the low-pass box through an integer truncation, so it never gets a gradient (in the
    official code either); it is frozen so that distributed training needs no unused-parameter search.
    """

    def __init__(
        self,
        channels: int,
        image_channels: int = 3,
        num_heads: int = 4,
        bias: bool = False,
        mask_divisor: int = 128,
        official_unused_modules: bool = False,
    ) -> None:
        super().__init__()
        if mask_divisor < 2:
            raise ValueError(f"mask_divisor must be >= 2 (the box must fit the spectrum), got {mask_divisor}")
        self.mask_divisor = mask_divisor
        self.image_proj = nn.Conv2d(image_channels, channels, 3, padding=1, bias=False)
        self.cutoff = nn.Sequential(
            nn.Conv2d(channels, max(1, channels // 8), 1, bias=False),
            nn.GELU(),
            nn.Conv2d(max(1, channels // 8), 2, 1, bias=False),
        ).requires_grad_(False)
        self.high_attn = CrossChannelAttention(channels, num_heads, bias)
        self.low_attn = CrossChannelAttention(channels, num_heads, bias)
        self.fuse_attn = CrossChannelAttention(channels, num_heads, bias)
        self.refine = FrequencyRefine(channels)
        self.scale = nn.Parameter(torch.zeros(channels, 1, 1))
        self.skip_scale = nn.Parameter(torch.ones(channels, 1, 1))
        self.unused: nn.ModuleDict | None = None
        if official_unused_modules:
            self.unused = nn.ModuleDict(
                {
                    "image_conv": nn.Conv2d(image_channels, channels, 3, padding=1, bias=False),
                    "score_conv": nn.Conv2d(2, 2, 7, padding=3),
                }
            ).requires_grad_(False)

    def split_bands(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(high, low)``: magnitudes of the inverse FFT outside and inside the adaptive low-pass box.

        The FFT runs in float32 (it has no bfloat16 kernels); the result is cast back to ``x``'s dtype.
        """
        h, w = x.shape[-2:]
        with torch.no_grad():
            rate = self.cutoff(F.adaptive_avg_pool2d(x, 1)).sigmoid().float()
            half_h = (h // self.mask_divisor * rate[:, 0, 0, 0]).int()
            half_w = (w // self.mask_divisor * rate[:, 1, 0, 0]).int()
            mask = low_pass_mask(half_h, half_w, (h, w))
        spectrum = torch.fft.fft2(x.float(), norm="forward")
        high = torch.fft.ifft2(spectrum * (1 - mask), norm="forward").abs()
        low = torch.fft.ifft2(spectrum * mask, norm="forward").abs()
        return high.to(x.dtype), low.to(x.dtype)

    def forward(self, feature: Tensor, image: Tensor) -> Tensor:
        image = F.interpolate(image, size=feature.shape[-2:], mode="bilinear", align_corners=False)
        high, low = self.split_bands(self.image_proj(image))
        high = self.high_attn(high, feature)
        low = self.low_attn(low, feature)
        modulated = self.fuse_attn(feature, self.refine(low, high))
        return modulated * self.scale + feature * self.skip_scale


class FrequencyHead(Head):
    """A :class:`FrequencyBlock` at every position of ``feature_info``; features keep their shape.

    Args:
        feature_info: the backbone's head positions.
        image_channels: channels of the degraded image the head receives (official 3).
        num_heads: heads of the cross-attentions (official ``heads[2]``, i.e. 4).
        bias: of the cross-attention convolutions (official: the network's ``bias``).
        mask_divisor: the official ``n = 128`` of the low-pass box (see the module docstring).
        official_unused_modules: also create the official, never used ``conv`` and ``score_gen`` (frozen),
            for strict loading of official checkpoints.
    """

    def __init__(
        self,
        feature_info: Sequence[FeatureInfo],
        image_channels: int = 3,
        num_heads: int = 4,
        bias: bool = False,
        mask_divisor: int = 128,
        official_unused_modules: bool = False,
    ) -> None:
        super().__init__()
        if not feature_info:
            raise ValueError("FrequencyHead needs at least one head position in feature_info")
        self.blocks = nn.ModuleDict(
            {
                f.name: FrequencyBlock(
                    f.channels, image_channels, num_heads, bias, mask_divisor, official_unused_modules
                )
                for f in feature_info
            }
        )

    def forward(self, name: str, feature: Tensor, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        if name not in self.blocks:
            raise KeyError(f"FrequencyHead has no position {name!r}; built for {list(self.blocks)}")
        return self.blocks[name](feature, image), {}
