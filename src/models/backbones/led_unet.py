"""LED's denoiser (Jin et al., ICCV 2023; Srameo/LED ``UNetArch``): the U-Net of "Learning to See in the Dark"
(Chen et al., CVPR 2018) on packed RAW (4 channels: the 2x2 Bayer quad of each pixel pair).

Five levels of two 3x3 convolutions each (``channels * 2**level`` wide, leaky ReLU of slope 0.2), 2x2 max
pooling down, 2x2 transposed convolutions up with skip concatenation, a 1x1 output convolution and no global
residual. The input is reflect-padded to a multiple of 16, centred (top = dh // 2), and cropped back, as the
official forward does (an image smaller than its padding, where the official forward fails, is padded by
replication). Layer names are the official ones (``conv1_1`` ... ``conv10_1``, ``upv6`` ... ``upv9``),
so official checkpoints load as they are. RepNR (:mod:`src.models.layers.repnr`) turns its convolutions into
per-camera re-parameterisable ones for LED's pre-training and folds them back for deployment.
There are no head positions (``feature_info = []``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.models.backbones.base import Backbone, FeatureInfo, Head
from src.models.layers.repnr import to_repnr

#: the official forward pads to a multiple of 2 ** (5 - 1)
PAD_MULTIPLE = 16
SLOPE = 0.2
#: the layers LED leaves plain under RepNR (the 1x1 output convolution)
REPNR_KEEP = ("conv10_1",)


class LedUNet(Backbone):
    """SID U-Net with LED's layer names; ``forward(lq)`` returns the denoised packed RAW and ``{}``."""

    def __init__(self, in_channels: int = 4, out_channels: int = 4, channels: int = 32, cameras: int = 0,
                 aux: bool = False) -> None:
        """``cameras`` > 0: RepNR convolutions with that many camera branches (and the generalised one) in every
        layer but the output one (LED's ``dont_convert_module``); ``aux``: with the fine-tuning's parallel
        zero-initialised convolutions."""
        super().__init__()
        if cameras < 0 or (aux and not cameras):
            raise ValueError(f"LedUNet: cameras={cameras}, aux={aux}: cameras >= 0, and aux needs RepNR (cameras > 0)")
        widths = [channels * 2**level for level in range(5)]
        previous = in_channels
        for level, width in enumerate(widths, 1):  # conv1_* ... conv5_*
            setattr(self, f"conv{level}_1", nn.Conv2d(previous, width, 3, padding=1))
            setattr(self, f"conv{level}_2", nn.Conv2d(width, width, 3, padding=1))
            previous = width
        for level, width in zip(range(6, 10), reversed(widths[:-1]), strict=True):  # upv6 + conv6_* ... conv9_*
            setattr(self, f"upv{level}", nn.ConvTranspose2d(2 * width, width, 2, stride=2))
            setattr(self, f"conv{level}_1", nn.Conv2d(2 * width, width, 3, padding=1))
            setattr(self, f"conv{level}_2", nn.Conv2d(width, width, 3, padding=1))
        self.conv10_1 = nn.Conv2d(channels, out_channels, 1)
        self.multiple = 1  # it pads itself, centred, as the official forward
        self.in_channels, self.out_channels = in_channels, out_channels
        self.feature_info: list[FeatureInfo] = []
        #: RepNR camera branches (0: plain convolutions, the deploy form)
        self.cameras = cameras
        if cameras:
            to_repnr(self, cameras, keep=REPNR_KEEP, aux=aux)

    def _pair(self, level: int, x: Tensor) -> Tensor:
        x = F.leaky_relu(getattr(self, f"conv{level}_1")(x), SLOPE)
        return F.leaky_relu(getattr(self, f"conv{level}_2")(x), SLOPE)

    def forward(self, lq: Tensor, head: Head | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        height, width = lq.shape[-2:]
        dh, dw = -height % PAD_MULTIPLE, -width % PAD_MULTIPLE
        top, left = dh // 2, dw // 2
        # reflect as the official forward; an image smaller than its own padding (where the official one fails)
        # is padded by replication instead
        mode = "reflect" if max(top, dh - top) < height and max(left, dw - left) < width else "replicate"
        x = F.pad(lq, (left, dw - left, top, dh - top), mode=mode) if dh or dw else lq
        skips = []
        for level in range(1, 5):
            x = self._pair(level, x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self._pair(5, x)
        for level, skip in zip(range(6, 10), reversed(skips), strict=True):
            x = self._pair(level, torch.cat([getattr(self, f"upv{level}")(x), skip], dim=1))
        out = self.conv10_1(x)
        return out[..., top : top + height, left : left + width], {}
