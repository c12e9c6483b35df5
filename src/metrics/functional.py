"""Per-image PSNR and SSIM kernels in float64, written to match scikit-image, BasicSR and MATLAB exactly.

Why not torchmetrics here (checked against torchmetrics 1.9):

- ``structural_similarity_index_measure`` reflect-pads the image and averages the SSIM map over the *whole*
  image, padded border included, while scikit-image, BasicSR and Wang's MATLAB code average only the valid
  region (the border of half a window is cropped). It also has no sample-covariance option (scikit-image's
  default multiplies the variances by N/(N-1)) and clamps variances at 0. On a 128x160 crop of
  ``skimage.data.astronaut()`` with noise these differences move SSIM by 0.006 to 0.012.
- ``peak_signal_noise_ratio`` builds ``data_range`` and ``log(base)`` as float32 scalars even for float64
  input, which shifts PSNR by 1e-6 to 3e-6 dB; the plain formula below is exact in float64.
"""

from __future__ import annotations

import torch
from torch import Tensor


def check_pair(pred: Tensor, target: Tensor) -> None:
    """Fail early with both shapes, since a silent broadcast would give a wrong metric, not an error."""
    if pred.shape != target.shape:
        shapes = f"pred {tuple(pred.shape)} vs target {tuple(target.shape)}"
        raise ValueError(f"pred and target shapes differ: {shapes}")
    if pred.ndim != 4 or pred.shape[1] not in (1, 3):
        raise ValueError(f"expected B x C x H x W with C in (1, 3), got {tuple(pred.shape)}")
    if not (pred.is_floating_point() and target.is_floating_point()):
        raise ValueError(f"expected float tensors, got {pred.dtype} and {target.dtype}")


def psnr(pred: Tensor, target: Tensor, data_range: float) -> Tensor:
    """PSNR per image (B,) as ``10 log10(R^2 / MSE)`` over C, H, W; identical images give +inf, never NaN."""
    diff = pred.to(torch.float64) - target.to(torch.float64)
    mse = diff.square().mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(data_range**2 / mse)


def uniform_window(size: int = 7) -> Tensor:
    """1-D box window; its outer product is scipy's ``uniform_filter(size=size)`` (scikit-image's default)."""
    return torch.full((size,), 1.0 / size, dtype=torch.float64)


def gaussian_window(sigma: float = 1.5, radius: int | None = None) -> Tensor:
    """1-D normalised Gaussian; the default radius is scipy's ``int(3.5 sigma + 0.5)`` (11 taps at sigma 1.5).

    The same taps as ``cv2.getGaussianKernel(11, 1.5)`` and MATLAB's ``fspecial('gaussian', 11, 1.5)``.
    """
    if radius is None:
        radius = int(3.5 * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * x.square() / sigma**2)
    return w / w.sum()


def _filter_valid(x: Tensor, window: Tensor) -> Tensor:
    """Separable correlation of ... x H x W planes with ``window``, keeping only the valid region.

    Shifted in-place multiply-adds rather than ``conv2d``: CPU float64 convolution takes a slow path (about 4x
    slower here) and this needs no extra memory on any device.
    """
    taps = window.tolist()
    k = len(taps)
    h, w = x.shape[-2] - k + 1, x.shape[-1] - k + 1
    rows = x[..., 0:h, :] * taps[0]
    for i in range(1, k):
        rows.add_(x[..., i : i + h, :], alpha=taps[i])
    out = rows[..., 0:w] * taps[0]
    for i in range(1, k):
        out.add_(rows[..., i : i + w], alpha=taps[i])
    return out


def ssim(
    pred: Tensor,
    target: Tensor,
    window: Tensor,
    data_range: float,
    sample_covariance: bool,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Tensor:
    """SSIM per image (B,): mean of the valid-region map of each channel, then mean over channels.

    ``sample_covariance`` scales variances by N/(N-1) with N = taps**2, as scikit-image does even for Gaussian
    weights; without it this is Wang et al.'s population form (MATLAB ``ssim_index``, BasicSR ``_ssim``).
    """
    b, c, h, w = pred.shape
    k = window.numel()
    if h < k or w < k:
        raise ValueError(f"SSIM window of {k} taps exceeds the image size {h}x{w}")
    x = pred.to(torch.float64).reshape(b * c, h, w)
    y = target.to(torch.float64).reshape(b * c, h, w)
    ux, uy, uxx, uyy, uxy = _filter_valid(torch.stack([x, y, x * x, y * y, x * y]), window)
    cov_norm = k * k / (k * k - 1) if sample_covariance else 1.0
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    num = (2 * ux * uy + c1) * (2 * vxy + c2)
    den = (ux * ux + uy * uy + c1) * (vx + vy + c2)
    per_channel = (num / den).mean(dim=(1, 2)).view(b, c)
    return per_channel.mean(dim=1)
