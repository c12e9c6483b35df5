"""Fixtures for the degradation tests: a small real photograph crop (textured, not synthetic noise)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A 96x96 RGB crop of ``skimage.data.astronaut()`` (face, hair and suit edges), float32 in [0, 1]."""
    crop = data.astronaut()[60:156, 180:276]
    return np.ascontiguousarray(crop, dtype=np.float32) / np.float32(255.0)
