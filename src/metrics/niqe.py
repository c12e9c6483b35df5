"""NIQE (Mittal, Soundararajan and Bovik, 2013): how far an image's natural-scene statistics lie from those of
pristine photographs. No reference image; lower is better.

Written from the published algorithm (the authors' MATLAB ``computequality``), as the restoration literature
computes it (BasicSR / PIRM: the Y channel of ITU-R BT.601, rounded to integers, ``crop_border`` shaved):

1. crop to whole 96 x 96 blocks from the top-left; at two scales (the image, then MATLAB's bicubic ``imresize``
   by 0.5 with antialiasing: 48 x 48 blocks), mean-subtracted contrast-normalised coefficients
   ``(I - mu) / (sigma + 1)`` with a 7 x 7 Gaussian window (sigma 7/6, replicated borders);
2. per block, 18 numbers: an asymmetric generalised Gaussian fit (shape on the grid 0.2:0.001:10) of the
   coefficients (shape, mean of the two scales) and of their products with the four neighbours (right, below and
   the two diagonals, wrapping inside the block): shape, mean, left and right scale;
3. the 36-vector mean and covariance over blocks (NaN blocks left out of the covariance), and the distance
   ``sqrt(d pinv((C_pristine + C_image) / 2) d^T)`` to the pristine model.

Both scales are filtered in float32, as BasicSR does: its published values (and the MATLAB value it quotes)
depend on it at the 1e-4 level, because the shape is picked on a grid.

**The pristine model** (``mu_pris_param`` 1 x 36, ``cov_pris_param`` 36 x 36) is the authors' (LIVE, UT
Austin; released for use with the copyright notice kept and the paper cited). It is read, without importing the
package, from ``mmagic/evaluation/metrics/niqe_pris_params.npz`` inside the ``mmagic`` 1.2.0 wheel (OpenMMLab,
Apache License 2.0; byte-identical to BasicSR's file, whose wheels on PyPI do not ship it): ``make install``
downloads that wheel (no dependency installed) into ``.cache/wheels``; ``AIOIR_NIQE_PARAMS`` or the
``source`` argument may name another wheel or the ``.npz`` itself. The file's SHA-256 is checked.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from functools import cache
from pathlib import Path

import numpy as np
from scipy.ndimage import correlate
from scipy.special import gamma

from src.metrics.ggd import RATIOS, SHAPES
from src.utils.errors import UserError
from src.utils.imresize import imresize

#: where the pristine model sits in the mmagic wheel, and its checksum
WHEEL_MEMBER = "mmagic/evaluation/metrics/niqe_pris_params.npz"
PARAMS_SHA256 = "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296"
#: searched in this order when no source is given
DEFAULT_WHEEL_DIRS = (Path(".cache") / "wheels", Path(__file__).resolve().parents[2] / ".cache" / "wheels")
BLOCK = 96


def _wheel_candidates() -> list[Path]:
    found = []
    for folder in DEFAULT_WHEEL_DIRS:
        found += sorted(folder.glob("mmagic-*.whl")) if folder.is_dir() else []
    return found


@cache
def pristine_model(source: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(mu 36, cov 36 x 36)`` of the pristine model, from a wheel or an ``.npz`` (checked by SHA-256)."""
    source = source or os.environ.get("AIOIR_NIQE_PARAMS")
    candidates = [Path(source)] if source else _wheel_candidates()
    if not candidates or not candidates[0].is_file():
        where = source or "no mmagic wheel in " + ", ".join(map(str, DEFAULT_WHEEL_DIRS))
        raise UserError(
            f"NIQE needs its pristine model: {where} not found. Run `make install` (it downloads "
            "mmagic-1.2.0-py2.py3-none-any.whl, installing nothing), or "
            "`pip download --no-deps mmagic==1.2.0 -d .cache/wheels`, or set AIOIR_NIQE_PARAMS to the wheel or to "
            "niqe_pris_params.npz")
    path = candidates[0]
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            try:
                raw = wheel.read(WHEEL_MEMBER)
            except KeyError:
                raise UserError(f"{path}: the wheel holds no {WHEEL_MEMBER}") from None
    else:
        raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != PARAMS_SHA256:
        raise UserError(f"{path}: the NIQE pristine model's SHA-256 is {digest}, expected {PARAMS_SHA256}")
    with np.load(io.BytesIO(raw), allow_pickle=False) as data:
        return data["mu_pris_param"].reshape(-1).astype(np.float64), data["cov_pris_param"].astype(np.float64)


def gaussian_window(size: int = 7, sigma: float = 7.0 / 6.0) -> np.ndarray:
    """MATLAB's ``fspecial('gaussian', size, sigma)``: sampled, normalised to sum 1."""
    r = np.arange(size) - (size - 1) / 2.0
    window = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2.0 * sigma * sigma))
    return window / window.sum()


def aggd(values: np.ndarray) -> tuple[float, float, float]:
    """Shape and left/right scales of an asymmetric generalised Gaussian, by the estimator NIQE uses."""
    values = values.ravel().astype(np.float64)
    left = np.sqrt(np.mean(values[values < 0] ** 2)) if np.any(values < 0) else np.nan
    right = np.sqrt(np.mean(values[values > 0] ** 2)) if np.any(values > 0) else np.nan
    ratio_lr = left / right
    rhat = np.mean(np.abs(values)) ** 2 / np.mean(values**2) if np.any(values) else np.nan
    normalised = rhat * (ratio_lr**3 + 1) * (ratio_lr + 1) / (ratio_lr**2 + 1) ** 2
    error = (RATIOS - normalised) ** 2
    shape = float(SHAPES[np.nanargmin(error)]) if np.isfinite(error).any() else float(SHAPES[0])
    factor = np.sqrt(gamma(1.0 / shape) / gamma(3.0 / shape))
    return shape, float(left * factor), float(right * factor)


def block_features(block: np.ndarray) -> list[float]:
    """The 18 numbers of one block of coefficients."""
    shape, left, right = aggd(block)
    features = [shape, (left + right) / 2.0]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        shape, left, right = aggd(block * np.roll(block, shift, axis=(0, 1)))
        mean = (right - left) * gamma(2.0 / shape) / gamma(1.0 / shape)
        features += [shape, mean, left, right]
    return features


def _coefficients(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    # the output keeps the image's dtype (float32: see the module docstring); the window stays float64
    mu = correlate(image, window, mode="nearest")
    sigma = np.sqrt(np.abs(correlate(image * image, window, mode="nearest") - mu * mu))
    return (image - mu) / (sigma + 1)


def niqe_gray(image: np.ndarray, model: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """NIQE of a 2-D image in [0, 255] (at least two 96 x 96 blocks)."""
    mu_p, cov_p = model if model is not None else pristine_model()
    rows, cols = image.shape[0] // BLOCK, image.shape[1] // BLOCK
    if rows * cols < 2:
        raise ValueError(f"NIQE needs at least two {BLOCK} x {BLOCK} blocks; the image is {image.shape[1]} x "
                         f"{image.shape[0]}")
    image = image[: rows * BLOCK, : cols * BLOCK].astype(np.float32)
    window = gaussian_window()
    per_scale = []
    for scale in (1, 2):
        coefficients = _coefficients(image, window)
        side = BLOCK // scale
        per_scale.append(np.array([block_features(coefficients[r * side:(r + 1) * side, c * side:(c + 1) * side])
                                   for c in range(cols) for r in range(rows)]))
        if scale == 1:
            image = (imresize(image / np.float32(255.0), scale=0.5, antialiasing=True) * np.float32(255.0))
    features = np.concatenate(per_scale, axis=1)
    mu_d = np.nanmean(features, axis=0)
    complete = features[~np.isnan(features).any(axis=1)]
    cov_d = np.cov(complete, rowvar=False)
    d = mu_p - mu_d
    return float(np.sqrt(d @ np.linalg.pinv((cov_p + cov_d) / 2.0) @ d))


def to_y(rgb: np.ndarray) -> np.ndarray:
    """The Y channel of ITU-R BT.601 (MATLAB ``rgb2ycbcr``) of an RGB image in [0, 1], in [16, 235]."""
    return rgb.astype(np.float64) @ np.array([65.481, 128.553, 24.966]) + 16.0


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """Luma with OpenCV's weights (``cv2.COLOR_BGR2GRAY``: 0.299, 0.587, 0.114) of an RGB image in [0, 1], x255."""
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) * 255.0


def niqe(image: np.ndarray, convert_to: str = "y", crop_border: int = 0,
         model: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """NIQE of an RGB (H x W x 3) or gray (H x W) image in [0, 1]: converted (``y``: BT.601 luma, the SR
    papers' convention; ``gray``: OpenCV's luma), rounded to integers as an 8-bit image would be, shaved by
    ``crop_border`` on each side."""
    if image.ndim == 3 and image.shape[2] == 3:
        if convert_to not in ("y", "gray"):
            raise ValueError(f"convert_to must be 'y' or 'gray', got {convert_to!r}")
        gray = to_y(image) if convert_to == "y" else to_gray(image)
    elif image.ndim == 2:
        gray = image.astype(np.float64) * 255.0
    else:
        raise ValueError(f"NIQE expects H x W x 3 or H x W, got shape {image.shape}")
    gray = gray.astype(np.float32).astype(np.float64)
    if crop_border:
        gray = gray[crop_border:-crop_border, crop_border:-crop_border]
    return niqe_gray(np.round(gray), model)
