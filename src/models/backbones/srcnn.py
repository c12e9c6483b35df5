"""SRCNN (Dong et al., ECCV 2014 / TPAMI 2016): three convolutions on the bicubic-up-sampled image.

Patch extraction (``kernel_sizes[0]``, ``features[0]`` maps), non-linear mapping (``kernel_sizes[1]``,
``features[1]``), reconstruction (``kernel_sizes[2]``, back to the image channels), ReLU after the first two.
The paper's 9-1-5 network (64 and 32 maps) is the default, its 9-5-5 one ``kernel_sizes=[9, 5, 5]``. The
original (MATLAB/Caffe, no released PyTorch code) trained without padding on the luminance channel and compared
the central region; here the convolutions are zero-padded so the output keeps the input's size, and the channel
count is a setting (3 for the suite's RGB pipelines, 1 for the paper's Y channel). It restores at the input's
size (``scale`` 1): a super-resolution setting gives it the bicubic-up-sampled image
(``data.degradations.sr.upsample=true``).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from src.models.backbones.base import Backbone, Head


class SRCNN(Backbone):
    """Three convolutions (ReLU after the first two), sizes preserved by zero padding."""

    def __init__(self, in_channels: int = 3, kernel_sizes: Sequence[int] = (9, 1, 5),
                 features: Sequence[int] = (64, 32)) -> None:
        super().__init__()
        if len(kernel_sizes) != 3 or len(features) != 2:
            raise ValueError(f"SRCNN has three layers: kernel_sizes needs 3 values and features 2, got "
                             f"{list(kernel_sizes)} and {list(features)}")
        if any(k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f"SRCNN's kernels must be odd to keep the size, got {list(kernel_sizes)}")
        widths = [in_channels, *features, in_channels]
        layers: list[nn.Module] = []
        for i, k in enumerate(kernel_sizes):
            layers.append(nn.Conv2d(widths[i], widths[i + 1], k, padding=k // 2))
            if i < 2:
                layers.append(nn.ReLU(inplace=True))
        self.layers = nn.Sequential(*layers)
        self.in_channels = self.out_channels = in_channels

    def forward(self, lq: Tensor, head: Head | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        return self.layers(lq), {}
