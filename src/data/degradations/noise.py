"""Additive white Gaussian noise, in the two protocols the all-in-one literature mixes up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from .base import Degradation
from .ops import bounds, finish, from_uint8, to_uint8, uniform


class GaussianNoise(Degradation):
    """AWGN with ``sigma`` on the 0-255 scale, drawn from ``sigmas`` or uniformly from ``sigma_range``.

    ``sigma_range``, when given, wins over ``sigmas`` (so a config can switch to blind noise without
    nulling the default set).

    * ``quantize=True`` is the PromptIR/AirNet protocol: the clean image is rounded to uint8, noise is
      added in 0-255, the result is clipped to [0, 255] and cast to uint8 by *truncation*
      (``astype(np.uint8)``, not rounding), then divided by 255. Truncation biases the noisy image by
      about -0.5/255; matching it matters when comparing PSNR with published numbers.
    * ``quantize=False`` is KAIR/DnCNN-style float noise, ``img + N(0, (sigma/255)^2)``. KAIR's test
      set is *not* clipped; ``clip=True`` (the default) clips to honour the [0, 1] contract, and
      ``clip=False`` reproduces KAIR evaluation at the cost of values outside [0, 1].

    Hand-written because albumentations' ``GaussNoise`` works on floats and cannot express the uint8
    truncation step.
    """

    family = "noise"

    def __init__(
        self,
        sigmas: Sequence[float] | None = (15, 25, 50),
        sigma_range: Sequence[float] | None = None,
        quantize: bool = False,
        clip: bool = True,
    ) -> None:
        if sigma_range is None and not sigmas:
            raise ValueError("GaussianNoise needs `sigmas` or `sigma_range`")
        self.sigmas = tuple(float(s) for s in sigmas) if sigmas else None
        self.sigma_range = bounds(sigma_range, "sigma_range", low=0.0) if sigma_range is not None else None
        if self.sigmas is not None and min(self.sigmas) < 0:
            raise ValueError(f"sigmas must be non-negative, got {self.sigmas!r}")
        self.quantize = bool(quantize)
        self.clip = bool(clip)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        if self.sigma_range is not None:
            return {"sigma": uniform(rng, self.sigma_range)}
        assert self.sigmas is not None
        return {"sigma": self.sigmas[int(rng.integers(len(self.sigmas)))]}

    def apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        sigma = np.float32(params["sigma"])
        noise = rng.standard_normal(image.shape, dtype=np.float32)
        if self.quantize:
            noisy = to_uint8(image).astype(np.float32) + noise * sigma
            return from_uint8(np.clip(noisy, 0.0, 255.0).astype(np.uint8))
        noisy = image.astype(np.float32, copy=False) + noise * (sigma / np.float32(255.0))
        return finish(noisy, image) if self.clip else noisy


class SpatiallyVariantNoise(Degradation):
    """Gaussian noise whose sigma varies smoothly over the image, from ``sigma_range[0]`` to ``sigma_range[1]``
    (0-255 scale), as FFDNet tests its noise-level maps: here the map is a random ``grid`` x ``grid`` field of
    uniform values, bicubically up-sampled to the image and rescaled to exactly span the range (a smooth map
    with both extremes in every image). Float noise, clipped to [0, 1]."""

    family = "noise_sv"

    def __init__(self, sigma_range: Sequence[float] = (0, 50), grid: int = 4) -> None:
        self.sigma_range = bounds(sigma_range, "sigma_range", low=0.0)
        if int(grid) < 2:
            raise ValueError(f"grid must be at least 2, got {grid}")
        self.grid = int(grid)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"low": float(self.sigma_range[0]), "high": float(self.sigma_range[1])}

    def sigma_map(self, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        """The per-pixel sigma (0-255 scale), ``height`` x ``width``."""
        field = rng.random((self.grid, self.grid), dtype=np.float32)
        smooth = cv2.resize(field, (width, height), interpolation=cv2.INTER_CUBIC)
        low, high = self.sigma_range
        span = float(smooth.max() - smooth.min()) or 1.0
        return low + (smooth - smooth.min()) / span * (high - low)

    def apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        sigma = self.sigma_map(image.shape[0], image.shape[1], rng)[..., None]
        noise = rng.standard_normal(image.shape, dtype=np.float32)
        return finish(image.astype(np.float32, copy=False) + noise * sigma / np.float32(255.0), image)
