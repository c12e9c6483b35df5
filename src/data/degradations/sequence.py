"""Composite degradations: several families applied in order (e.g. haze + rain, or low light + noise)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .base import Degradation


class Sequence(Degradation):
    """Apply ``degradations`` in order, as one operator with its own ``family`` name.

    Parameters are flattened to ``"{i}.{child family}.{key}"`` so the dict stays flat and loggable and
    two children of the same family do not collide. All parameters are sampled before any pixel noise,
    so a child's draws never depend on the image size of an earlier child's per-pixel randomness.
    """

    def __init__(self, degradations: Iterable[Degradation], family: str) -> None:
        self.degradations = list(degradations)
        if not self.degradations:
            raise ValueError("Sequence needs at least one degradation")
        if not family:
            raise ValueError("Sequence needs a family name")
        self.family = str(family)

    def _prefix(self, index: int, child: Degradation) -> str:
        return f"{index}.{child.family}."

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for i, child in enumerate(self.degradations):
            prefix = self._prefix(i, child)
            params.update({prefix + key: value for key, value in child.sample(rng).items()})
        return params

    def apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        for i, child in enumerate(self.degradations):
            prefix = self._prefix(i, child)
            own = {key[len(prefix) :]: value for key, value in params.items() if key.startswith(prefix)}
            image = child.apply(image, own, rng)
        return image
