"""TransWeather (Valanarasu, Yasarla and Patel, CVPR 2022): one transformer for rain, raindrops, snow and haze.

A four-stage hierarchical transformer encoder (SegFormer-style efficient attention: keys and values from a
strided convolution of the token map; Mix-FFN with a depthwise convolution) in which every stage also runs an
intra-patch branch (a finer patch embedding of the previous stage's map through one block) added to the next
stage's embedding; a decoder whose queries are a learned set of weather-type embeddings (48 x 512), resized
(nearest) to the number of tokens; and a convolutional tail of transposed convolutions and residual blocks
with the encoder's maps added at each scale, then a convolution and tanh.

The network has no size arguments: every width, depth and head count is the official one (38,052,078
parameters). The official loaders feed ``2 * x - 1`` and compare the tanh output with the [0, 1] target, so
this backbone takes ``x`` in [0, 1] and returns the official ``model(2 * x - 1)``. Two LayerNorm epsilons are
kept as the official code has them: 1e-6 in the blocks and stage norms, 1e-5 in the patch embeddings and the
key/value reduction. Unused official parts (the encoder's fourth intra-patch embedding, the tail's own output
convolution) are built so that released checkpoints load strictly. Works at multiples of 16 and at least 64
pixels a side (padded with reflection, then edges; the official loader resizes instead).
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.models.backbones.base import Backbone, Head, crop_to, pad_to_multiple

DIMS = (64, 128, 320, 512)
ENC_HEADS = (1, 2, 4, 4)
ENC_MLP = (2, 2, 2, 2)
ENC_DEPTHS = (2, 2, 2, 2)
ENC_SR = (4, 2, 2, 1)
#: the intra-patch blocks' heads and reduction ratios, as the official code indexes them
PATCH_HEADS = (1, 2, 2)
PATCH_SR = (4, 2, 2)
DEC_HEADS, DEC_MLP, DEC_DEPTH, QUERIES = 8, 4, 3, 48
#: the smallest side the network runs on (smaller inputs are edge-padded up to it)
MIN_SIDE = 64
BlockNorm = partial(nn.LayerNorm, eps=1e-6)


class PatchEmbed(nn.Module):
    """Overlapping patch embedding: a strided convolution, then LayerNorm (eps 1e-5) over the tokens."""

    def __init__(self, in_channels: int, dim: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel, stride=stride, padding=kernel // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> tuple[Tensor, int, int]:
        x = self.proj(x)
        h, w = x.shape[-2:]
        return self.norm(x.flatten(2).transpose(1, 2)), h, w


class MixFFN(nn.Module):
    """fc1, 3x3 depthwise convolution on the token map, GELU, fc2."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        x = self.fc1(x)
        b, n, c = x.shape
        x = self.dwconv(x.transpose(1, 2).reshape(b, c, h, w)).flatten(2).transpose(1, 2)
        return self.fc2(F.gelu(x))


class EfficientAttention(nn.Module):
    """Multi-head attention whose keys and values come from the token map reduced by a ``sr``-strided
    convolution and LayerNorm (eps 1e-5) when ``sr > 1``. With ``queries``, the queries are that many learned
    embeddings (TransWeather's weather-type queries), nearest-resized to the number of tokens."""

    def __init__(self, dim: int, heads: int, sr: int, queries: int = 0) -> None:
        super().__init__()
        self.heads, self.sr = heads, sr
        self.scale = (dim // heads) ** -0.5
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        if queries:
            self.task_query = nn.Parameter(torch.randn(1, queries, dim))
        if sr > 1:
            self.reduce = nn.Conv2d(dim, dim, sr, stride=sr)
            self.norm = nn.LayerNorm(dim)

    def _split(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.heads, c // self.heads).transpose(1, 2)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        b, n, c = x.shape
        source = x
        if self.sr > 1:
            reduced = self.reduce(x.transpose(1, 2).reshape(b, c, h, w))
            source = self.norm(reduced.flatten(2).transpose(1, 2))
        k, v = (self._split(t) for t in self.kv(source).chunk(2, dim=-1))
        if hasattr(self, "task_query"):
            q = self._split(self.q(self.task_query).expand(b, -1, -1))
            q = F.interpolate(q, size=(v.shape[2], v.shape[3]), mode="nearest")
        else:
            q = self._split(self.q(x))
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    """Pre-norm transformer block (eps 1e-6): attention, then Mix-FFN, each residual."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int, sr: int, queries: int = 0) -> None:
        super().__init__()
        self.norm1 = BlockNorm(dim)
        self.attn = EfficientAttention(dim, heads, sr, queries)
        self.norm2 = BlockNorm(dim)
        self.mlp = MixFFN(dim, dim * mlp_ratio)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        x = x + self.attn(self.norm1(x), h, w)
        return x + self.mlp(self.norm2(x), h, w)


def _to_map(tokens: Tensor, h: int, w: int) -> Tensor:
    return tokens.reshape(tokens.shape[0], h, w, -1).permute(0, 3, 1, 2).contiguous()


class Encoder(nn.Module):
    """Four stages (patch embedding, blocks, norm) with the intra-patch branch feeding stages 2-4."""

    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = nn.ModuleList(
            [PatchEmbed(3, DIMS[0], 7, 4)] + [PatchEmbed(DIMS[i - 1], DIMS[i], 3, 2) for i in range(1, 4)]
        )
        self.stages = nn.ModuleList(
            nn.ModuleList(Block(DIMS[i], ENC_HEADS[i], ENC_MLP[i], ENC_SR[i]) for _ in range(ENC_DEPTHS[i]))
            for i in range(4)
        )
        self.norms = nn.ModuleList(BlockNorm(d) for d in DIMS)
        # intra-patch branch; its fourth embedding is built (official checkpoints hold it) but never used
        self.mini_embed = nn.ModuleList(
            [PatchEmbed(DIMS[i], DIMS[i + 1], 3, 2) for i in range(3)] + [PatchEmbed(DIMS[0], DIMS[3], 3, 2)]
        )
        self.mini_blocks = nn.ModuleList(Block(DIMS[i + 1], PATCH_HEADS[i], ENC_MLP[i], PATCH_SR[i]) for i in range(3))
        self.mini_norms = nn.ModuleList(BlockNorm(DIMS[i + 1]) for i in range(3))
        self.mini_embed[3].requires_grad_(False)  # no gradient ever reaches it: frozen, so DDP needs no search

    def forward(self, x: Tensor) -> list[Tensor]:
        outs: list[Tensor] = []
        tokens, h, w = self.patch_embed[0](x)
        mini_map = None
        for i in range(4):
            if i > 0:
                tokens, h, w = self.patch_embed[i](outs[-1])
                tokens = tokens.transpose(1, 2).reshape(-1, DIMS[i], h, w) + mini_map
                stage_map = tokens
                tokens = tokens.flatten(2).transpose(1, 2)
            else:
                stage_map = _to_map(tokens, h, w)
            if i < 3:  # the intra-patch branch from this stage's input map to the next stage
                mini, mh, mw = self.mini_embed[i](stage_map)
            for block in self.stages[i]:
                tokens = block(tokens, h, w)
            outs.append(_to_map(self.norms[i](tokens), h, w))
            if i < 3:
                mini_map = _to_map(self.mini_norms[i](self.mini_blocks[i](mini, mh, mw)), mh, mw)
        return outs


class Decoder(nn.Module):
    """A patch embedding of the last encoder map, three blocks with the weather-type queries, and a norm."""

    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(DIMS[3], DIMS[3], 3, 2)
        self.blocks = nn.ModuleList(Block(DIMS[3], DEC_HEADS, DEC_MLP, 1, QUERIES) for _ in range(DEC_DEPTH))
        self.norm = BlockNorm(DIMS[3])

    def forward(self, x: Tensor) -> Tensor:
        tokens, h, w = self.patch_embed(x)
        for block in self.blocks:
            tokens = block(tokens, h, w)
        return _to_map(self.norm(tokens), h, w)


class ResidualBlock(nn.Module):
    """x + 0.1 * conv(relu(conv(x)))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + 0.1 * self.conv2(F.relu(self.conv1(x)))


def _up(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1)


def _crop_to(x: Tensor, like: Tensor) -> Tensor:
    """The official crop-by-one after an up-sampling that overshoots the skip's size."""
    return x[..., : like.shape[2], : like.shape[3]] if x.shape[2:] != like.shape[2:] else x


class Tail(nn.Module):
    """Transposed convolutions 1/32 -> 1/1 with the encoder's maps added and residual blocks between."""

    def __init__(self) -> None:
        super().__init__()
        self.up32 = _up(512, 512)
        self.up16 = _up(512, 320)
        self.res16 = ResidualBlock(320)
        self.up8 = _up(320, 128)
        self.res8 = ResidualBlock(128)
        self.up4 = _up(128, 64)
        self.res4 = ResidualBlock(64)
        self.up2 = _up(64, 16)
        self.res2 = ResidualBlock(16)
        self.up1 = _up(16, 8)
        self.unused_output = nn.Conv2d(8, 3, 3, padding=1).requires_grad_(False)  # in the state dict, never called

    def forward(self, encoded: list[Tensor], decoded: Tensor) -> Tensor:
        x = _crop_to(self.up32(decoded), encoded[3]) + encoded[3]
        x = _crop_to(self.up16(x), encoded[2])
        x = self.up8(self.res16(x) + encoded[2])
        x = self.up4(self.res8(x) + encoded[1])
        x = self.up2(self.res4(x) + encoded[0])
        return self.up1(self.res2(x))


class TransWeather(Backbone):
    """The official ``Transweather()`` in [0, 1] units (see the module docstring)."""

    multiple = 16

    def __init__(self) -> None:
        super().__init__()
        self.encoder = Encoder()
        self.decoder = Decoder()
        self.tail = Tail()
        self.clean = nn.Conv2d(8, 3, 3, padding=1)

    def official(self, x: Tensor) -> Tensor:
        """The official forward on its own [-1, 1] input; returns its tanh output."""
        encoded = self.encoder(x)
        return torch.tanh(self.clean(self.tail(encoded, self.decoder(encoded[3]))))

    def forward(self, lq: Tensor, head: Head | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        x, size = pad_to_multiple(lq, self.multiple)
        short_h, short_w = max(MIN_SIDE - x.shape[-2], 0), max(MIN_SIDE - x.shape[-1], 0)
        if short_h or short_w:  # the deepest maps need 64 pixels: 1/32 reduced again by 2 in attention
            x = F.pad(x, (0, short_w, 0, short_h), mode="replicate")
        return crop_to(self.official(2 * x - 1), size), {}
