"""Generalised Gaussian fits by moment matching (the estimator of BRISQUE and NIQE), and their log densities.

The shape grid and its moment ratios (``SHAPES``, ``RATIOS``) are also NIQE's (:mod:`src.metrics.niqe`, whose
asymmetric fit searches the same grid); GRIDS fits its feature distributions with :func:`fit_ggd`.

``scipy.stats.gennorm.fit`` maximises the likelihood, which on a few dozen samples often runs the shape to
10^7 (a box with hard edges): every divergence against such a fit is infinite. Matching the ratio
``E|x - mu|^2 / E(x - mu)^2 = G(2/b)^2 / (G(1/b) G(3/b))`` on a grid of shapes keeps the shape in a stated range
and needs no optimiser.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

#: the shapes searched (0.2: heavier tails than Laplace's 1; 10: close to a uniform's box)
SHAPES = np.arange(0.2, 10.0 + 1e-9, 0.001)
#: ``G(2/b)^2 / (G(1/b) G(3/b))`` of each shape: the mean-absolute-to-root-mean-square ratio squared it implies
RATIOS = special.gamma(2.0 / SHAPES) ** 2 / (special.gamma(1.0 / SHAPES) * special.gamma(3.0 / SHAPES))


def fit_ggd(values: np.ndarray) -> tuple[float, float, float]:
    """``(shape, location, scale)`` of the generalised Gaussian with the sample's mean, variance and
    mean-absolute-deviation ratio (``scipy.stats.gennorm`` parametrisation: density ~ exp(-|x/scale|^shape))."""
    values = np.asarray(values, dtype=np.float64).ravel()
    location = float(values.mean())
    centred = values - location
    variance = float(np.mean(centred * centred))
    if variance <= 0:
        return 2.0, location, 1e-8
    ratio = float(np.mean(np.abs(centred))) ** 2 / variance
    shape = float(SHAPES[np.argmin(np.abs(RATIOS - ratio))])
    scale = float(np.sqrt(variance * special.gamma(1.0 / shape) / special.gamma(3.0 / shape)))
    return shape, location, max(scale, 1e-8)


def log_density(x: np.ndarray, shape: float | np.ndarray, location: float | np.ndarray,
                scale: float | np.ndarray) -> np.ndarray:
    return stats.gennorm.logpdf(x, shape, location, scale)
