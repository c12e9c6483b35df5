"""Bicubic down-sampling for super-resolution (family ``sr``): MATLAB's ``imresize(hr, 1/scale)``, as the
field's SR benchmarks (DIV2K, Set5 ... Manga109) make their low-resolution inputs."""

from __future__ import annotations

from typing import Any

import numpy as np

from src.utils.imresize import imresize

from .base import Degradation
from .ops import from_uint8, to_uint8


class BicubicDownsample(Degradation):
    """The image down-sampled ``scale`` times with MATLAB's anti-aliased bicubic; its sides must be multiples
    of ``scale`` (the settings crop them so, as the papers' ``modcrop``), except with ``upsample``.

    ``quantize`` rounds to 8-bit levels, as the published LR files are PNGs; ``upsample`` brings the result
    back to the input's size with the same bicubic (SRCNN and every same-size restorer: InstructIR's SR task).
    Deterministic: ``rng`` is not used.
    """

    family = "sr"
    deterministic = True

    def __init__(self, scale: int = 2, quantize: bool = True, upsample: bool = False) -> None:
        if int(scale) != scale or scale < 2:
            raise ValueError(f"sr scale must be a whole number >= 2, got {scale!r}")
        self.scale = 1 if upsample else int(scale)
        self.factor = int(scale)
        self.quantize = bool(quantize)
        self.upsample = bool(upsample)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"scale": self.factor}

    def apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        scale = int(params["scale"])
        height, width = image.shape[:2]
        if (height % scale or width % scale) and not self.upsample:
            raise ValueError(f"sr x{scale}: a {width}x{height} image is not a multiple of the scale; crop it to "
                             f"one first (the data settings' crop_multiple / patch_size must be multiples of it)")
        out = imresize(image, out_shape=(-(-height // scale), -(-width // scale)))  # MATLAB's ceil(n / s)
        if self.quantize:
            out = from_uint8(to_uint8(out))
        if self.upsample:
            out = imresize(out, out_shape=(height, width))
            if self.quantize:
                out = from_uint8(to_uint8(out))
        return np.clip(out, 0.0, 1.0).astype(np.float32).reshape(out.shape[:2] + image.shape[2:])
