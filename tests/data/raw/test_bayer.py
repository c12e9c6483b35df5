"""Bayer packing: every 2x2 pattern packs to R, G1, B, G2 and unpacks back."""

from __future__ import annotations

import numpy as np
import pytest

from src.data.raw.bayer import RGGB, mosaic_rgb, pack_bayer, preview_rgb, unpack_bayer

PATTERNS = {"RGGB": [[0, 1], [3, 2]], "BGGR": [[2, 3], [1, 0]], "GRBG": [[1, 0], [2, 3]], "GBRG": [[3, 2], [0, 1]]}


@pytest.mark.parametrize("name", PATTERNS)
def test_a_mosaic_packs_by_its_pattern_and_unpacks_back(name: str) -> None:
    pattern = np.array(PATTERNS[name])
    image = np.random.default_rng(0).random((6, 8, 3))
    mosaic = mosaic_rgb(image, pattern)
    planes = pack_bayer(mosaic, pattern)
    assert planes.shape == (4, 3, 4)
    red_at = tuple(int(v) for v in np.argwhere(pattern == 0)[0])
    assert np.array_equal(planes[0], image[red_at[0]::2, red_at[1]::2, 0])  # plane 0 is red wherever it sits
    blue_at = tuple(int(v) for v in np.argwhere(pattern == 2)[0])
    assert np.array_equal(planes[2], image[blue_at[0]::2, blue_at[1]::2, 2])
    assert np.array_equal(unpack_bayer(planes, pattern), mosaic)


def test_odd_sides_drop_the_last_row_and_column_and_bad_patterns_are_named() -> None:
    assert pack_bayer(np.zeros((7, 9))).shape == (4, 3, 4)
    with pytest.raises(ValueError, match="colour indices"):
        pack_bayer(np.zeros((4, 4)), np.array([[0, 1], [1, 2]]))
    with pytest.raises(ValueError, match="H x W"):
        pack_bayer(np.zeros((4, 4, 3)), RGGB)


def test_the_preview_shows_red_the_greens_mean_and_blue() -> None:
    planes = np.stack([np.full((2, 2), v) for v in (1.0, 0.25, 0.0, 0.75)])
    rgb = preview_rgb(planes, gamma=1.0)
    assert np.allclose(rgb[0, 0], [1.0, 0.5, 0.0])
