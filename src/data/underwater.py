"""Water-Net's derived inputs (Li et al., IEEE TIP 2019): white balance, contrast enhancement, gamma correction.

Water-Net fuses three classical enhancements of the underwater image, which its authors compute before the
network (MATLAB, ``generate_*_data.m``) on the 8-bit image:

* **white balance**: ``SimplestColorBalance``: each channel is clipped at its ``s`` and ``1 - s`` quantiles, ``s =
  0.005 * max_c(S_c) / S_c`` with ``S_c`` the channel's sum (a weaker channel clips more), then stretched to
  [0, 255]; MATLAB's ``quantile`` is the Hazen rule (numpy's ``method="hazen"``);
* **contrast enhancement** (the paper's "histogram equalisation"): CLAHE of the lightness of CIELAB, MATLAB's
  ``adapthisteq`` with its defaults (8 x 8 tiles, clip limit 0.01, 256 bins): scikit-image's
  ``equalize_adapthist``, which follows it, on L / 100 (scikit-image's Lab is D65; MATLAB's ``makecform`` works
  in its own 8-bit Lab encoding, so values differ slightly);
* **gamma correction**: ``x ** 0.7`` (brightens).

Each result is rounded to 8 bits as the authors' files are. :func:`water_net_inputs` stacks the image and its
three derived versions into the 12 channels Water-Net reads; the data pipeline applies it to whole images (and
``src.restore`` before tiling), never inside the network.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from skimage import color, exposure
from torch import Tensor

#: the share of each tail SimplestColorBalance clips in the strongest channel
SATURATION = 0.005
#: Water-Net's gamma
GAMMA = 0.7
#: adapthisteq's default clip limit (normalised), as scikit-image takes it
CLAHE_CLIP = 0.01


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """MATLAB's ``uint8()``: round half away from zero, saturate to [0, 255]."""
    return np.clip(np.floor(np.asarray(values, np.float64) + 0.5), 0, 255).astype(np.uint8)


def white_balance(image: np.ndarray) -> np.ndarray:
    """``SimplestColorBalance`` of an H x W x 3 uint8 image (uint8 out)."""
    channels = image.reshape(-1, 3).astype(np.float64)
    sums = channels.sum(axis=0)
    out = np.zeros_like(channels)
    for c in range(3):
        if sums[c] == 0:  # a black channel stays black (MATLAB divides by zero there)
            continue
        level = SATURATION * sums.max() / sums[c]
        low, high = np.quantile(channels[:, c], [level, 1.0 - level], method="hazen")
        clipped = np.clip(channels[:, c], low, high)
        bottom, top = clipped.min(), clipped.max()
        if top > bottom:
            out[:, c] = (clipped - bottom) * 255.0 / (top - bottom)
    return _to_uint8(out).reshape(image.shape)


def contrast_enhance(image: np.ndarray) -> np.ndarray:
    """CLAHE of the CIELAB lightness of an H x W x 3 uint8 image (uint8 out)."""
    lab = color.rgb2lab(image.astype(np.float64) / 255.0)
    lab[..., 0] = exposure.equalize_adapthist(np.clip(lab[..., 0] / 100.0, 0.0, 1.0), clip_limit=CLAHE_CLIP) * 100.0
    with warnings.catch_warnings():  # colours pushed outside sRGB by the new lightness are clipped, as intended
        warnings.simplefilter("ignore", UserWarning)
        rgb = color.lab2rgb(lab)
    return _to_uint8(np.clip(rgb, 0.0, 1.0) * 255.0)


def gamma_correct(image: np.ndarray, gamma: float = GAMMA) -> np.ndarray:
    """``(x / 255) ** gamma`` of an H x W x 3 uint8 image, back to uint8."""
    return _to_uint8(255.0 * (image.astype(np.float64) / 255.0) ** gamma)


def derived_inputs(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(white-balanced, contrast-enhanced, gamma-corrected) versions of an H x W x 3 uint8 image."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"Water-Net's derived inputs take an H x W x 3 uint8 image, got {image.shape} {image.dtype}")
    return white_balance(image), contrast_enhance(image), gamma_correct(image)


def water_net_inputs(image: Tensor) -> Tensor:
    """A 3 x H x W image in [0, 1] -> 12 x H x W: the image (rounded to 8 bits, as the authors' files) and its
    white-balanced, contrast-enhanced and gamma-corrected versions, in that order, in [0, 1]."""
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"Water-Net's inputs are made from a 3 x H x W image, got {tuple(image.shape)}")
    pixels = _to_uint8(image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0)
    stacked = np.concatenate([pixels, *derived_inputs(pixels)], axis=2)
    return torch.from_numpy(stacked.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous().to(image.device)
