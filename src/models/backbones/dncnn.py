"""DnCNN (Zhang et al., TIP 2017) as written by its authors in KAIR: a plain conv stack predicting the noise.

``depth`` convolutions: conv + activation, ``depth - 2`` x (conv [+ batch norm] + activation), conv. The
network outputs the noise and the forward returns ``x - noise`` (residual learning), so input and output
have the same channel count. The released KAIR models (``dncnn_25.pth`` ...) have the batch norm folded
into the convolutions: build them with ``batch_norm=False`` (KAIR's ``act_mode='R'``).

There are no head positions (``feature_info = []``): DnCNN has no multi-scale features to prompt.
"""

from __future__ import annotations

from torch import Tensor, nn

from src.models.backbones.base import Backbone, FeatureInfo, Head

#: KAIR's batch norm: eps 1e-4 and momentum 0.9 (PyTorch meaning: the batch statistic gets weight 0.9).
BN_EPS, BN_MOMENTUM = 1e-4, 0.9
#: KAIR's LeakyReLU slope (``act_mode`` with ``L``).
LEAKY_SLOPE = 0.2
ACTIVATIONS = ("relu", "leaky_relu")


def make_activation(name: str) -> nn.Module:
    """``relu`` or ``leaky_relu`` (slope 0.2, as KAIR), in place as KAIR's: every activation here follows a
    convolution or batch norm whose backward does not read its output, and writing over it saves an allocation
    of a full feature map per layer (without it this DnCNN trained 0.95x as fast as KAIR's on one CPU thread)."""
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "leaky_relu":
        return nn.LeakyReLU(LEAKY_SLOPE, inplace=True)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, not {name!r}")


class ConvLayer(nn.Module):
    """3x3 convolution, optional batch norm, activation: one hidden layer of DnCNN."""

    def __init__(self, channels: int, batch_norm: bool, activation: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm = nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM) if batch_norm else nn.Identity()
        self.act = make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.conv(x)))


class DnCNN(Backbone):
    """KAIR's DnCNN: ``depth`` 3x3 convolutions of ``channels`` features; ``forward`` returns ``x - net(x)``.

    Defaults are the grayscale sigma-specific model (17 layers, batch norm); the colour blind model uses
    ``in_channels=out_channels=3, depth=20``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        channels: int = 64,
        depth: int = 17,
        batch_norm: bool = True,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if in_channels != out_channels:
            raise ValueError(
                f"DnCNN subtracts the predicted noise from its input: in_channels ({in_channels}) must equal "
                f"out_channels ({out_channels})"
            )
        if depth < 2:
            raise ValueError(f"DnCNN needs depth >= 2 (first and last convolution), got {depth}")
        self.first = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.first_act = make_activation(activation)
        self.body = nn.Sequential(*(ConvLayer(channels, batch_norm, activation) for _ in range(depth - 2)))
        self.last = nn.Conv2d(channels, out_channels, 3, padding=1)
        self.multiple = 1
        self.in_channels, self.out_channels = in_channels, out_channels
        self.feature_info: list[FeatureInfo] = []

    def noise(self, x: Tensor) -> Tensor:
        """The predicted noise (what the network itself outputs)."""
        return self.last(self.body(self.first_act(self.first(x))))

    def forward(self, lq: Tensor, head: Head | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        return lq - self.noise(lq), {}
