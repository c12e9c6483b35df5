"""Synthetic rain: a layer of bright, slightly motion-blurred streaks blended over the image."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from .base import Degradation
from .ops import bounds, filter_same, finish, integer, line_kernel, uniform

_BLENDS = ("screen", "add")


class SyntheticRain(Degradation):
    """Rain streaks of random angle, length, density, width and brightness (Rain100L/H style).

    Per image, :meth:`sample` draws the shared streak angle (degrees from vertical; positive moves the
    lower end to the right), the mean length in pixels, the density (streaks per pixel of image area),
    the line width and the layer brightness. :meth:`apply` scatters the streaks (lengths jittered
    +-30 %, intensities 70-100 % of the brightness), blurs the layer along the streak direction by
    ``blur`` pixels and blends it: ``screen`` (``1 - (1-I)(1-R)``, never saturates abruptly) or
    ``add`` (``I + R``, clipped).

    Hand-written rather than albumentations' ``RandomRain``: that transform has no density control,
    draws the same drop length for all streaks and darkens the whole image, so it cannot reproduce
    the light/heavy rain split the benchmarks use.
    """

    family = "rain"

    def __init__(
        self,
        angle_range: Sequence[float] = (-30.0, 30.0),
        length_range: Sequence[float] = (10.0, 30.0),
        density_range: Sequence[float] = (0.002, 0.01),
        width_range: Sequence[int] = (1, 2),
        brightness_range: Sequence[float] = (0.6, 0.9),
        blur: int = 3,
        blend: str = "screen",
    ) -> None:
        if blend not in _BLENDS:
            raise ValueError(f"blend must be one of {_BLENDS}, got {blend!r}")
        self.angle_range = bounds(angle_range, "angle_range")
        self.length_range = bounds(length_range, "length_range", low=1.0)
        self.density_range = bounds(density_range, "density_range", low=0.0)
        self.width_range = bounds(width_range, "width_range", low=1.0, integral=True)
        self.brightness_range = bounds(brightness_range, "brightness_range", low=0.0)
        self.blur = int(blur)
        self.blend = blend

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {
            "angle": uniform(rng, self.angle_range),
            "length": uniform(rng, self.length_range),
            "density": uniform(rng, self.density_range),
            "width": integer(rng, self.width_range),
            "brightness": uniform(rng, self.brightness_range),
        }

    def streaks(self, shape: tuple[int, int], params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        """The ``HxW`` float32 rain layer in [0, brightness]; public so tests and figures can show it."""
        h, w = shape
        count = max(1, round(params["density"] * h * w))
        angle = math.radians(params["angle"])
        ux, uy = math.sin(angle), math.cos(angle)  # falling direction in (x, y) image coordinates
        cx = rng.uniform(0.0, w, count)
        cy = rng.uniform(0.0, h, count)
        half = 0.5 * params["length"] * rng.uniform(0.7, 1.3, count)
        level = np.rint(255.0 * rng.uniform(0.7, 1.0, count)).astype(int)
        ends = np.stack([cx - ux * half, cy - uy * half, cx + ux * half, cy + uy * half], axis=1)
        ends = np.rint(ends * 16).astype(int)  # fixed point, shift=4
        canvas = np.zeros((h, w), np.uint8)
        width = int(params["width"])
        for (x1, y1, x2, y2), value in zip(ends.tolist(), level.tolist()):
            cv2.line(canvas, (x1, y1), (x2, y2), value, width, cv2.LINE_AA, 4)
        layer = canvas.astype(np.float32) * np.float32(params["brightness"] / 255.0)
        if self.blur > 1:
            # line_kernel measures angles counter-clockwise from +x; the falling direction is angle - 90.
            layer = filter_same(layer, line_kernel(self.blur, params["angle"] - 90.0))
        return layer

    def apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        layer = self.streaks(image.shape[:2], params, rng)[..., None]
        out = 1.0 - (1.0 - image) * (1.0 - layer) if self.blend == "screen" else image + layer
        return finish(out, image)
