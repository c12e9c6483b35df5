"""Restormer (Zamir et al., CVPR 2022): a U-shaped transformer with channel attention, any number of levels.

Level ``i`` (0 = full resolution) works at ``dim * 2**i`` channels and stride ``2**i``; the deepest level is
the latent. Decoder level ``i`` upsamples the level below it, concatenates the encoder skip and (except at
level 0) reduces the width back with a 1x1 convolution; level 0 keeps the doubled width ``2 * dim`` for its
blocks and the refinement, exactly as the official network does.

Head positions (``feature_info``) are the decoder-side features just before each upsampling, named
``dec{i}`` for the level ``i`` they sit at (``dec3`` is the latent output for four levels); these are where
PromptIR inserts its prompts and AdaIR its frequency modules.

A head returns the feature it was given with the same shape, except at the latent position when
``latent_out_channels`` is set: official PromptIR narrows its latent to ``4 * dim`` inside the prompt block,
so its deepest decoder level upsamples ``4 * dim`` channels and fuses ``2 * dim + 4 * dim`` ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from src.models.backbones.base import Backbone, FeatureInfo, Head, add_aux, crop_to, pad_to_multiple
from src.models.layers.sampling import Downsample, Upsample
from src.models.layers.transformer import TransformerBlock

_NORM_WITH_BIAS = {"WithBias": True, "BiasFree": False}


class EncoderLevel(nn.Module):
    """Transformer blocks at one resolution; returns the skip feature and its downsampled version."""

    def __init__(self, blocks: nn.Sequential, channels: int) -> None:
        super().__init__()
        self.blocks = blocks
        self.down = Downsample(channels)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        skip = self.blocks(x)
        return skip, self.down(skip)


class DecoderLevel(nn.Module):
    """Upsample the level below, concatenate the encoder skip, fuse (1x1 conv or nothing), then blocks."""

    def __init__(self, blocks: nn.Sequential, below_channels: int, fuse: nn.Module) -> None:
        super().__init__()
        self.up = Upsample(below_channels)
        self.fuse = fuse
        self.blocks = blocks

    def forward(self, below: Tensor, skip: Tensor) -> Tensor:
        return self.blocks(self.fuse(torch.cat([self.up(below), skip], dim=1)))


class Restormer(Backbone):
    """The Restormer backbone; with no head it is exactly the official network, plus padding to ``multiple``.

    ``num_blocks`` and ``heads`` give one entry per level (at least two levels). ``dual_pixel_task`` adds the
    official dual-pixel skip convolution from the embedded input to the output conv. ``global_residual``
    adds the input image to the output (needs ``in_channels == out_channels``); the official network adds it
    exactly when ``dual_pixel_task`` is off. ``latent_out_channels`` is the width the head hands back at the
    latent position (``None``: the latent width, the usual same-shape contract); any other value needs a head
    that returns it (PromptIR: ``4 * dim``) and at least three levels. ``zero_init_output`` starts the output
    convolution at zero and ``output_init_scale`` multiplies its initial weights (neither in the official code,
    which keeps PyTorch's default initialisation: scale 1).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        dim: int = 48,
        num_blocks: Sequence[int] = (4, 6, 6, 8),
        num_refinement_blocks: int = 4,
        heads: Sequence[int] = (1, 2, 4, 8),
        ffn_expansion_factor: float = 2.66,
        bias: bool = False,
        layernorm_type: str = "WithBias",
        dual_pixel_task: bool = False,
        global_residual: bool = True,
        latent_out_channels: int | None = None,
        zero_init_output: bool = False,
        output_init_scale: float = 1.0,
    ) -> None:
        super().__init__()
        num_blocks, heads = tuple(num_blocks), tuple(heads)
        if len(num_blocks) != len(heads) or len(heads) < 2:
            raise ValueError(
                f"num_blocks {num_blocks} and heads {heads} need one entry per level, >= 2 levels"
            )
        if layernorm_type not in _NORM_WITH_BIAS:
            raise ValueError(
                f"layernorm_type must be one of {sorted(_NORM_WITH_BIAS)}, not {layernorm_type!r}"
            )
        if global_residual and in_channels != out_channels:
            raise ValueError(
                f"global_residual needs in_channels == out_channels ({in_channels} != {out_channels})"
            )
        norm_with_bias = _NORM_WITH_BIAS[layernorm_type]

        def stage(channels: int, n_heads: int, depth: int) -> nn.Sequential:
            return nn.Sequential(
                *(
                    TransformerBlock(channels, n_heads, ffn_expansion_factor, bias, norm_with_bias)
                    for _ in range(depth)
                )
            )

        levels = len(heads)
        widths = tuple(dim * 2**i for i in range(levels))
        self.channels_per_level = widths
        self.multiple = 2 ** (levels - 1)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.global_residual = global_residual
        self.latent_out_channels = latent_out_channels or widths[-1]
        if self.latent_out_channels != widths[-1] and levels < 3:
            raise ValueError(f"latent_out_channels={latent_out_channels} (not the latent width) needs >= 3 levels")
        # what each decoder level upsamples: the level below, or for the deepest one what the head hands back
        below = (*widths[1:-1], self.latent_out_channels)

        self.embed = nn.Conv2d(in_channels, dim, 3, padding=1, bias=False)
        self.encoders = nn.ModuleList(
            EncoderLevel(stage(widths[i], heads[i], num_blocks[i]), widths[i]) for i in range(levels - 1)
        )
        self.latent = stage(widths[-1], heads[-1], num_blocks[-1])
        # Level 0 keeps the concatenated width 2*dim (no 1x1 fuse), so its blocks run at twice the width.
        self.decoders = nn.ModuleList(
            DecoderLevel(
                stage(widths[i] if i else 2 * dim, heads[i], num_blocks[i]),
                below_channels=below[i],
                fuse=nn.Conv2d(below[i] // 2 + widths[i], widths[i], 1, bias=bias) if i else nn.Identity(),
            )
            for i in range(levels - 1)
        )
        self.refinement = stage(2 * dim, heads[0], num_refinement_blocks)
        self.skip = nn.Conv2d(dim, 2 * dim, 1, bias=bias) if dual_pixel_task else None
        self.output = nn.Conv2d(2 * dim, out_channels, 3, padding=1, bias=bias)
        if output_init_scale < 0:
            raise ValueError(f"output_init_scale must be >= 0, got {output_init_scale}")
        # One mechanism for both options: zero_init_output is scale 0, so the untrained network is the identity
        # (with the global residual) and families a short run has not learned yet start from "leave the image
        # alone". Scales in between trade the default start's residual (~0.25 RMS on every image, 12 dB of noise
        # a short run must first unlearn) against zero's slow first steps for every layer before this one.
        scale = 0.0 if zero_init_output else float(output_init_scale)
        if scale != 1.0:
            with torch.no_grad():
                for tensor in (self.output.weight, self.output.bias):
                    if tensor is not None:
                        tensor.mul_(scale)

        self.feature_info: list[FeatureInfo] = [
            FeatureInfo(f"dec{i}", widths[i], 2**i) for i in range(levels - 1, 0, -1)
        ]

    def forward(self, lq: Tensor, head: Head | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        image, size = pad_to_multiple(lq, self.multiple)
        aux: dict[str, Tensor] = {}
        embedded = self.embed(image)

        x, skips = embedded, []
        for encoder in self.encoders:
            skip, x = encoder(x)
            skips.append(skip)
        x = self.latent(x)

        for level in range(len(self.decoders) - 1, -1, -1):
            if head is not None:
                x, extra = head(f"dec{level + 1}", x, image)
                add_aux(aux, extra)
            expected = self.decoders[level].up.conv.in_channels
            if x.shape[1] != expected:
                raise ValueError(
                    f"dec{level + 1} hands {x.shape[1]} channels to a decoder built for {expected} "
                    f"(latent_out_channels={self.latent_out_channels}): the head must return that width"
                )
            x = self.decoders[level](x, skips[level])

        x = self.refinement(x)
        if self.skip is not None:
            x = x + self.skip(embedded)
        out = self.output(x)
        if self.global_residual:
            out = out + image
        return crop_to(out, size), aux
