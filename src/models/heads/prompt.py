"""PromptIR's prompts (Potlapalli et al., NeurIPS 2023) as a head for any backbone that publishes ``feature_info``.

At each head position the feature's global average picks a soft mix of learned prompt components; the mix
is resized to the feature, concatenated to it, passed through a transformer block ("prompt interaction")
and a 1x1 convolution brings the width back. The degradation is never labelled: the prompts learn to encode
it from the features alone.

Sizes come from ``feature_info``. Official PromptIR (``decoder=True``) hard-codes them for ``dim=48``:
prompt widths 64/128/320 at the 96/192/384-channel positions (``prompt1``..``prompt3``), prompt sides 64/32/16
at strides 2/4/8, interaction blocks with ``heads[2]`` heads. Our defaults derive exactly these numbers from a
``dim=48`` backbone (width ratio 2/3, 5/6 at the deepest position; side ``128 // stride``) and keep working
for other widths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.models.backbones.base import FeatureInfo, Head
from src.models.layers.transformer import TransformerBlock

_NORM_WITH_BIAS = {"WithBias": True, "BiasFree": False}


def _round_to(value: float, multiple: int) -> int:
    """``value`` rounded to a positive multiple of ``multiple`` (so channel splits into heads stay exact)."""
    return max(multiple, round(value / multiple) * multiple)


class PromptGenerator(nn.Module):
    """A feature-conditioned prompt: softmax weights over ``prompt_len`` learned components, resized, 3x3 conv.

    Official ``PromptGenBlock``: the weights come from a linear layer on the feature's spatial mean; the
    weighted sum is resized with bilinear interpolation (``align_corners=False``, no antialiasing), then a
    bias-free 3x3 convolution. Components start uniform in [0, 1) as in the official initialisation.
    """

    def __init__(self, channels: int, prompt_dim: int, prompt_len: int, prompt_size: int) -> None:
        super().__init__()
        self.components = nn.Parameter(torch.rand(prompt_len, prompt_dim, prompt_size, prompt_size))
        self.select = nn.Linear(channels, prompt_len)
        self.conv = nn.Conv2d(prompt_dim, prompt_dim, 3, padding=1, bias=False)

    def forward(self, feature: Tensor) -> Tensor:
        weights = self.select(feature.mean(dim=(-2, -1))).softmax(dim=1)
        prompt = torch.einsum("bl,ldhw->bdhw", weights, self.components)
        prompt = F.interpolate(prompt, size=feature.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(prompt)


class PromptBlock(nn.Module):
    """Prompt generation and interaction at one position: ``reduce(block(cat(feature, prompt)))``.

    Official names: ``prompt{k}`` (generator), ``noise_level{k}`` (block), ``reduce_noise_level{k}`` (reduce).
    """

    def __init__(
        self,
        channels: int,
        out_channels: int,
        prompt_dim: int,
        prompt_len: int,
        prompt_size: int,
        num_heads: int,
        ffn_expansion_factor: float,
        bias: bool,
        norm_with_bias: bool,
    ) -> None:
        super().__init__()
        width = channels + prompt_dim
        self.prompt = PromptGenerator(channels, prompt_dim, prompt_len, prompt_size)
        self.interact = TransformerBlock(width, num_heads, ffn_expansion_factor, bias, norm_with_bias)
        self.reduce = nn.Conv2d(width, out_channels, 1, bias=bias)

    def forward(self, feature: Tensor) -> Tensor:
        return self.reduce(self.interact(torch.cat([feature, self.prompt(feature)], dim=1)))


def official_unused(channels: int, prompt_dim: int, reduced_dim: int, bias: bool) -> nn.ModuleDict:
    """The two 1x1 convolutions official PromptIR creates per level but never calls; frozen.

    ``prompt_reduce`` is ``chnl_reduce{k}`` (prompt width -> ``reduced_dim``), ``feature_reduce`` is
    ``reduce_noise_channel_{k}`` (encoder width ``channels / 2`` plus ``reduced_dim`` -> ``channels / 2``). They
    exist only so that official checkpoints load strictly. They never get a gradient, so they are frozen:
    distributed training without an unused-parameter search then still works, and the optimiser, which skips
    parameters without gradients anyway, behaves as with the official code.
    """
    half = channels // 2
    modules = nn.ModuleDict(
        {
            "prompt_reduce": nn.Conv2d(prompt_dim, reduced_dim, 1, bias=bias),
            "feature_reduce": nn.Conv2d(half + reduced_dim, half, 1, bias=bias),
        }
    )
    return modules.requires_grad_(False)


class PromptHead(Head):
    """PromptIR's prompt block at every position of ``feature_info`` (one :class:`PromptBlock` each).

    Args:
        feature_info: the backbone's head positions.
        prompt_len: number of learned components per position (official 5).
        prompt_size: prompt side at full resolution; a position at stride ``r`` learns ``prompt_size // r``
            (official 128: 64/32/16 at strides 2/4/8).
        prompt_ratio: prompt width relative to the position's width (official 2/3: 64 at 96, 128 at 192).
        latent_prompt_ratio: the same at the deepest position (official 5/6: 320 at 384).
        prompt_multiple: prompt widths are rounded to a multiple of this (official widths are multiples of 8).
        num_heads: heads of the interaction blocks (official ``heads[2]``, i.e. 4).
        ffn_expansion_factor, bias, layernorm_type: of the interaction blocks and convolutions (official: the
            network's own).
        out_channels: position -> width to return, where the backbone expects another width than it gives
            (official PromptIR: ``{"dec3": 4 * dim}``); elsewhere the feature keeps its width.
        official_unused_modules: also create the official modules that are never used (see
            :func:`official_unused`), for strict loading of official checkpoints.
    """

    def __init__(
        self,
        feature_info: Sequence[FeatureInfo],
        prompt_len: int = 5,
        prompt_size: int = 128,
        prompt_ratio: float = 2 / 3,
        latent_prompt_ratio: float = 5 / 6,
        prompt_multiple: int = 8,
        num_heads: int = 4,
        ffn_expansion_factor: float = 2.66,
        bias: bool = False,
        layernorm_type: str = "WithBias",
        out_channels: Mapping[str, int] | None = None,
        official_unused_modules: bool = False,
    ) -> None:
        super().__init__()
        if not feature_info:
            raise ValueError("PromptHead needs at least one head position in feature_info")
        if layernorm_type not in _NORM_WITH_BIAS:
            raise ValueError(f"layernorm_type must be one of {sorted(_NORM_WITH_BIAS)}, not {layernorm_type!r}")
        out_channels = dict(out_channels or {})
        unknown = sorted(set(out_channels) - {f.name for f in feature_info})
        if unknown:
            names = [f.name for f in feature_info]
            raise ValueError(f"out_channels names unknown positions {unknown}; positions: {names}")
        deepest = max(f.reduction for f in feature_info)

        self.blocks = nn.ModuleDict()
        unused = nn.ModuleDict()
        for info in feature_info:
            ratio = latent_prompt_ratio if info.reduction == deepest else prompt_ratio
            prompt_dim = _round_to(info.channels * ratio, prompt_multiple)
            if (info.channels + prompt_dim) % num_heads:
                raise ValueError(
                    f"{info.name}: {info.channels} + {prompt_dim} prompt channels do not split into {num_heads} heads"
                )
            self.blocks[info.name] = PromptBlock(
                info.channels,
                out_channels.get(info.name, info.channels),
                prompt_dim,
                prompt_len,
                max(1, prompt_size // info.reduction),
                num_heads,
                ffn_expansion_factor,
                bias,
                _NORM_WITH_BIAS[layernorm_type],
            )
            if official_unused_modules:
                reduced = _round_to(info.channels * prompt_ratio, prompt_multiple)
                unused[info.name] = official_unused(info.channels, prompt_dim, reduced, bias)
        self.unused = unused if official_unused_modules else None

    def degradation_embeddings(self) -> dict[str, nn.Module]:
        """Each position's prompt-selection logits (the softmax of which weighs the prompt components)."""
        return {f"{name}.prompt_selection": block.prompt.select for name, block in self.blocks.items()}

    def forward(self, name: str, feature: Tensor, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        if name not in self.blocks:
            raise KeyError(f"PromptHead has no position {name!r}; built for {list(self.blocks)}")
        return self.blocks[name](feature), {}
