"""The degradation contract: a seeded, deterministic operator on one clean image.

Every family (``noise``, ``rain``, ``haze``, ``blur``, ``lowlight``, ``jpeg``) is one module with one
:class:`Degradation` subclass. Randomness never comes from global state: the caller passes a
``numpy.random.Generator`` made by :func:`rng_for` from ``(seed, epoch, index, ...)``, so the same key
always gives the same pixels, in any process, worker or machine.
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from typing import Any

import numpy as np


def rng_for(*key: int | str) -> np.random.Generator:
    """A generator keyed by integers and names, e.g. ``rng_for(seed, epoch, index, "noise")``.

    Strings are hashed with CRC32 (stable across processes, unlike ``hash``) so family names can be
    part of the key.
    """
    entropy = [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in key]
    if any(e < 0 for e in entropy):
        raise ValueError(f"rng key parts must be non-negative, got {key!r}")
    return np.random.default_rng(entropy)


class Degradation(ABC):
    """One degradation family. Images are float32 HxWxC arrays in [0, 1] (C = 3 or 1).

    Subclasses implement :meth:`sample` (draw the parameters) and :meth:`apply` (apply given
    parameters). Splitting the two lets tests and benchmarks fix parameters, and lets a dataset log
    what it did.
    """

    #: the family name used in configs, batch fields and metric keys
    family: str = ""
    #: how many times smaller than its input the output is on each side (super-resolution's ``sr``: 2, 3, 4;
    #: its input sides must then be multiples of it); 1 for every family that keeps the size
    scale: int = 1
    #: true for an operator that draws nothing (the same output for every key)
    deterministic: bool = False

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """Draw this operator's parameters (a dict of plain numbers)."""

    @abstractmethod
    def apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        """Degrade ``image`` with ``params``; ``rng`` supplies any per-pixel randomness."""

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        params = self.sample(rng)
        return self.apply(image, params, rng)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"
