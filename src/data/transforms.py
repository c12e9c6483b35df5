"""Geometric transforms applied identically to a degraded/clean pair (numpy HxWxC arrays).

Random choices take a ``numpy.random.Generator`` so a sample is a pure function of its seed key.
"""

from __future__ import annotations

import numpy as np

#: the seven non-identity elements of the dihedral group D4 (flips and 90-degree rotations);
#: the official all-in-one codes always apply one of them, never the identity.
NON_IDENTITY_DIHEDRAL = tuple(range(1, 8))


def dihedral(image: np.ndarray, k: int) -> np.ndarray:
    """Element ``k`` in 0..7 of D4: ``k % 4`` quarter turns, then a vertical flip when ``k >= 4``."""
    out = np.rot90(image, k % 4, axes=(0, 1))
    if k >= 4:
        out = out[::-1]
    return np.ascontiguousarray(out)


def random_crop_box(height: int, width: int, size: int, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left corner of a random ``size`` x ``size`` crop; the image must be at least that large."""
    if height < size or width < size:
        raise ValueError(f"image of size {height}x{width} is smaller than the {size}x{size} training patch")
    top = int(rng.integers(0, height - size + 1))
    left = int(rng.integers(0, width - size + 1))
    return top, left


def crop(image: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    return image[top : top + size, left : left + size]


def center_crop_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Centre-crop H and W down to a multiple of ``multiple`` (the test geometry of the PromptIR protocol)."""
    if multiple <= 1:
        return image
    h, w = image.shape[:2]
    nh, nw = h - h % multiple, w - w % multiple
    if nh == 0 or nw == 0:
        raise ValueError(f"image of size {h}x{w} is smaller than the crop multiple {multiple}")
    top, left = (h - nh) // 2, (w - nw) // 2
    return image[top : top + nh, left : left + nw]


def to_tensor(image: np.ndarray):
    """HxWxC float array -> CxHxW float32 tensor (no copy beyond the transpose)."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))
