"""RAM++ fine-tuning with Robust Feature Regularisation (RFR): frozen DINOv2 features of the degraded image fused
into the decoder (``strategy=ram_plus_finetune``).

As the official code (DragonisCV/RAM, commit 372e3a5) and not as its name suggests, RFR is no loss: the
degraded input goes through a frozen DINOv2, whose patch tokens from three pairs of its blocks (shallow 7 and
15, mid 20 and 22, deep 33 and 39 of ViT-g/14's 40, counted as its ``hidden_states`` are: 0 is the embedding)
are fused into the decoder. Each pair is gated into one map (both average-pooled, concatenated, two linear
layers with PReLU to two logits, a softmax at a learned temperature), adapted to the latent width (3x3
convolution to half the width, PReLU, 1x1 convolution), brought to the resolution of its place by
pixel-shuffle up-sampling (one step for mid, two for shallow), and added to the decoder feature there through a
1x1 convolution of both (``r + conv([dino, r])``): deep at the latent output (head position ``dec3``), mid after
decoder level 3 (``dec2``), shallow after decoder level 2 (``dec1``), exactly the three places of the official
``RestormerRFR``; on other backbones, the head positions of strides 8, 4 and 2. The image is resized so that
the 14-pixel patch grid is the latent's (``H/8 x W/8``; 128 -> 224 as officially), in ImageNet normalisation;
the release first reflect-pads to a multiple of 16, which changes nothing on its 128-pixel crops and is left out.

The extractor is pluggable: ``extractor: dinov2_giant`` (timm's ``vit_giant_patch14_dinov2``) from a local
safetensors file of timm's layout (``model.strategy.weights=...``; nothing is downloaded, and its absence stops
the run naming the file), or ``extractor: stand_in``, a small seeded ViT of the same family for tests and CPU
runs. Its weights are never saved in checkpoints. The fusion modules are new and always train; the rest of the
network trains in full (``ratio: 1.0``, the paper's default) or only its top MAC-ranked share, as RAM.

Official quirk named, not copied by default: during training the release feeds the deep feature of block 33 into
all six slots and the six distinct layers only at test time (``official_training_features: true`` copies it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.models.backbones.base import Head
from src.strategies.ram import RamFinetune, check_ratio
from src.strategies.ram_plus import IMAGENET_MEAN, IMAGENET_STD
from src.utils.errors import ConfigError

log = logging.getLogger(__name__)

#: the official block pairs (``hidden_states`` indices of ViT-g/14): shallow, mid, deep
OFFICIAL_LAYERS = ((7, 15), (20, 22), (33, 39))
#: where each pair is fused, coarsest first: deep at the latent output, mid and shallow on the way up
PLACES = ("deep", "mid", "shallow")
EXTRACTORS = {
    "dinov2_giant": {"model": "vit_giant_patch14_dinov2", "kwargs": {}},
    # a narrow ViT of the DINOv2 family with random weights: the wiring, not the representation
    "stand_in": {"model": "vit_small_patch14_dinov2", "kwargs": {"depth": 6, "embed_dim": 48, "num_heads": 3}},
}
STAND_IN_LAYERS = ((1, 2), (3, 4), (5, 6))


class FrozenExtractor:
    """A frozen ViT's patch tokens at chosen blocks, as ``B x C x H/8 x W/8`` maps (not an ``nn.Module`` on
    purpose: its weights belong to no checkpoint and no optimiser)."""

    def __init__(self, kind: str, weights: str | None, layers: Sequence[Sequence[int]], seed: int = 0) -> None:
        import timm

        if kind not in EXTRACTORS:
            raise ConfigError(f"model.strategy.extractor={kind!r}: expected one of {', '.join(EXTRACTORS)}")
        if kind != "stand_in":
            self._check_file(kind, weights)  # before building a billion-parameter network for nothing
        elif weights:
            raise ConfigError("model.strategy.weights is for a real extractor; the stand-in has random weights")
        spec = EXTRACTORS[kind]
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.model = timm.create_model(spec["model"], pretrained=False, dynamic_img_size=True, **spec["kwargs"])
        if kind != "stand_in":
            self._load(kind, str(weights))
        self.model.eval().requires_grad_(False)
        depth = len(self.model.blocks)
        flat = [int(i) for pair in layers for i in pair]
        if len(flat) != 6 or min(flat) < 1 or max(flat) > depth:
            raise ConfigError(f"model.strategy.layers={list(layers)}: three pairs of block numbers in 1..{depth} "
                              "(counted as hidden_states: 0 is the embedding)")
        self.layers = flat
        self.width = int(self.model.embed_dim)
        self.patch = int(self.model.patch_embed.patch_size[0])

    @staticmethod
    def _check_file(kind: str, weights: str | None) -> None:
        if not weights or not Path(weights).is_file():
            raise ConfigError(
                f"model.strategy.extractor={kind} needs its weights: model.strategy.weights=<model.safetensors of "
                f"timm/{EXTRACTORS[kind]['model']}.lvd142m (Hugging Face hub, timm's layout)>; "
                f"{'no file at ' + str(weights) if weights else 'none given'} (nothing is downloaded; "
                "extractor=stand_in runs without weights)")
        if not str(weights).endswith(".safetensors"):
            raise ConfigError(f"model.strategy.weights={weights}: give the .safetensors file (a pickled checkpoint "
                              "is never unpickled)")

    def _load(self, kind: str, weights: str) -> None:
        from safetensors.torch import load_file
        from timm.models.vision_transformer import checkpoint_filter_fn

        state = checkpoint_filter_fn(load_file(weights), self.model)
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ConfigError(f"model.strategy.weights={weights} does not fit {EXTRACTORS[kind]['model']}: "
                              f"missing {missing[:4]}, unexpected {unexpected[:4]}")

    def to(self, device: torch.device) -> FrozenExtractor:
        self.model.to(device)
        return self

    @torch.no_grad()
    def __call__(self, image: Tensor) -> list[Tensor]:
        """Six maps (float32) of ``image`` (``B x 3 x H x W`` in [0, 1], H and W multiples of 8)."""
        height, width = image.shape[-2:]
        rows, cols = height // 8, width // 8
        resized = F.interpolate(image.float(), size=(rows * self.patch, cols * self.patch), mode="bicubic",
                                align_corners=False)
        mean = torch.tensor(IMAGENET_MEAN, device=image.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=image.device).view(1, 3, 1, 1)
        device = next(self.model.parameters()).device
        if device != image.device:
            self.model.to(image.device)
        maps = self.model.forward_intermediates((resized - mean) / std, indices=[i - 1 for i in self.layers],
                                                norm=False, output_fmt="NCHW", intermediates_only=True)
        return [m.float() for m in maps]


class PairGate(nn.Module):
    """Two feature maps into one: a per-image softmax weight for each, from their pooled descriptors."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = max(channels // 3, 2)
        self.score = nn.Sequential(nn.Linear(2 * channels, channels), nn.PReLU(), nn.Linear(channels, hidden),
                                   nn.PReLU(), nn.Linear(hidden, 2))
        self.temperature = nn.Parameter(torch.ones(()))

    def forward(self, first: Tensor, second: Tensor) -> Tensor:
        pooled = torch.cat([first.mean(dim=(2, 3)), second.mean(dim=(2, 3))], dim=1)
        weights = (self.score(pooled) / self.temperature.clamp(min=1e-8)).softmax(dim=1)
        return weights[:, 0, None, None, None] * first + weights[:, 1, None, None, None] * second


class Upsample(nn.Module):
    """Twice the resolution at half the width (3x3 convolution to twice the width, pixel shuffle)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, 2 * channels, 3, padding=1, bias=False), nn.PixelShuffle(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class PlaceFusion(nn.Module):
    """One place of the decoder: gate the pair, adapt it to the latent width, up-sample ``steps`` times, then
    ``r + conv1x1([dino, r])``."""

    def __init__(self, extractor_width: int, latent_width: int, steps: int, place_width: int) -> None:
        super().__init__()
        self.gate = PairGate(extractor_width)
        half = max(extractor_width // 2, 1)
        self.adapt = nn.Sequential(nn.Conv2d(extractor_width, half, 3, padding=1), nn.PReLU(half),
                                   nn.Conv2d(half, latent_width, 1))
        widths = [latent_width // 2**i for i in range(steps + 1)]
        self.up = nn.Sequential(*(Upsample(w) for w in widths[:-1]))
        if widths[-1] != place_width:
            raise ConfigError(f"RFR: the decoder is {place_width} wide where {widths[-1]} channels arrive (RAM++ "
                              "fuses into a Restormer-like decoder whose width halves per level)")
        self.fuse = nn.Conv2d(2 * place_width, place_width, 1, bias=False)

    def forward(self, feature: Tensor, first: Tensor, second: Tensor) -> Tensor:
        dino = self.up(self.adapt(self.gate(first, second)))
        if dino.shape[-2:] != feature.shape[-2:]:  # a padded input: the extractor saw the unpadded grid
            dino = F.interpolate(dino, size=feature.shape[-2:], mode="bilinear", align_corners=False)
        return feature + self.fuse(torch.cat([dino.to(feature.dtype), feature], dim=1))


class RfrHead(Head):
    """Fuses the extractor's maps at the three decoder places, then applies the model's own head."""

    def __init__(self, inner: Head | None, fusion: nn.ModuleDict, positions: Mapping[str, str],
                 extractor: FrozenExtractor, official_training_features: bool = False) -> None:
        super().__init__()
        self.inner = inner
        self.context_keys = inner.context_keys if inner is not None else ()
        self._parts = {"fusion": fusion, "extractor": extractor}  # not registered: the strategy owns them
        self.positions = dict(positions)  # position -> place
        self.official_training_features = official_training_features
        self._image: Tensor | None = None
        self._maps: list[Tensor] = []

    def forward(self, name: str, feature: Tensor, image: Tensor, **context: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        place = self.positions.get(name)
        if place is not None:
            if self._image is not image:
                self._maps, self._image = self._parts["extractor"](image), image
            index = PLACES.index(place)
            first, second = self._maps[2 * index], self._maps[2 * index + 1]
            if self.official_training_features and torch.is_grad_enabled():
                first = second = self._maps[4]  # the release trains with block 33's tokens in every slot
            feature = self._parts["fusion"][place](feature, first, second)
        if self.inner is None:
            return feature, {}
        return self.inner(name, feature, image, **context)


class RamPlusFinetune(RamFinetune):
    """RAM++ fine-tuning: RFR fusion modules (always trained) and the network, all of it or its top MAC share."""

    def __init__(self, ranking: str | None = None, ratio: float = 1.0, extractor: str = "dinov2_giant",
                 weights: str | None = None, layers: Sequence[Sequence[int]] | None = None,
                 official_training_features: bool = False, seed: int = 0) -> None:
        nn.Module.__init__(self)
        self.ratio = check_ratio(ratio, "model.strategy.ratio")
        if self.ratio < 1.0 and not ranking:
            raise ConfigError(f"model.strategy.ratio={ratio} fine-tunes the top MAC-ranked layers: give "
                              "model.strategy.ranking=<mac_ranking.json of python -m src.analysis.mac>")
        self.ranking = None if ranking is None else str(ranking)
        self.selected: list[str] = []
        self.kind, self.weights = extractor, weights
        default = STAND_IN_LAYERS if extractor == "stand_in" else OFFICIAL_LAYERS
        self.layer_pairs = tuple(tuple(int(i) for i in pair) for pair in (layers or default))
        self.official_training_features = bool(official_training_features)
        self.seed = int(seed)
        self.fusion = nn.ModuleDict()
        self.extractor: FrozenExtractor | None = None
        self._head: RfrHead | None = None

    def bind(self, module: Any) -> None:
        by_stride = {i.reduction: i for i in module.net.feature_info}
        if not {8, 4, 2} <= set(by_stride):
            found = [(i.name, i.reduction) for i in module.net.feature_info]
            raise ConfigError(f"strategy=ram_plus_finetune fuses at the decoder head positions of strides 8, 4 and 2 "
                              f"(Restormer's dec3, dec2, dec1); {type(module.net).__name__} has {found or 'none'} "
                              "(feature_info)")
        self.extractor = FrozenExtractor(self.kind, self.weights, self.layer_pairs, self.seed)
        needed = {by_stride[8].name: "deep", by_stride[4].name: "mid", by_stride[2].name: "shallow"}
        latent = by_stride[8].channels
        for stride, place in ((8, "deep"), (4, "mid"), (2, "shallow")):
            steps = {"deep": 0, "mid": 1, "shallow": 2}[place]
            self.fusion[place] = PlaceFusion(self.extractor.width, latent, steps, by_stride[stride].channels)
        if self.ratio < 1.0:
            super().bind(module)  # freezes all but the selected layers (the fusion too, released below)
        for parameter in self.fusion.parameters():
            parameter.requires_grad_(True)
        self._head = RfrHead(module.head, self.fusion, needed, self.extractor, self.official_training_features)
        log.info("RAM++ RFR: %s features of blocks %s fused at dec3/dec2/dec1; %s of the network trains",
                 self.kind, self.layer_pairs, "all" if self.ratio == 1.0 else f"the top {self.ratio:g} of layers")

    def network_head(self, module: Any) -> nn.Module | None:
        return self._head if self._head is not None else module.head
