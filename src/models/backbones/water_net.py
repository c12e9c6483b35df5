"""Water-Net (Li et al., "An Underwater Image Enhancement Benchmark Dataset and Beyond", IEEE TIP 2019).

A gated fusion of three classical enhancements of the underwater image (white balance, contrast enhancement,
gamma correction; :mod:`src.data.underwater`, made before the network as the authors do): a confidence-map
generator reads the image with its three derived versions (12 channels) through eight convolutions (7, 5, 3, 1,
7, 5, 3, 3; ReLU, a sigmoid at the end) and gives one map per derived input; a feature transformation unit per
derived input (three convolutions 7, 5, 3 on the image beside that input, each followed by a ReLU) refines it;
the output is the sum of the refined inputs weighted by their maps (not normalised, no clamp). Same-size
padding everywhere; 1,090,668 parameters at the paper's widths. Layer names follow the PyTorch port of the
official TensorFlow weights (``cmg.conv1`` ..., ``wb_refiner.conv1`` ...), so they load as they are.

``derived_inputs`` tells the data pipeline and ``src.restore`` to give it the 12-channel input of whole images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from src.data.underwater import water_net_inputs
from src.models.backbones.base import Backbone, Head

#: the confidence-map generator's kernels, and the refiners'
CMG_KERNELS = (7, 5, 3, 1, 7, 5, 3, 3)
REFINER_KERNELS = (7, 5, 3)
#: the derived inputs in the order the 12 channels hold them after the image itself
DERIVED = ("wb", "ce", "gc")


def _convs(owner: nn.Module, widths: Sequence[int], kernels: Sequence[int]) -> None:
    for index, kernel in enumerate(kernels, 1):
        setattr(owner, f"conv{index}", nn.Conv2d(widths[index - 1], widths[index], kernel, padding=kernel // 2))


class ConfidenceMaps(nn.Module):
    """Eight same-size convolutions from the 12 input channels to one sigmoid map per derived input."""

    def __init__(self, width: int = 128) -> None:
        super().__init__()
        half = width // 2
        _convs(self, [12, width, width, width, half, half, half, half, len(DERIVED)], CMG_KERNELS)

    def forward(self, x: Tensor) -> Tensor:
        for index in range(1, len(CMG_KERNELS)):
            x = getattr(self, f"conv{index}")(x).relu()
        return getattr(self, f"conv{len(CMG_KERNELS)}")(x).sigmoid()


class Refiner(nn.Module):
    """A feature transformation unit: three same-size convolutions, each followed by a ReLU."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        _convs(self, [6, width, width, 3], REFINER_KERNELS)

    def forward(self, image: Tensor, derived: Tensor) -> Tensor:
        x = torch.cat([image, derived], dim=1)
        for index in range(1, len(REFINER_KERNELS) + 1):
            x = getattr(self, f"conv{index}")(x).relu()
        return x


class WaterNet(Backbone):
    """Gated fusion of the refined derived inputs; ``forward(lq)`` takes the 12 channels of
    :func:`~src.data.underwater.water_net_inputs` and returns the enhanced RGB image and ``{}``."""

    #: what the data pipeline and ``src.restore`` make of a whole RGB image before the network sees it
    derived_inputs: Callable[[Tensor], Tensor] | None = staticmethod(water_net_inputs)

    def __init__(self, confidence_width: int = 128, refiner_width: int = 32) -> None:
        super().__init__()
        self.cmg = ConfidenceMaps(confidence_width)
        self.wb_refiner = Refiner(refiner_width)
        self.ce_refiner = Refiner(refiner_width)
        self.gc_refiner = Refiner(refiner_width)
        self.in_channels, self.out_channels = 12, 3

    def forward(self, lq: Tensor, head: Head | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        if lq.shape[1] != 12:
            raise ValueError(f"Water-Net reads the image and its three derived versions (12 channels), got "
                             f"{lq.shape[1]}: give it src.data.underwater.water_net_inputs(image)")
        image, *derived = lq.split(3, dim=1)
        maps = self.cmg(lq)
        refiners = (self.wb_refiner, self.ce_refiner, self.gc_refiner)
        out = sum(refiner(image, d) * maps[:, i : i + 1] for i, (refiner, d) in enumerate(zip(refiners, derived)))
        return out, {}
