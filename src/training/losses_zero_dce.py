"""Zero-DCE's zero-reference losses: train a low-light enhancer from the input image alone (no ground truth).

Four terms, with the official weights (``lowlight_train.py``) as defaults:

* spatial consistency (1): the enhanced image keeps the input's local contrast. Both images are averaged
  over channels and 4x4 patches; at each patch the differences to its four neighbours (zero outside the
  image, as the official zero-padded convolutions) must be equal in both images.
* exposure control (10): the channel mean of each 16x16 patch should be ``E = 0.6``.
* colour constancy (5): grey-world; the per-image channel means should be equal.
* illumination smoothness (200): total variation of the curve maps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from src.training.losses import Objective


def spatial_consistency(enhanced: Tensor, original: Tensor, patch: int = 4) -> Tensor:
    """Mean over patches of the squared change, summed over the four neighbours, of the patch differences.

    The official code convolves each pooled image with four difference kernels (zero padding) and compares;
    differences are linear, so comparing the difference image ``d = enhanced - original`` with its
    zero-padded neighbours is the same quantity.
    """
    d = F.avg_pool2d(enhanced.float().mean(1, keepdim=True), patch) - F.avg_pool2d(
        original.float().mean(1, keepdim=True), patch
    )
    padded = F.pad(d, (1, 1, 1, 1))
    neighbours = (padded[..., 1:-1, :-2], padded[..., 1:-1, 2:], padded[..., :-2, 1:-1], padded[..., 2:, 1:-1])
    return sum((d - n).pow(2) for n in neighbours).mean()


def exposure_control(enhanced: Tensor, level: float = 0.6, patch: int = 16) -> Tensor:
    """Mean squared distance of each patch's brightness (channel mean, ``patch`` x ``patch`` average) to ``level``."""
    brightness = F.avg_pool2d(enhanced.float().mean(1, keepdim=True), patch)
    return (brightness - level).pow(2).mean()


def color_constancy(enhanced: Tensor) -> Tensor:
    """Grey world: ``sqrt(Drg^2 + Drb^2 + Dgb^2)`` with ``Dxy`` the squared gap of channel means, batch-averaged.

    Written as a vector norm: same value as the official square root, but a zero gradient (not NaN) for an
    image whose channel means are exactly equal.
    """
    r, g, b = enhanced.float().mean((2, 3)).unbind(1)
    gaps = torch.stack([(r - g).pow(2), (r - b).pow(2), (b - g).pow(2)], dim=1)
    return torch.linalg.vector_norm(gaps, dim=1).mean()


def illumination_smoothness(curves: Tensor) -> Tensor:
    """Official total variation: ``2 * (sum dy^2 / ((H-1) W) + sum dx^2 / (H (W-1))) / batch`` over all maps."""
    curves = curves.float()
    n, _, h, w = curves.shape
    dy = (curves[..., 1:, :] - curves[..., :-1, :]).pow(2).sum()
    dx = (curves[..., :, 1:] - curves[..., :, :-1]).pow(2).sum()
    return 2 * (dy / ((h - 1) * w) + dx / (h * (w - 1))) / n


class ZeroDCELoss(Objective):
    """Weighted sum of the zero-reference terms; returns the total and each weighted term for logging.

    Called as ``loss(pred, target, lq=..., curves=...)``: ``pred`` is the enhanced image, ``lq`` the input,
    ``curves`` the curve maps (:meth:`~src.models.backbones.zero_dce.ZeroDCE.curves`); ``target`` is ignored
    (may be ``None``). A zero weight switches a term off (it is not computed, and its input may be omitted).
    In training (:meth:`objective`) it reads ``lq`` from the batch and ``curves`` from the network's outputs,
    and never the ground truth.
    """

    def __init__(
        self,
        spatial: float = 1.0,
        exposure: float = 10.0,
        color: float = 5.0,
        illumination: float = 200.0,
        exposure_level: float = 0.6,
        exposure_patch: int = 16,
        spatial_patch: int = 4,
    ) -> None:
        super().__init__()
        self.weights = self.term_weights(spatial=spatial, exposure=exposure, color=color, illumination=illumination)
        self.exposure_level = float(exposure_level)
        self.exposure_patch = int(exposure_patch)
        self.spatial_patch = int(spatial_patch)

    def objective(
        self, pred: Tensor, batch: Mapping[str, Any], outputs: Mapping[str, Tensor]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        if self.weights["illumination"] and "curves" not in outputs:
            raise ValueError("ZeroDCELoss needs the network's curve maps (a ZeroDCE backbone's `curves` output)")
        return self(pred, lq=batch["lq"], curves=outputs.get("curves"))

    def forward(
        self, pred: Tensor, target: Tensor | None = None, *, lq: Tensor | None = None, curves: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        w = self.weights
        if w["spatial"] and lq is None:
            raise ValueError("ZeroDCELoss needs the input image: call loss(pred, target, lq=..., curves=...)")
        if w["illumination"] and curves is None:
            raise ValueError("ZeroDCELoss needs the curve maps: call loss(pred, target, lq=..., curves=...)")
        terms: dict[str, Tensor] = {}
        if w["spatial"]:
            terms["spatial"] = w["spatial"] * spatial_consistency(pred, lq, self.spatial_patch)
        if w["exposure"]:
            terms["exposure"] = w["exposure"] * exposure_control(pred, self.exposure_level, self.exposure_patch)
        if w["color"]:
            terms["color"] = w["color"] * color_constancy(pred)
        if w["illumination"]:
            terms["illumination"] = w["illumination"] * illumination_smoothness(curves)
        return sum(terms.values()), terms
