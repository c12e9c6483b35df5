"""MATLAB's ``imresize`` with its default bicubic kernel, on float images: the resize super-resolution papers use.

Why hand-written: the field's SR numbers (EDSR, RCAN, SwinIR, BasicSR's tables) come from low-resolution images
made by MATLAB's ``imresize(hr, 1/s, 'bicubic')``, whose down-sampling is anti-aliased (the cubic kernel widened
by ``1/s``) and whose borders are mirrored. OpenCV's bicubic uses another kernel (a = -0.75) and no
anti-aliasing; PIL's anti-aliased bicubic shares the kernel but renormalises a window clipped at the borders
instead of mirroring; torch's ``interpolate(antialias=True)`` does the same as PIL. So the outputs differ at the
borders or everywhere, by more than the PSNR differences papers report.

The algorithm (MATLAB's published ``imresize``): for each output index ``x`` (1-based) the input coordinate is
``u = x / s + 0.5 * (1 - 1 / s)``; the kernel ``cubic`` (a = -0.5) spans 4 input pixels, or ``4 / s`` with
``s * cubic(s * t)`` when shrinking; the weights of the ``ceil(width) + 2`` candidate pixels from
``floor(u - width / 2)`` are normalised to sum 1, indices outside the image are mirrored (``1..n, n..1``), and
candidates whose weight is zero everywhere are dropped. Each axis is resized separately, the one with the
smaller scale first (rows first on a tie), and the output side is ``ceil(s * n)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def cubic(t: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``bicubic``)."""
    a = np.abs(t)
    a2, a3 = a * a, a * a * a
    near = (1.5 * a3 - 2.5 * a2 + 1.0) * (a <= 1)
    far = (-0.5 * a3 + 2.5 * a2 - 4.0 * a + 2.0) * ((a > 1) & (a <= 2))
    return near + far


def contributions(in_length: int, out_length: int, scale: float, antialiasing: bool = True
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per output pixel, the input indices (0-based, mirrored into range) and their weights (rows sum to 1)."""
    shrink = scale < 1 and antialiasing
    width = 4.0 / scale if shrink else 4.0
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    indices = left[:, None] + np.arange(taps)[None, :]  # 1-based
    distance = u[:, None] - indices
    weights = scale * cubic(scale * distance) if shrink else cubic(distance)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    used = np.any(weights != 0, axis=0)
    return indices[:, used], weights[:, used]


def _resize_axis(image: np.ndarray, axis: int, out_length: int, scale: float, antialiasing: bool) -> np.ndarray:
    indices, weights = contributions(image.shape[axis], out_length, scale, antialiasing)
    moved = np.moveaxis(image, axis, 0)
    out = np.einsum("ok,ok...->o...", weights, moved[indices])
    return np.moveaxis(out, 0, axis)


def imresize(image: np.ndarray, scale: float | None = None, antialiasing: bool = True,
             out_shape: tuple[int, int] | None = None) -> np.ndarray:
    """``image`` (H x W or H x W x C, float) resized as MATLAB's ``imresize(image, scale)`` or, with
    ``out_shape``, ``imresize(image, out_shape)`` (each axis at its own scale, out / in); computed in float64,
    returned in the input's float dtype (no rounding: quantise separately for 8-bit)."""
    if image.ndim not in (2, 3):
        raise ValueError(f"imresize expects an H x W or H x W x C image, got shape {image.shape}")
    if out_shape is None:
        if scale is None or scale <= 0:
            raise ValueError(f"imresize scale must be positive, got {scale}")
        # rounded first: 255 * (1 / 3) must give 85, not 86 from a last-bit excess
        sizes = [math.ceil(round(scale * n, 9)) for n in image.shape[:2]]
        scales = [float(scale)] * 2
    else:
        if min(out_shape) < 1:
            raise ValueError(f"imresize out_shape must be positive, got {out_shape}")
        sizes = [int(n) for n in out_shape]
        scales = [out / n for out, n in zip(sizes, image.shape[:2])]
    dtype = image.dtype if np.issubdtype(image.dtype, np.floating) else np.float64
    out = image.astype(np.float64)
    # MATLAB resizes the axis of the smaller scale first (rows on a tie)
    for axis in sorted((0, 1), key=lambda a: scales[a]):
        out = _resize_axis(out, axis, sizes[axis], scales[axis], antialiasing)
    return out.astype(dtype)


def resize_batch(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A B x C x H x W batch resized to ``size`` with :func:`imresize` (on the CPU, per image): what the field
    compares a super-resolved image with (its "Bicubic" row) and how a same-size restorer sees the input."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    images = x.detach().float().cpu().permute(0, 2, 3, 1).numpy()
    out = np.stack([imresize(image, out_shape=size) for image in images])
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(device=x.device, dtype=x.dtype)
