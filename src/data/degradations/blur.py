"""Blur: linear motion blur, defocus (disk) blur, and a family-level mix of the two."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import albumentations as A
import numpy as np

from .base import Degradation
from .ops import bounds, filter_same, finish, integer, line_kernel, seed_from, uniform


class MotionBlur(Degradation):
    """Uniform linear camera shake: an anti-aliased line PSF of random length and angle.

    The kernel is built here (:func:`~.ops.line_kernel`) rather than with ``A.MotionBlur`` because
    that one snaps the line to whole pixels and shifts it randomly, so two draws with the same
    logged length and angle would not give the same PSF; ours is fully described by its parameters.
    """

    family = "blur"

    def __init__(
        self,
        kernel_size_range: Sequence[int] = (7, 21),
        angle_range: Sequence[float] = (0.0, 180.0),
    ) -> None:
        self.kernel_size_range = bounds(kernel_size_range, "kernel_size_range", low=1.0, integral=True)
        self.angle_range = bounds(angle_range, "angle_range")

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"kernel_size": integer(rng, self.kernel_size_range), "angle": uniform(rng, self.angle_range)}

    def apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        kernel = line_kernel(params["kernel_size"], params["angle"])
        return finish(filter_same(image.astype(np.float32, copy=False), kernel), image)


class DefocusBlur(Degradation):
    """Out-of-focus blur: albumentations' anti-aliased disk kernel (``A.Defocus``) of random radius."""

    family = "blur"

    def __init__(
        self,
        radius_range: Sequence[int] = (2, 6),
        alias_blur_range: Sequence[float] = (0.1, 0.5),
    ) -> None:
        self.radius_range = bounds(radius_range, "radius_range", low=1.0, integral=True)
        self.alias_blur_range = bounds(alias_blur_range, "alias_blur_range", low=0.0)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"radius": integer(rng, self.radius_range), "alias_blur": uniform(rng, self.alias_blur_range)}

    def apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        radius, alias = params["radius"], params["alias_blur"]
        # Degenerate ranges pin the parameters we sampled; the seed makes any leftover draw ours too.
        transform = A.Defocus(radius=(radius, radius), alias_blur=(alias, alias), p=1.0)
        transform.set_random_seed(seed_from(rng))
        out = transform(image=np.ascontiguousarray(image, dtype=np.float32))["image"]
        return finish(out, image)


class Blur(Degradation):
    """The whole blur family behind one config: motion with ``motion_prob``, otherwise defocus.

    ``params["motion"]`` is ``1`` or ``0`` (a number, so it logs as a scalar) followed by the chosen
    operator's own parameters.
    """

    family = "blur"

    def __init__(
        self,
        motion_prob: float = 0.7,
        kernel_size_range: Sequence[int] = (7, 21),
        angle_range: Sequence[float] = (0.0, 180.0),
        radius_range: Sequence[int] = (2, 6),
        alias_blur_range: Sequence[float] = (0.1, 0.5),
    ) -> None:
        if not 0.0 <= motion_prob <= 1.0:
            raise ValueError(f"motion_prob must be in [0, 1], got {motion_prob}")
        self.motion_prob = float(motion_prob)
        self.motion = MotionBlur(kernel_size_range, angle_range)
        self.defocus = DefocusBlur(radius_range, alias_blur_range)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        motion = bool(rng.random() < self.motion_prob)
        chosen = self.motion if motion else self.defocus
        return {"motion": int(motion), **chosen.sample(rng)}

    def apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        chosen = self.motion if params["motion"] else self.defocus
        return chosen.apply(image, params, rng)
