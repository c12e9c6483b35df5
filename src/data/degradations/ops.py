"""Small helpers shared by the degradation families (parameter ranges, dtype round trips, kernels).

Kept separate so each family module stays about its physics, not about bookkeeping.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import cv2
import numpy as np


def bounds(values: Iterable[float], name: str, low: float | None = None, integral: bool = False) -> tuple[float, float]:
    """A validated ``(lo, hi)`` pair (of ints when ``integral``); accepts tuples, lists and ``ListConfig``.

    Validating at construction time makes a bad config fail when Hydra builds it, not mid-epoch.
    """
    cast = int if integral else float
    pair = tuple(cast(v) for v in values)
    if len(pair) != 2 or pair[0] > pair[1]:
        raise ValueError(f"{name} must be (lo, hi) with lo <= hi, got {pair!r}")
    if low is not None and pair[0] < low:
        raise ValueError(f"{name} must be >= {low}, got {pair!r}")
    return pair


def uniform(rng: np.random.Generator, pair: tuple[float, float]) -> float:
    """A plain ``float`` uniform in ``[lo, hi]`` (plain so parameter dicts can be logged)."""
    return float(rng.uniform(pair[0], pair[1]))


def integer(rng: np.random.Generator, pair: tuple[float, float]) -> int:
    """A plain ``int`` uniform in ``[lo, hi]``, both ends included."""
    return int(rng.integers(int(pair[0]), int(pair[1]) + 1))


def seed_from(rng: np.random.Generator) -> int:
    """A seed for a third-party transform, drawn from our generator so the key still decides everything."""
    return int(rng.integers(2**31))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """``[0, 1]`` float to uint8 by rounding (the convention of PIL/cv2 loaders and of PromptIR)."""
    return np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def from_uint8(image: np.ndarray) -> np.ndarray:
    """uint8 back to float32 ``[0, 1]``."""
    return image.astype(np.float32) * np.float32(1.0 / 255.0)


def finish(out: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Enforce the contract on an output: float32, ``[0, 1]``, the input's exact shape."""
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False).reshape(like.shape)


def filter_same(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate every channel with ``kernel`` (reflect border); keeps an ``HxWx1`` channel axis,
    which ``cv2.filter2D`` would drop."""
    out = cv2.filter2D(image, -1, kernel.astype(np.float32), borderType=cv2.BORDER_REFLECT_101)
    return out.reshape(image.shape)


def line_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised straight-line PSF of ``length`` pixels, anti-aliased by bilinear splatting.

    ``angle`` is in degrees, counter-clockwise from the +x axis as seen on screen. Splatting dense
    samples (instead of ``cv2.line(..., LINE_AA)``, which smears a horizontal line over three rows)
    keeps all the mass on the segment. The kernel is point-symmetric, so correlation and convolution
    agree and ``angle`` and ``angle + 180`` give the same blur.
    """
    if length <= 1.0:
        return np.ones((1, 1), np.float32)
    size = 2 * math.ceil((length - 1.0) / 2.0) + 1
    centre = (size - 1) / 2.0
    t = np.linspace(-(length - 1.0) / 2.0, (length - 1.0) / 2.0, 4 * math.ceil(length) + 1)
    x = centre + t * math.cos(math.radians(angle))
    y = centre - t * math.sin(math.radians(angle))
    x0 = np.clip(np.floor(x), 0, size - 2).astype(int)
    y0 = np.clip(np.floor(y), 0, size - 2).astype(int)
    fx, fy = x - x0, y - y0
    kernel = np.zeros((size + 1, size + 1), np.float64)
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            np.add.at(kernel, (y0 + dy, x0 + dx), wy * wx)
    kernel = kernel[:size, :size]
    kernel += kernel[::-1, ::-1]  # exact point symmetry despite float rounding
    return (kernel / kernel.sum()).astype(np.float32)
