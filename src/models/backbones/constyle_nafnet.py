"""ConStyle v2's restorer (Dongqi-Fan/ConStyle_v2 ``ConStyleNAFNet``): a NAFNet prompted by the style encoder.

The prompter (:class:`~src.models.layers.constyle.StyleEncoder`, its own copy: frozen after its pre-training,
``strategy=constyle_pretrain``) reads the degraded image; its three feature maps, each through a 1x1 convolution
and LeakyReLU to ``width`` channels, are concatenated to the encoder's features at each down-sampling (a 3x3
convolution to a quarter of the channels and a pixel unshuffle), and its prompt ``q1``, projected to the bottleneck
width, modulates the bottleneck channel-wise: ``fuse([b, b * q])``. Up-sampling is a 3x3 convolution and pixel
shuffle, concatenated with the skip and merged by a 1x1 convolution; NAFBlocks at every level (widths w, 2w, 3w,
4w down; 4w, 3w, 2w up), a global residual. Sides must be multiples of 8: the input is padded and cropped back.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from src.models.backbones.base import Backbone, FeatureInfo, Head, crop_to, pad_to_multiple
from src.models.backbones.nafnet import NAFBlock
from src.models.layers.constyle import EMBED_DIM, StyleEncoder, conv_act

#: the prompter's feature widths after stages 1, 2, 3
PROMPT_FEATURES = (32, 64, 128)


class Down(nn.Module):
    """3x3 convolution to a quarter of the channels and a pixel unshuffle (same channels, half the side), then
    the prompter's feature beside it."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels // 4, 3, padding=1, bias=False)

    def forward(self, x: Tensor, prompt_feature: Tensor) -> Tensor:
        return torch.cat([nn.functional.pixel_unshuffle(self.conv(x), 2), prompt_feature], dim=1)


class Up(nn.Module):
    """3x3 convolution to four times the channels and a pixel shuffle, the skip beside it, a 1x1 merge."""

    def __init__(self, channels: int, merged: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 4 * channels, 3, padding=1, bias=False)
        self.merge = nn.Conv2d(merged, out_channels, 1, bias=False)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.merge(torch.cat([nn.functional.pixel_shuffle(self.conv(x), 2), skip], dim=1))


def blocks(channels: int, count: int) -> nn.Sequential:
    return nn.Sequential(*(NAFBlock(channels) for _ in range(count)))


class ConStyleNAFNet(Backbone):
    """``forward(lq)``: the prompter reads ``lq``, the NAFNet restores it with the prompts (global residual)."""

    def __init__(self, in_channels: int = 3, width: int = 48, left_blocks: Sequence[int] = (7, 8, 9),
                 bottom_blocks: int = 9, right_blocks: Sequence[int] = (7, 8, 9)) -> None:
        super().__init__()
        if width % 4:
            raise ValueError(f"ConStyle NAFNet's width must be a multiple of 4 (its down-sampling), got {width}")
        w = width
        self.prompter = StyleEncoder(classes=None)
        self.intro = nn.Conv2d(in_channels, w, 3, padding=1, bias=False)
        self.encoders = nn.ModuleList([blocks(w, left_blocks[0]), blocks(2 * w, left_blocks[1]),
                                       blocks(3 * w, left_blocks[2])])
        self.downs = nn.ModuleList([Down(w), Down(2 * w), Down(3 * w)])
        self.middle = blocks(4 * w, bottom_blocks)
        self.fusion = nn.Conv2d(8 * w, 3 * w, 1, bias=False)
        self.ups = nn.ModuleList([Up(3 * w, 4 * w, 2 * w), Up(4 * w, 6 * w, 3 * w), Up(3 * w, 6 * w, 4 * w)])
        self.decoders = nn.ModuleList([blocks(2 * w, right_blocks[0]), blocks(3 * w, right_blocks[1]),
                                       blocks(4 * w, right_blocks[2])])
        self.outro = nn.Conv2d(2 * w, in_channels, 3, padding=1, bias=False)
        self.prompt_proj = nn.Linear(EMBED_DIM, 4 * w)
        self.feature_proj = nn.ModuleList(conv_act(c, w, 1) for c in PROMPT_FEATURES)
        self.in_channels = self.out_channels = in_channels
        self.multiple = 8
        self.channels_per_level = (w, 2 * w, 3 * w, 4 * w)
        self.feature_info: list[FeatureInfo] = []  # it is prompted by its own encoder: no head positions

    def prompts(self, lq: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
        """The prompter's ``q1`` and feature maps of ``lq``."""
        (_, q1), features, _ = self.prompter(lq)
        return q1, features

    def degradation_embeddings(self, lq: Tensor) -> dict[str, Tensor]:
        (q0, q1), _, _ = self.prompter(pad_to_multiple(lq, self.multiple)[0])
        return {"constyle:q0": q0, "constyle:q1": q1}

    def restore(self, lq: Tensor, q1: Tensor, features: Sequence[Tensor]) -> Tensor:
        """The release's ``forward(inp_img, q, feas)``: ``lq`` (sides multiples of 8) with given prompts."""
        features = [proj(f) for proj, f in zip(self.feature_proj, features)]
        x = self.intro(lq)
        skips = []
        for encoder, down, feature in zip(self.encoders, self.downs, features):
            x = encoder(x)
            skips.append(x)
            x = down(x, feature)
        b = self.middle(x)
        b = self.fusion(torch.cat([b, b * self.prompt_proj(q1)[..., None, None]], dim=1))
        for up, decoder, skip in zip(reversed(self.ups), reversed(self.decoders), reversed(skips)):
            b = decoder(up(b, skip))
        return self.outro(b) + lq

    def forward(self, lq: Tensor, head: Head | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        x, size = pad_to_multiple(lq, self.multiple)
        q1, features = self.prompts(x)
        return crop_to(self.restore(x, q1, features), size), {}
