"""Dark Channel Prior dehazing (He, Sun and Tang, CVPR 2009 / TPAMI 2011): a training-free baseline.

With the haze model ``I = J t + A (1 - t)``:

1. dark channel: the minimum over the colour channels and a ``patch`` x ``patch`` window (windows clipped
   at the border);
2. atmospheric light ``A``: among the ``top`` fraction (0.1%) of pixels brightest in the dark channel, the
   colour of the one brightest in the input (the paper's choice; its intensity here is the channel mean);
3. transmission ``t = 1 - omega * dark(I / A)``, ``omega`` keeping a little haze for depth perception;
4. refinement by the guided filter (He, Sun and Tang, ECCV 2010 / TPAMI 2013) with the input's grey image as
   guide, radius ``radius`` and regulariser ``eps`` (60 and 1e-4, the values of the guided-filter paper's
   haze-removal example); the 2009 paper's soft matting is the slower original;
5. ``J = (I - A) / max(t, t0) + A``.

Every step is per image and differentiable nowhere that matters: the network has no parameters and is
evaluated and used for restoration as it is (``model=dcp`` is training-free). The guided filter is written
here (a box filter by cumulative sums, normalised by the clipped window's size, as the paper's Algorithm 1):
OpenCV has it only in the contrib build, which conflicts with the headless build the data code uses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from src.models.backbones.base import Backbone, Head

#: ITU-R BT.601 luma weights (OpenCV's RGB-to-grey), for the guide image
GREY = (0.299, 0.587, 0.114)


def min_filter(x: Tensor, size: int) -> Tensor:
    """The minimum over a ``size`` x ``size`` window around each pixel, the window clipped at the border."""
    pad = size // 2
    padded = F.pad(-x, (pad, size - 1 - pad, pad, size - 1 - pad), mode="constant", value=-float("inf"))
    return -F.max_pool2d(padded, size, stride=1)


def dark_channel(image: Tensor, patch: int) -> Tensor:
    """``min_c min_{y in window(x)} image_c(y)``: B x 1 x H x W."""
    return min_filter(image.amin(dim=1, keepdim=True), patch)


def box_sum(x: Tensor, radius: int) -> Tensor:
    """The sum over the (2r+1)^2 window around each pixel, clipped at the border (O(1) per pixel, cumulative
    sums in float64 so large images lose no precision)."""
    h, w = x.shape[-2:]
    c = F.pad(x.double(), (1, 0, 1, 0)).cumsum(-2).cumsum(-1)  # c[i, j] = sum of x[:i, :j]
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    top, bottom = (rows - radius).clamp(min=0), (rows + radius + 1).clamp(max=h)
    left, right = (cols - radius).clamp(min=0), (cols + radius + 1).clamp(max=w)
    total = (c[..., bottom, :][..., right] - c[..., top, :][..., right]
             - c[..., bottom, :][..., left] + c[..., top, :][..., left])  # fmt: skip
    return total.to(x.dtype)


def guided_filter(guide: Tensor, source: Tensor, radius: int, eps: float) -> Tensor:
    """He et al.'s guided filter (grey guide): ``q = mean(a) * I + mean(b)`` with the per-window linear fit
    ``a = cov(I, p) / (var(I) + eps)``, ``b = mean(p) - a mean(I)``."""
    count = box_sum(torch.ones_like(guide[:1, :1]), radius)

    def mean(x: Tensor) -> Tensor:
        return box_sum(x, radius) / count

    mean_i, mean_p = mean(guide), mean(source)
    cov_ip = mean(guide * source) - mean_i * mean_p
    var_i = mean(guide * guide) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return mean(a) * guide + mean(b)


def atmospheric_light(image: Tensor, dark: Tensor, top: float) -> Tensor:
    """B x 3 x 1 x 1: the input's colour at its brightest pixel among the ``top`` fraction brightest in ``dark``."""
    b, c, h, w = image.shape
    count = max(int(round(top * h * w)), 1)
    candidates = dark.flatten(1).topk(count, dim=1).indices  # B x count
    intensity = image.mean(dim=1).flatten(1).gather(1, candidates)
    brightest = candidates.gather(1, intensity.argmax(dim=1, keepdim=True))  # B x 1
    colours = image.flatten(2).gather(2, brightest[:, None, :].expand(b, c, 1))
    return colours[..., None]


class DarkChannelPrior(Backbone):
    """Training-free dehazing by the dark channel prior; the restored image is clipped to [0, 1] by the module."""

    def __init__(self, patch: int = 15, omega: float = 0.95, t0: float = 0.1, top: float = 0.001,
                 radius: int = 60, eps: float = 1e-4, refine: bool = True) -> None:
        super().__init__()
        if patch < 1 or patch % 2 == 0:
            raise ValueError(f"model.backbone.patch must be an odd window side, got {patch}")
        if not 0 < omega <= 1 or not 0 < t0 < 1 or not 0 < top <= 1:
            raise ValueError(f"expected 0 < omega <= 1, 0 < t0 < 1, 0 < top <= 1; got {omega}, {t0}, {top}")
        self.patch, self.omega, self.t0, self.top = int(patch), float(omega), float(t0), float(top)
        self.radius, self.eps, self.refine = int(radius), float(eps), bool(refine)

    def transmission(self, image: Tensor, airlight: Tensor) -> Tensor:
        """The refined (or, without ``refine``, the coarse) transmission map, B x 1 x H x W."""
        coarse = 1 - self.omega * dark_channel(image / airlight.clamp(min=1e-6), self.patch)
        if not self.refine:
            return coarse
        grey = sum(w * image[:, i : i + 1] for i, w in enumerate(GREY))
        return guided_filter(grey, coarse, self.radius, self.eps)

    def forward(self, lq: Tensor, head: Head | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        image = lq.float()
        airlight = atmospheric_light(image, dark_channel(image, self.patch), self.top)
        t = self.transmission(image, airlight).clamp(min=self.t0)
        restored = (image - airlight) / t + airlight
        return restored.to(lq.dtype), {}
