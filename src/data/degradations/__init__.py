"""The degradation library: one seeded, deterministic operator per family (see :mod:`.base`)."""

import os

# albumentations phones home for a version check on import (2 s timeout, once per process and per
# spawned worker); training never needs it. ``setdefault`` keeps an explicit user choice.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from .base import Degradation, rng_for  # noqa: E402
from .blur import Blur, DefocusBlur, MotionBlur  # noqa: E402
from .downsample import BicubicDownsample  # noqa: E402
from .haze import AtmosphericHaze  # noqa: E402
from .impulse import SaltAndPepper  # noqa: E402
from .jpeg import JPEGCompression  # noqa: E402
from .lowlight import LowLight  # noqa: E402
from .noise import GaussianNoise, SpatiallyVariantNoise  # noqa: E402
from .rain import SyntheticRain  # noqa: E402
from .sequence import Sequence  # noqa: E402
from .underwater import UnderwaterScattering  # noqa: E402

__all__ = [
    "AtmosphericHaze",
    "BicubicDownsample",
    "Blur",
    "DefocusBlur",
    "Degradation",
    "GaussianNoise",
    "JPEGCompression",
    "LowLight",
    "MotionBlur",
    "SaltAndPepper",
    "UnderwaterScattering",
    "Sequence",
    "SpatiallyVariantNoise",
    "SyntheticRain",
    "rng_for",
]
