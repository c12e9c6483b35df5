"""Haze from the atmospheric scattering model, with a synthetic depth map (no depth network needed)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from .base import Degradation
from .ops import bounds, finish, uniform

_DEPTHS = ("gradient", "random")


def smooth_field(shape: tuple[int, int], rng: np.random.Generator, cells: int) -> np.ndarray:
    """A smooth random ``HxW`` field in [0, 1]: a ``cells x cells`` Gaussian grid, bicubically upsampled."""
    h, w = shape
    grid = rng.standard_normal((cells, cells)).astype(np.float32)
    return normalise(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC))


def normalise(field: np.ndarray) -> np.ndarray:
    """Stretch to [0, 1]; a constant field maps to 0 (no haze gradient) instead of dividing by zero."""
    lo, span = float(field.min()), float(field.max() - field.min())
    return (field - lo) / span if span > 1e-6 else np.zeros_like(field)


class AtmosphericHaze(Degradation):
    """``I = J t + A (1 - t)`` with transmission ``t = exp(-beta d)`` and depth ``d`` in [0, 1].

    ``depth="gradient"`` makes depth grow along a random direction (a ground plane receding to the
    horizon is the typical outdoor layout) plus ``depth_noise`` of smooth randomness; ``"random"`` is
    a pure smooth random field. ``airlight`` is grey (the same ``A`` in every channel), as in the
    RESIDE/OTS synthesis. ``depth_range`` maps the normalised depth to ``[near, far]``: with the default
    ``(0, 1)`` every image (and every training crop) has a haze-free point, so faint haze there looks like a
    clean low-contrast scene; ``near > 0`` puts the nearest point of the scene some way into the haze too.

    Hand-written: albumentations' ``RandomFog`` paints fog blobs, it is not the scattering model
    that dehazing networks (and their priors) assume.
    """

    family = "haze"

    def __init__(
        self,
        beta_range: Sequence[float] = (0.6, 1.8),
        airlight_range: Sequence[float] = (0.7, 1.0),
        depth: str = "gradient",
        depth_noise: float = 0.3,
        cells: int = 4,
        depth_range: Sequence[float] = (0.0, 1.0),
    ) -> None:
        if depth not in _DEPTHS:
            raise ValueError(f"depth must be one of {_DEPTHS}, got {depth!r}")
        if cells < 2:
            raise ValueError(f"cells must be >= 2, got {cells}")
        self.beta_range = bounds(beta_range, "beta_range", low=0.0)
        self.airlight_range = bounds(airlight_range, "airlight_range", low=0.0)
        self.depth = depth
        self.depth_noise = float(depth_noise)
        self.cells = int(cells)
        self.depth_range = bounds(depth_range, "depth_range", low=0.0)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        params = {"beta": uniform(rng, self.beta_range), "airlight": uniform(rng, self.airlight_range)}
        if self.depth == "gradient":
            params["angle"] = uniform(rng, (0.0, 360.0))
        return params

    def depth_map(self, shape: tuple[int, int], params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        """The ``HxW`` float32 depth in ``depth_range`` (default [0, 1]; 0 = no haze)."""
        field = smooth_field(shape, rng, self.cells)
        if self.depth == "random":
            unit = field
        else:
            h, w = shape
            ys = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
            xs = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :]
            angle = math.radians(params["angle"])
            ramp = normalise(xs * np.float32(math.cos(angle)) + ys * np.float32(math.sin(angle)))
            unit = normalise(ramp + np.float32(self.depth_noise) * field)
        near, far = self.depth_range  # exact for the default (0, 1): 0 + 1 * unit == unit
        return np.float32(near) + np.float32(far - near) * unit

    def apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        depth = self.depth_map(image.shape[:2], params, rng)
        t = np.exp(np.float32(-params["beta"]) * depth)[..., None]
        out = image * t + np.float32(params["airlight"]) * (1.0 - t)
        return finish(out, image)
