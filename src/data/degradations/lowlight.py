"""Low light: under-exposure with a gamma curve, then heteroscedastic sensor noise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import Degradation
from .ops import bounds, finish, uniform


class LowLight(Degradation):
    """``dark = exposure * img ** gamma`` plus Poisson-Gaussian noise, clipped to [0, 1].

    The gamma darkens shadows more than highlights (as real under-exposure after a camera's tone
    curve does) and the exposure scales the whole range down. Noise follows the Poisson-Gaussian model
    in its usual Gaussian approximation, ``var = shot * dark + read ** 2``: shot noise grows with the
    signal, read noise is a floor. The approximation (rather than ``rng.poisson``) keeps ``shot = 0``
    well defined and the op fast.

    Hand-written: albumentations has brightness/gamma transforms but no signal-dependent noise.
    """

    family = "lowlight"

    def __init__(
        self,
        exposure_range: Sequence[float] = (0.1, 0.4),
        gamma_range: Sequence[float] = (1.5, 2.5),
        shot_noise_range: Sequence[float] = (0.0, 0.02),
        read_noise_range: Sequence[float] = (0.0, 0.01),
    ) -> None:
        self.exposure_range = bounds(exposure_range, "exposure_range", low=0.0)
        self.gamma_range = bounds(gamma_range, "gamma_range", low=0.0)
        self.shot_noise_range = bounds(shot_noise_range, "shot_noise_range", low=0.0)
        self.read_noise_range = bounds(read_noise_range, "read_noise_range", low=0.0)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {
            "exposure": uniform(rng, self.exposure_range),
            "gamma": uniform(rng, self.gamma_range),
            "shot_noise": uniform(rng, self.shot_noise_range),
            "read_noise": uniform(rng, self.read_noise_range),
        }

    def apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        base = np.clip(image, 0.0, 1.0).astype(np.float32, copy=False)
        dark = np.float32(params["exposure"]) * base ** np.float32(params["gamma"])
        std = np.sqrt(np.float32(params["shot_noise"]) * dark + np.float32(params["read_noise"]) ** 2)
        return finish(dark + std * rng.standard_normal(image.shape, dtype=np.float32), image)
