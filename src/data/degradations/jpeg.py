"""JPEG compression artefacts (blocking, ringing, chroma bleeding) at a random quality."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import albumentations as A
import numpy as np

from .base import Degradation
from .ops import bounds, finish, from_uint8, integer, seed_from, to_uint8


class JPEGCompression(Degradation):
    """Encode/decode with OpenCV's libjpeg through ``A.ImageCompression`` at quality in ``quality_range``.

    JPEG works on uint8, so the image is rounded to uint8 first and divided by 255 after. OpenCV
    (and so albumentations) reads three channels as BGR when converting to YCbCr; our images are RGB,
    so channels are flipped around the call, otherwise red and blue swap luma weights (0.299 vs 0.114)
    and the chroma artefacts land on the wrong colours.
    """

    family = "jpeg"

    def __init__(self, quality_range: Sequence[int] = (10, 50)) -> None:
        self.quality_range = bounds(quality_range, "quality_range", low=1.0, integral=True)
        if self.quality_range[1] > 100:
            raise ValueError(f"quality_range must lie in [1, 100], got {self.quality_range!r}")

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"quality": integer(rng, self.quality_range)}

    def apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        quality = params["quality"]
        transform = A.ImageCompression(compression_type="jpeg", quality_range=(quality, quality), p=1.0)
        transform.set_random_seed(seed_from(rng))
        pixels = to_uint8(image)
        rgb = pixels.ndim == 3 and pixels.shape[2] == 3
        if rgb:
            pixels = np.ascontiguousarray(pixels[..., ::-1])
        out = transform(image=pixels)["image"]
        if rgb:
            out = out[..., ::-1]
        return finish(from_uint8(out), image)
