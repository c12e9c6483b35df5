"""Underwater colour cast and haze from the simplified underwater image formation model.

``I_c = J_c t_c + B_c (1 - t_c)``, ``t_c = exp(-beta_c d)``: light is attenuated per wavelength (red most,
blue least) along the distance ``d``, and the water's veiling light ``B`` (blue-green) replaces it. This is
the model underwater synthesis commonly uses (Akkaynak and Treibitz's revised model without the separate
backscatter coefficients); it gives the suite an underwater family that runs without UIEB's photographs.
Hand-written: no maintained library synthesises it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import Degradation
from .haze import smooth_field
from .ops import bounds, finish, uniform

CHANNELS = ("r", "g", "b")


class UnderwaterScattering(Degradation):
    """Per-channel attenuation ``beta`` (red, green, blue ranges) over a smooth random distance field in
    ``distance_range``, with a veiling light drawn per channel from ``veil_ranges``."""

    family = "underwater"

    def __init__(
        self,
        beta_ranges: Sequence[Sequence[float]] = ((0.8, 2.0), (0.2, 0.8), (0.1, 0.6)),
        veil_ranges: Sequence[Sequence[float]] = ((0.0, 0.2), (0.35, 0.75), (0.45, 0.9)),
        distance_range: Sequence[float] = (0.4, 1.5),
        cells: int = 4,
    ) -> None:
        if len(beta_ranges) != 3 or len(veil_ranges) != 3:
            raise ValueError("beta_ranges and veil_ranges take one [low, high] pair per RGB channel")
        self.beta_ranges = [bounds(pair, f"beta_ranges[{i}]", low=0.0) for i, pair in enumerate(beta_ranges)]
        self.veil_ranges = [bounds(pair, f"veil_ranges[{i}]", low=0.0) for i, pair in enumerate(veil_ranges)]
        self.distance_range = bounds(distance_range, "distance_range", low=0.0)
        self.cells = int(cells)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        params = {f"beta_{c}": uniform(rng, pair) for c, pair in zip(CHANNELS, self.beta_ranges)}
        params.update({f"veil_{c}": uniform(rng, pair) for c, pair in zip(CHANNELS, self.veil_ranges)})
        return params

    def apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        near, far = self.distance_range
        distance = np.float32(near) + np.float32(far - near) * smooth_field(image.shape[:2], rng, self.cells)
        beta = np.asarray([params[f"beta_{c}"] for c in CHANNELS], np.float32)
        veil = np.asarray([params[f"veil_{c}"] for c in CHANNELS], np.float32)
        if image.shape[-1] == 1:  # a gray image: the channels' mean attenuation and veil
            beta, veil = beta.mean(keepdims=True), veil.mean(keepdims=True)
        transmission = np.exp(-distance[..., None] * beta)
        return finish(image * transmission + veil * (1.0 - transmission), image)
