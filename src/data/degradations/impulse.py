"""Impulse (salt-and-pepper) noise: a family no all-in-one setting trains on, for testing generalisation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import albumentations as A
import numpy as np

from .base import Degradation
from .ops import bounds, finish, seed_from, uniform


class SaltAndPepper(Degradation):
    """A fraction ``amount`` of the pixels set to white or black (``A.SaltAndPepper``), ``salt_ratio`` of them
    white; the fraction is drawn from ``amount_range`` per image."""

    family = "salt_pepper"

    def __init__(self, amount_range: Sequence[float] = (0.01, 0.05), salt_ratio: float = 0.5) -> None:
        self.amount_range = bounds(amount_range, "amount_range", low=0.0)
        if self.amount_range[1] > 1 or not 0 <= salt_ratio <= 1:
            raise ValueError(f"amount_range must lie in [0, 1] and salt_ratio in [0, 1], got "
                             f"{self.amount_range!r}, {salt_ratio!r}")
        self.salt_ratio = float(salt_ratio)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"amount": uniform(rng, self.amount_range)}

    def apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        amount = float(params["amount"])
        transform = A.SaltAndPepper(amount=(amount, amount), salt_vs_pepper=(self.salt_ratio, self.salt_ratio), p=1.0)
        transform.set_random_seed(seed_from(rng))
        return finish(transform(image=np.ascontiguousarray(image, dtype=np.float32))["image"], image)
