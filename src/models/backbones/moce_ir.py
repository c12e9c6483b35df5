"""MoCE-IR's encoder-decoder (Zamfir et al., CVPR 2025) without its experts: the experts are a head.

The encoder, latent and refinement are Restormer blocks (with biases, FFN factor 2). Each decoder level
upsamples, concatenates the encoder skip and fuses it back to the level's width with a 1x1 convolution (level
0 included, unlike Restormer), then runs its decoder blocks (:class:`ExpertDecoderBlock`): after the norm, one
1x1 branch goes through channel self-attention (the *shared* feature), the other (the *routed* feature) is
where the mixture of complexity experts acts; a cross attention with queries from the routed and keys/values
from the shared feature closes the attention half, then the gated FFN. The refinement runs at ``dim`` channels.

Head positions (``feature_info``):

* ``latent`` (stride ``2**(levels-1)``): the latent, before the decoder. MoCE-IR's routers read a frequency
  embedding of it; the experts head only sizes that embedding from this entry and leaves the latent as it is;
* ``dec{l}_{j}``: the routed feature of decoder block ``j`` at level ``l``, in call order (deepest first).

The experts also need the block's shared feature and the latent. Heads that declare ``context_keys`` receive
those as keyword arguments (``shared=``, ``latent=``); any other head is called as ``head(name, feature,
image)``. With no head the routed feature passes unchanged into the cross attention.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from src.models.backbones.base import Backbone, FeatureInfo, Head, add_aux, crop_to, pad_to_multiple
from src.models.backbones.restormer import EncoderLevel
from src.models.layers.cross_attention import CrossChannelAttention
from src.models.layers.norm import ChannelLayerNorm
from src.models.layers.sampling import Upsample
from src.models.layers.transformer import ChannelAttention, GatedDconvFFN, TransformerBlock

_NORM_WITH_BIAS = {"WithBias": True, "BiasFree": False}


def call_head(
    head: Head, name: str, feature: Tensor, image: Tensor, **context: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """Call ``head`` at ``name``, passing only the ``context`` tensors it declares in ``head.context_keys``.

    So that plain heads (``head(name, feature, image)``) and context-reading heads (the experts) both fit.
    """
    return head(name, feature, image, **{k: v for k, v in context.items() if k in head.context_keys})


class ExpertDecoderBlock(nn.Module):
    """MoCE-IR's decoder block around a head slot: ``x + cross(head(routed), shared)``, then ``+ ffn(norm(x))``.

    ``routed`` and ``shared`` are two 1x1 projections (with bias, as officially) of the normed input; ``shared``
    also goes through channel self-attention. ``name`` is the block's head position.
    """

    def __init__(
        self, name: str, channels: int, heads: int, ffn_expansion_factor: float, bias: bool, norm_with_bias: bool
    ) -> None:
        super().__init__()
        self.name = name
        self.norm = ChannelLayerNorm(channels, with_bias=norm_with_bias)
        self.shared_proj = nn.Conv2d(channels, channels, 1)
        self.routed_proj = nn.Conv2d(channels, channels, 1)
        self.shared = ChannelAttention(channels, heads, bias=bias)
        self.cross = CrossChannelAttention(channels, heads, bias=bias, kv_kernel=7)
        self.ffn_norm = ChannelLayerNorm(channels, with_bias=norm_with_bias)
        self.ffn = GatedDconvFFN(channels, ffn_expansion_factor, bias=bias)

    def forward(self, x: Tensor, image: Tensor, latent: Tensor, head: Head | None) -> tuple[Tensor, dict[str, Tensor]]:
        normed = self.norm(x)
        shared = self.shared(self.shared_proj(normed))
        routed = self.routed_proj(normed)
        aux: dict[str, Tensor] = {}
        if head is not None:
            routed, aux = call_head(head, self.name, routed, image, shared=shared, latent=latent)
        x = x + self.cross(routed, shared)
        return x + self.ffn(self.ffn_norm(x)), aux


class ExpertDecoderLevel(nn.Module):
    """Upsample the level below, concatenate the encoder skip, 1x1 fuse to the level width, decoder blocks."""

    def __init__(self, blocks: Sequence[ExpertDecoderBlock], below_channels: int, channels: int, bias: bool) -> None:
        super().__init__()
        self.up = Upsample(below_channels)
        self.fuse = nn.Conv2d(below_channels // 2 + channels, channels, 1, bias=bias)
        self.blocks = nn.ModuleList(blocks)

    def forward(
        self, below: Tensor, skip: Tensor, image: Tensor, latent: Tensor, head: Head | None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        x = self.fuse(torch.cat([self.up(below), skip], dim=1))
        aux: dict[str, Tensor] = {}
        for block in self.blocks:
            x, extra = block(x, image, latent, head)
            add_aux(aux, extra)
        return x, aux


class MoCEIR(Backbone):
    """MoCE-IR's encoder-decoder; with the experts head (``ExpertsHead``) it is the official network.

    ``num_blocks`` and ``heads`` give one entry per level (the last is the latent); ``num_dec_blocks`` one per
    decoder level, from level 0 (full resolution) up, as the official argument. ``encoder_bias`` is the
    bias of the encoder, latent and refinement blocks (official: always on); ``bias`` that of the decoder
    blocks, fuse and output convolutions (official ``bias``, default off). The output adds the input image.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        dim: int = 48,
        num_blocks: Sequence[int] = (4, 6, 6, 8),
        num_dec_blocks: Sequence[int] = (2, 4, 4),
        num_refinement_blocks: int = 4,
        heads: Sequence[int] = (1, 2, 4, 8),
        ffn_expansion_factor: float = 2.0,
        bias: bool = False,
        encoder_bias: bool = True,
        layernorm_type: str = "WithBias",
    ) -> None:
        super().__init__()
        num_blocks, num_dec_blocks, heads = tuple(num_blocks), tuple(num_dec_blocks), tuple(heads)
        if len(num_blocks) != len(heads) or len(heads) < 2 or len(num_dec_blocks) != len(heads) - 1:
            raise ValueError(
                f"num_blocks {num_blocks} and heads {heads} need one entry per level (>= 2 levels), "
                f"num_dec_blocks {num_dec_blocks} one per decoder level (levels - 1)"
            )
        if layernorm_type not in _NORM_WITH_BIAS:
            raise ValueError(f"layernorm_type must be one of {sorted(_NORM_WITH_BIAS)}, not {layernorm_type!r}")
        if in_channels != out_channels:
            raise ValueError(f"the global residual needs in_channels == out_channels ({in_channels} != {out_channels})")
        norm_with_bias = _NORM_WITH_BIAS[layernorm_type]

        def stage(channels: int, n_heads: int, depth: int) -> nn.Sequential:
            return nn.Sequential(
                *(
                    TransformerBlock(channels, n_heads, ffn_expansion_factor, encoder_bias, norm_with_bias)
                    for _ in range(depth)
                )
            )

        levels = len(heads)
        widths = tuple(dim * 2**i for i in range(levels))
        self.channels_per_level = widths
        self.multiple = 2 ** (levels - 1)
        self.in_channels = self.out_channels = in_channels

        self.embed = nn.Conv2d(in_channels, dim, 3, padding=1, bias=False)
        self.encoders = nn.ModuleList(
            EncoderLevel(stage(widths[i], heads[i], num_blocks[i]), widths[i]) for i in range(levels - 1)
        )
        self.latent = stage(widths[-1], heads[-1], num_blocks[-1])
        self.decoders = nn.ModuleList(
            ExpertDecoderLevel(
                [
                    ExpertDecoderBlock(f"dec{i}_{j}", widths[i], heads[i], ffn_expansion_factor, bias, norm_with_bias)
                    for j in range(num_dec_blocks[i])
                ],
                below_channels=widths[i + 1],
                channels=widths[i],
                bias=bias,
            )
            for i in range(levels - 1)
        )
        self.refinement = stage(dim, heads[0], num_refinement_blocks)
        self.output = nn.Conv2d(dim, out_channels, 3, padding=1, bias=bias)

        self.feature_info: list[FeatureInfo] = [FeatureInfo("latent", widths[-1], self.multiple)] + [
            FeatureInfo(block.name, widths[i], 2**i)
            for i in range(levels - 2, -1, -1)
            for block in self.decoders[i].blocks
        ]

    def forward(self, lq: Tensor, head: Head | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        image, size = pad_to_multiple(lq, self.multiple)
        aux: dict[str, Tensor] = {}

        x, skips = self.embed(image), []
        for encoder in self.encoders:
            skip, x = encoder(x)
            skips.append(skip)
        x = self.latent(x)
        if head is not None:
            x, extra = call_head(head, "latent", x, image)
            add_aux(aux, extra)
        latent = x

        for level in range(len(self.decoders) - 1, -1, -1):
            x, extra = self.decoders[level](x, skips[level], image, latent, head)
            add_aux(aux, extra)

        out = self.output(self.refinement(x)) + image
        return crop_to(out, size), aux
