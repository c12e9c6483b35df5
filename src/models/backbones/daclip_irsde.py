"""DA-CLIP's restorer (Luo et al., "Controlling Vision-Language Models for Multi-Task Image Restoration", ICLR
2024): the IR-SDE sampled with DA-CLIP's conditional U-Net (:mod:`src.models.layers.conditional_unet`,
:mod:`src.models.layers.irsde`).

``forward(lq)`` restores: the context encoder gives the image's content and degradation embeddings (DA-CLIP's
controlled CLIP; here a pluggable :class:`ContextEncoder`), sampling starts at ``lq + max_sigma * z`` and runs the
posterior for ``sample_steps`` steps (100 by default). The noise of each step can be predicted tile by tile
(``tile``: overlapping tiles of the whole state, blended), so a 1024 x 1024 image fits where the whole-image
attention of the release runs out of memory; the state, the step and the contexts stay the whole image's.
Sampling noise comes from a generator seeded with ``seed``, so a restoration is repeatable. Training is the
release's matching loss (:mod:`src.strategies.irsde`, the default strategy of ``model=daclip_irsde``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.models.backbones.base import Backbone, Head
from src.models.layers.clip_text import DACLIP_DEGRADATIONS, name_embeddings, zero_shot
from src.models.layers.clip_vision import (
    CLIP_PREPROCESS,
    VIT_B_32,
    ControlledVision,
    from_daclip_state,
    read_clip_state,
)
from src.models.layers.conditional_unet import ConditionalUNet
from src.models.layers.irsde import IRSDE
from src.models.official import load_strict

#: DA-CLIP's embedding width (ViT-B/32's)
EMBED_DIM = 512


class ContextEncoder(nn.Module):
    """What conditions the U-Net: ``(content, degradation)`` embeddings of an image batch, B x ``dim`` each."""

    dim: int = EMBED_DIM

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


class StandInContexts(ContextEncoder):
    """A small seeded stand-in for DA-CLIP (tests, and runs without its weights): the image pooled to 8 x 8 and
    projected by two fixed random matrices; frozen and outside the state dict (not DA-CLIP's features: a run
    with it trains a U-Net conditioned on a fixed random view of the image)."""

    def __init__(self, dim: int = EMBED_DIM, seed: int = 0, in_channels: int = 3) -> None:
        super().__init__()
        self.dim = dim
        generator = torch.Generator().manual_seed(seed)
        features = in_channels * 64
        for name in ("content", "degradation"):
            self.register_buffer(name, torch.randn(features, dim, generator=generator) / features**0.5,
                                 persistent=False)

    @torch.no_grad()
    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        pooled = F.adaptive_avg_pool2d(image.float(), 8).flatten(1)
        return pooled @ self.content, pooled @ self.degradation


class DaclipContexts(ContextEncoder):
    """DA-CLIP's controlled CLIP (:class:`~src.models.layers.clip_vision.ControlledVision`) on CLIP's preprocessing
    of the image (``preprocess``: ``release``, DA-CLIP's own through PIL on 8-bit values, or ``float``, on the
    image's device): the content and degradation embeddings the release's restorer reads; frozen. ``names`` (the
    text embeddings of DA-CLIP's degradation names, read on first use from ``weights``) classify degradations."""

    def __init__(self, vision: ControlledVision, weights: str | Path | None = None,
                 text: Mapping[str, Any] | None = None, preprocess: str = "release") -> None:
        super().__init__()
        if preprocess not in CLIP_PREPROCESS:
            raise ValueError(f"model.backbone.clip_preprocess={preprocess!r}: expected one of "
                             f"{sorted(CLIP_PREPROCESS)}")
        self.preprocess = CLIP_PREPROCESS[preprocess]
        self.vision = vision.eval().requires_grad_(False)
        self.dim = vision.visual.proj.shape[1]
        self.weights, self.text = weights, text
        self._names: Tensor | None = None

    def names(self) -> Tensor:
        """The normalised text embeddings of :data:`~src.models.layers.clip_text.DACLIP_DEGRADATIONS`."""
        if self._names is None:
            if self.weights is None:
                raise ValueError("DA-CLIP's degradation names need its checkpoint's text tower: no weights file given")
            self._names = name_embeddings(read_clip_state(self.weights, DACLIP_WEIGHTS_HINT), DACLIP_DEGRADATIONS,
                                           self.text)
        return self._names

    @torch.no_grad()
    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        return self.vision(self.preprocess(image, self.vision.visual.image_size))


#: where DA-CLIP's weights come from, for the message when the file is absent
DACLIP_WEIGHTS_HINT = ("model.backbone.clip_weights must be DA-CLIP's released daclip_ViT-B-32.pt (Hugging Face "
                       "weblzw/daclip-uir-ViT-B-32-irsde); download it where you have internet and point the key at it")


def read_daclip(path: str | Path, vision: Mapping[str, Any] | None = None) -> ControlledVision:
    """DA-CLIP's image side from its released checkpoint, loaded strictly."""
    model = ControlledVision(**(dict(vision) if vision else VIT_B_32))
    state = from_daclip_state(read_clip_state(path, DACLIP_WEIGHTS_HINT))
    load_strict(model, state, source=f"model.backbone.clip_weights={path}")
    return model


def tile_windows(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` covering ``size`` with at least ``overlap`` shared pixels."""
    if tile >= size:
        return [0]
    stride = max(tile - overlap, 1)
    starts = list(range(0, size - tile, stride))
    return starts + [size - tile]


class DaclipIRSDE(Backbone):
    """IR-SDE sampling around DA-CLIP's conditional U-Net; ``unet`` holds the official weights' names."""

    def __init__(self, in_channels: int = 3, width: int = 64, multipliers: Sequence[int] = (1, 2, 4, 8),
                 context_dim: int = EMBED_DIM, use_degradation: bool = True, use_image: bool = True,
                 max_sigma: float = 50.0, steps: int = 100, schedule: str = "cosine", eps: float = 0.005,
                 sample_steps: int | None = None, seed: int = 0, tile: int | None = None, tile_overlap: int = 32,
                 encoder: str | ContextEncoder = "stand_in", clip_weights: str | None = None,
                 clip_vision: Mapping[str, Any] | None = None, clip_text: Mapping[str, Any] | None = None,
                 clip_preprocess: str = "release") -> None:
        """``encoder``: ``daclip`` (DA-CLIP's controlled CLIP from ``clip_weights``, its ViT-B/32 or the
        ``clip_vision`` sizes; ``clip_preprocess``: ``release`` or ``float``) or ``stand_in`` (seeded, no
        weights); or a :class:`ContextEncoder`."""
        super().__init__()
        self.unet = ConditionalUNet(in_channels, in_channels, width, multipliers, context_dim, use_degradation,
                                    use_image)
        self.sde = IRSDE(max_sigma, steps, schedule, eps)
        self.sampler = self.sde if not sample_steps or sample_steps == steps else \
            IRSDE(max_sigma, steps, schedule, eps, sample_steps)
        if encoder == "daclip":
            if not clip_weights:
                raise ValueError("model.backbone.encoder=daclip reads DA-CLIP's weights: set "
                                 "model.backbone.clip_weights=<daclip_ViT-B-32.pt> (or encoder=stand_in)")
            encoder = DaclipContexts(read_daclip(clip_weights, clip_vision), clip_weights, clip_text, clip_preprocess)
        elif encoder == "stand_in":
            encoder = StandInContexts(context_dim, seed, in_channels)
        elif not isinstance(encoder, ContextEncoder):
            raise ValueError(f"model.backbone.encoder={encoder!r}: expected daclip or stand_in")
        # frozen and read from its own file: kept out of the state dict and of the optimiser
        self.__dict__["encoder"] = encoder
        self.seed, self.tile, self.tile_overlap = int(seed), tile, int(tile_overlap)
        if tile is not None and tile <= tile_overlap:
            raise ValueError(f"model.backbone.tile={tile} must be larger than tile_overlap={tile_overlap}")
        self.in_channels = self.out_channels = in_channels
        self.multiple = 1  # the U-Net pads itself

    def contexts(self, lq: Tensor) -> tuple[Tensor, Tensor]:
        """The (content, degradation) embeddings of ``lq`` (no gradient: DA-CLIP is frozen)."""
        encoder = self.encoder.to(lq.device)
        with torch.no_grad():
            content, degradation = encoder(lq)
        return content.to(lq.dtype), degradation.to(lq.dtype)

    def degradation_embeddings(self, lq: Tensor) -> dict[str, Tensor]:
        content, degradation = self.contexts(lq)
        return {"daclip:content": content, "daclip:degradation": degradation}

    def classify(self, lq: Tensor) -> tuple[tuple[str, ...], Tensor]:
        """DA-CLIP as a degradation classifier: its names and, per image, the cosine similarity of its degradation
        embedding with each name's (B x 10); needs ``encoder=daclip``."""
        if not isinstance(self.encoder, DaclipContexts):
            raise ValueError("classifying degradations by name needs DA-CLIP itself: model.backbone.encoder=daclip "
                             "with model.backbone.clip_weights")
        _, degradation = self.contexts(lq)
        return DACLIP_DEGRADATIONS, zero_shot(degradation, self.encoder.names().to(lq.device))

    def predict_noise(self, xt: Tensor, lq: Tensor, time: Tensor | float, contexts: tuple[Tensor, Tensor]) -> Tensor:
        """The U-Net's noise of ``xt``, over overlapping tiles (blended by averaging) when ``tile`` is set."""
        content, degradation = contexts
        height, width = xt.shape[-2:]
        if self.tile is None or (height <= self.tile and width <= self.tile):
            return self.unet(xt, lq, time, degradation, content)
        out = torch.zeros_like(xt)
        weight = torch.zeros_like(xt[:, :1])
        for top in tile_windows(height, self.tile, self.tile_overlap):
            for left in tile_windows(width, self.tile, self.tile_overlap):
                window = (..., slice(top, top + self.tile), slice(left, left + self.tile))
                out[window] += self.unet(xt[window], lq[window], time, degradation, content)
                weight[window] += 1
        return out / weight

    def forward(self, lq: Tensor, head: Head | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Sample the reverse SDE from ``lq``, in float32 whatever autocast says: the noise is multiplied by up to
        ``1 / eps`` (200) in the estimate of ``x_0``, so bf16's rounding would reach the image (0.1 after 4 steps)."""
        sampler = self.sampler
        lq = lq.float()
        with torch.autocast(lq.device.type, enabled=False):
            generator = torch.Generator(device=lq.device).manual_seed(self.seed)
            contexts = self.contexts(lq)
            x = sampler.initial_state(lq, generator)
            for t in range(sampler.sample_steps, 0, -1):
                noise = self.predict_noise(x, lq, t * sampler.time_scale, contexts)
                x = sampler.posterior_step(x, noise, lq, t, generator)
        return x, {}
