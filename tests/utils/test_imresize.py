"""MATLAB's bicubic imresize (src/utils/imresize.py) against a stored vector and the algorithm's properties."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from src.utils.imresize import contributions, cubic, imresize

VECTOR = Path(__file__).parents[1] / "vectors" / "matlab_bicubic.npz"
SCALES = {"x1_2": 1 / 2, "x1_3": 1 / 3, "x1_4": 1 / 4, "x2": 2, "x3": 3}


@pytest.mark.parametrize("name", ["rgb", "gray"])
@pytest.mark.parametrize("label", SCALES)
def test_equals_the_stored_matlab_port_vector(name: str, label: str) -> None:
    """The vector was made by BasicSR's port of MATLAB's imresize (tests/vectors/README.md)."""
    stored = np.load(VECTOR)
    out = imresize(stored[name].astype(np.float64), SCALES[label])
    expected = stored[f"{name}_{label}"]
    assert out.shape == expected.shape
    assert np.abs(out - expected).max() < 1e-5


def test_kernel_and_weights_follow_the_published_algorithm() -> None:
    assert cubic(np.array([0.0, 1.0, 2.0, 0.5]))[:3].tolist() == [1.0, 0.0, 0.0]
    assert cubic(np.array([0.5]))[0] == pytest.approx(0.5625)  # 1.5/8 - 2.5/4 + 1
    indices, weights = contributions(12, 6, 0.5)
    assert np.allclose(weights.sum(axis=1), 1.0)
    assert weights.shape[1] == 8  # the kernel widened to 4 / 0.5 taps, two empty candidates dropped
    assert indices.min() >= 0 and indices.max() <= 11  # mirrored into the image
    _, plain = contributions(12, 6, 0.5, antialiasing=False)
    assert plain.shape[1] == 4


def test_constant_images_stay_constant_and_shapes_round_up() -> None:
    flat = np.full((10, 7, 3), 0.25)
    for scale in (0.5, 1 / 3, 2, 3):
        out = imresize(flat, scale)
        assert np.allclose(out, 0.25)
    assert imresize(flat, 0.5).shape == (5, 4, 3)  # ceil(3.5)
    assert imresize(flat.astype(np.float32), 2).dtype == np.float32


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="scale must be positive"):
        imresize(np.zeros((4, 4)), 0)
    with pytest.raises(ValueError, match="H x W"):
        imresize(np.zeros((1, 4, 4, 3)), 0.5)
