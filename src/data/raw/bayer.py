"""Packing a Bayer mosaic into four half-resolution planes, and a colour preview of packed RAW.

The plane order is LED's (and SID's): R, G1, B, G2, where G1 is the green beside red on red's row and G2 the
green on blue's row; each plane's offset in the 2x2 quad comes from the camera's ``raw_pattern`` (rawpy's
colour-index matrix: 0 red, 1 green, 2 blue, 3 second green), so any of RGGB, BGGR, GRBG, GBRG packs the same way.
"""

from __future__ import annotations

import numpy as np

#: the 2x2 colour-index pattern of an RGGB sensor (Sony's), rawpy's ``raw_pattern`` layout
RGGB = np.array([[0, 1], [3, 2]])
#: packed plane order: red, first green, blue, second green
PLANES = ("R", "G1", "B", "G2")


def plane_offsets(pattern: np.ndarray) -> list[tuple[int, int]]:
    """(row, column) in the 2x2 quad of colour indices 0, 1, 2, 3 (R, G1, B, G2) in ``pattern``."""
    pattern = np.asarray(pattern)
    if pattern.shape != (2, 2) or sorted(pattern.ravel().tolist()) != [0, 1, 2, 3]:
        raise ValueError(f"a Bayer raw_pattern is a 2x2 arrangement of the colour indices 0-3, got {pattern.tolist()}")
    return [tuple(int(v) for v in np.argwhere(pattern == colour)[0]) for colour in range(4)]


def pack_bayer(mosaic: np.ndarray, pattern: np.ndarray = RGGB) -> np.ndarray:
    """H x W mosaic -> 4 x H/2 x W/2 planes (R, G1, B, G2); an odd last row or column is dropped."""
    if mosaic.ndim != 2:
        raise ValueError(f"a Bayer mosaic is H x W, got shape {mosaic.shape}")
    height, width = mosaic.shape[0] // 2 * 2, mosaic.shape[1] // 2 * 2
    mosaic = mosaic[:height, :width]
    return np.stack([mosaic[row::2, col::2] for row, col in plane_offsets(pattern)])


def unpack_bayer(planes: np.ndarray, pattern: np.ndarray = RGGB) -> np.ndarray:
    """The inverse of :func:`pack_bayer`: 4 x h x w planes -> 2h x 2w mosaic."""
    if planes.ndim != 3 or planes.shape[0] != 4:
        raise ValueError(f"packed RAW is 4 x h x w, got shape {planes.shape}")
    mosaic = np.empty((planes.shape[1] * 2, planes.shape[2] * 2), dtype=planes.dtype)
    for plane, (row, col) in zip(planes, plane_offsets(pattern)):
        mosaic[row::2, col::2] = plane
    return mosaic


def mosaic_rgb(image: np.ndarray, pattern: np.ndarray = RGGB) -> np.ndarray:
    """H x W x 3 linear RGB -> the H x W mosaic a sensor with ``pattern`` would record (each pixel keeps the
    channel its filter passes; both greens take G)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected H x W x 3 RGB, got shape {image.shape}")
    height, width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    channel_of = {0: 0, 1: 1, 2: 2, 3: 1}
    planes = [image[row:height:2, col:width:2, channel_of[colour]]
              for colour, (row, col) in enumerate(plane_offsets(pattern))]
    return unpack_bayer(np.stack(planes), pattern)


def preview_rgb(packed: np.ndarray, gamma: float = 1 / 2.2) -> np.ndarray:
    """4 x h x w packed RAW in [0, 1] -> h x w x 3 RGB in [0, 1] to look at (R, mean of the greens, B, a plain
    gamma; no white balance or colour matrix, so colours are the sensor's)."""
    if packed.ndim != 3 or packed.shape[0] != 4:
        raise ValueError(f"packed RAW is 4 x h x w, got shape {packed.shape}")
    rgb = np.stack([packed[0], (packed[1] + packed[3]) / 2, packed[2]], axis=-1)
    return np.clip(rgb, 0.0, 1.0) ** gamma
