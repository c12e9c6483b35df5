"""MPRNet (Zamir et al., CVPR 2021; swz30/MPRNet): multi-stage progressive restoration.

Three stages see the image at three granularities: stage 1 restores its four quarters (an encoder per quarter,
the encoder features of the left and right quarters joined before a decoder per half), stage 2 its two halves
(encoder features joined across the halves before one decoder), stage 3 the whole image at its own resolution
(no down-sampling: original-resolution blocks). Between stages, a supervised attention module (SAM) turns the
decoder's features into an image, supervised by the loss, and gates the features passed on with it; stage 2's
encoder also receives stage 1's encoder and decoder features (cross-stage feature fusion), and stage 3 those of
stage 2. Every channel-attention block shares one PReLU, as in the official code (its state dict repeats that
one parameter under each block's key).

The restored image is stage 3's output plus the input; ``forward_train`` also returns the stage-2 and stage-1
images for the multi-output loss. The network works at multiples of 8 (quarters halved twice) and pads to them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.models.backbones.base import Backbone, Head, crop_to, pad_to_multiple


def conv(in_channels: int, out_channels: int, kernel_size: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)


class ChannelAttention(nn.Module):
    """Squeeze (global average) and excite (1x1 down by ``reduction``, ReLU, 1x1 up, sigmoid), multiplied in."""

    def __init__(self, channels: int, reduction: int, bias: bool) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(channels, channels // reduction, 1, bias=bias)
        self.excite = nn.Conv2d(channels // reduction, channels, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        weight = torch.sigmoid(self.excite(F.relu(self.squeeze(x.mean(dim=(2, 3), keepdim=True)))))
        return x * weight


class CAB(nn.Module):
    """Channel-attention block: conv, the shared activation, conv, channel attention, plus the input."""

    def __init__(self, channels: int, kernel_size: int, reduction: int, bias: bool, act: nn.Module) -> None:
        super().__init__()
        self.conv1 = conv(channels, channels, kernel_size, bias)
        self.act = act
        self.conv2 = conv(channels, channels, kernel_size, bias)
        self.attention = ChannelAttention(channels, reduction, bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.attention(self.conv2(self.act(self.conv1(x)))) + x


def cabs(count: int, channels: int, kernel_size: int, reduction: int, bias: bool, act: nn.Module) -> nn.Sequential:
    return nn.Sequential(*(CAB(channels, kernel_size, reduction, bias, act) for _ in range(count)))


class Resample(nn.Module):
    """Bilinear x``factor`` (align_corners false), then a 1x1 convolution to ``out_channels`` (no bias)."""

    def __init__(self, in_channels: int, out_channels: int, factor: float) -> None:
        super().__init__()
        self.factor = factor
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=self.factor, mode="bilinear", align_corners=False))


class SAM(nn.Module):
    """Supervised attention: an image from the features (plus the stage's input image), and the features gated
    by a sigmoid of that image, plus the features."""

    def __init__(self, channels: int, kernel_size: int, bias: bool) -> None:
        super().__init__()
        self.conv1 = conv(channels, channels, kernel_size, bias)
        self.conv2 = conv(channels, 3, kernel_size, bias)
        self.conv3 = conv(3, channels, kernel_size, bias)

    def forward(self, x: Tensor, image: Tensor) -> tuple[Tensor, Tensor]:
        restored = self.conv2(x) + image
        return self.conv1(x) * torch.sigmoid(self.conv3(restored)) + x, restored


class Encoder(nn.Module):
    """Three levels of two CABs, halved and widened by ``step`` channels between levels; with ``fuse``, each
    level adds 1x1 projections of the previous stage's encoder and decoder features at that level."""

    def __init__(self, width: int, step: int, kernel_size: int, reduction: int, bias: bool, act: nn.Module,
                 fuse: bool) -> None:
        super().__init__()
        widths = [width + i * step for i in range(3)]
        self.levels = nn.ModuleList(cabs(2, w, kernel_size, reduction, bias, act) for w in widths)
        self.down = nn.ModuleList(Resample(w, w + step, 0.5) for w in widths[:2])
        self.fuse_enc = nn.ModuleList(nn.Conv2d(w, w, 1, bias=bias) for w in widths) if fuse else None
        self.fuse_dec = nn.ModuleList(nn.Conv2d(w, w, 1, bias=bias) for w in widths) if fuse else None

    def forward(self, x: Tensor, encoded: list[Tensor] | None = None, decoded: list[Tensor] | None = None
                ) -> list[Tensor]:
        outs = []
        for i, level in enumerate(self.levels):
            x = level(x if i == 0 else self.down[i - 1](outs[-1]))
            if self.fuse_enc is not None and encoded is not None and decoded is not None:
                x = x + self.fuse_enc[i](encoded[i]) + self.fuse_dec[i](decoded[i])
            outs.append(x)
        return outs


class Decoder(nn.Module):
    """Coarsest level first; each finer level adds a CAB of the encoder's skip to the up-sampled result."""

    def __init__(self, width: int, step: int, kernel_size: int, reduction: int, bias: bool, act: nn.Module) -> None:
        super().__init__()
        widths = [width + i * step for i in range(3)]
        self.levels = nn.ModuleList(cabs(2, w, kernel_size, reduction, bias, act) for w in widths)
        self.skips = nn.ModuleList(CAB(w, kernel_size, reduction, bias, act) for w in widths[:2])
        self.ups = nn.ModuleList(Resample(w + step, w, 2.0) for w in widths[:2])

    def forward(self, encoded: list[Tensor]) -> list[Tensor]:
        outs = [self.levels[2](encoded[2])]
        for i in (1, 0):
            outs.insert(0, self.levels[i](self.ups[i](outs[0]) + self.skips[i](encoded[i])))
        return outs


class ORB(nn.Module):
    """Original-resolution block: ``num_cab`` CABs and a convolution, plus the input."""

    def __init__(self, channels: int, kernel_size: int, reduction: int, bias: bool, act: nn.Module,
                 num_cab: int) -> None:
        super().__init__()
        self.cabs = cabs(num_cab, channels, kernel_size, reduction, bias, act)
        self.conv = conv(channels, channels, kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.cabs(x)) + x


class RefineNet(nn.Module):
    """Stage 3 (ORSNet): three ORBs; after each, stage 2's encoder and decoder features of one level, brought
    to full size and projected to this width, are added."""

    def __init__(self, width: int, extra: int, step: int, kernel_size: int, reduction: int, bias: bool,
                 act: nn.Module, num_cab: int) -> None:
        super().__init__()
        inner = width + extra
        self.orbs = nn.ModuleList(ORB(inner, kernel_size, reduction, bias, act, num_cab) for _ in range(3))
        self.enc_up1, self.dec_up1 = Resample(width + step, width, 2.0), Resample(width + step, width, 2.0)
        self.enc_up2 = nn.Sequential(Resample(width + 2 * step, width + step, 2.0), Resample(width + step, width, 2.0))
        self.dec_up2 = nn.Sequential(Resample(width + 2 * step, width + step, 2.0), Resample(width + step, width, 2.0))
        self.enc_proj = nn.ModuleList(nn.Conv2d(width, inner, 1, bias=bias) for _ in range(3))
        self.dec_proj = nn.ModuleList(nn.Conv2d(width, inner, 1, bias=bias) for _ in range(3))

    def forward(self, x: Tensor, encoded: list[Tensor], decoded: list[Tensor]) -> Tensor:
        full_enc = [encoded[0], self.enc_up1(encoded[1]), self.enc_up2(encoded[2])]
        full_dec = [decoded[0], self.dec_up1(decoded[1]), self.dec_up2(decoded[2])]
        for i, orb in enumerate(self.orbs):
            x = orb(x) + self.enc_proj[i](full_enc[i]) + self.dec_proj[i](full_dec[i])
        return x


class MPRNet(Backbone):
    """Arguments as the official ``MPRNet`` (``n_feat`` the first level's width, ``scale_unetfeats`` the U-Nets'
    widening per level, ``scale_orsnetfeats`` stage 3's extra width); defaults are the deblurring model's."""

    multiple = 8

    def __init__(self, in_channels: int = 3, out_channels: int = 3, n_feat: int = 96, scale_unetfeats: int = 48,
                 scale_orsnetfeats: int = 32, num_cab: int = 8, kernel_size: int = 3, reduction: int = 4,
                 bias: bool = False) -> None:
        super().__init__()
        if in_channels != 3 or out_channels != 3:
            raise ValueError("MPRNet works on RGB images (its SAM produces 3-channel images)")
        act = nn.PReLU()  # one activation for every CAB, as the official code (not a key of its own)
        args = (kernel_size, reduction, bias, act)
        self.shallow = nn.ModuleList(
            nn.Sequential(conv(3, n_feat, kernel_size, bias), CAB(n_feat, *args)) for _ in range(3)
        )
        self.encoder1 = Encoder(n_feat, scale_unetfeats, *args, fuse=False)
        self.decoder1 = Decoder(n_feat, scale_unetfeats, *args)
        self.encoder2 = Encoder(n_feat, scale_unetfeats, *args, fuse=True)
        self.decoder2 = Decoder(n_feat, scale_unetfeats, *args)
        self.refine = RefineNet(n_feat, scale_orsnetfeats, scale_unetfeats, *args, num_cab=num_cab)
        self.sam1 = SAM(n_feat, 1, bias)
        self.sam2 = SAM(n_feat, 1, bias)
        self.fuse12 = conv(2 * n_feat, n_feat, kernel_size, bias)
        self.fuse23 = conv(2 * n_feat, n_feat + scale_orsnetfeats, kernel_size, bias)
        self.tail = conv(n_feat + scale_orsnetfeats, 3, kernel_size, bias)

    def stages(self, image: Tensor) -> list[Tensor]:
        """``[stage 3 + input, stage 2, stage 1]`` images of an input whose sides are multiples of 8."""
        h, w = image.shape[-2:]
        halves = [image[:, :, : h // 2], image[:, :, h // 2 :]]
        # stage 1: quarters through the encoder, left and right joined per half, one decoder per half
        encoded1, decoded1, gated1, images1 = [], [], [], []
        for half in halves:
            left, right = (self.encoder1(self.shallow[0](q)) for q in (half[..., : w // 2], half[..., w // 2 :]))
            joined = [torch.cat(pair, dim=3) for pair in zip(left, right)]
            decoded = self.decoder1(joined)
            gated, restored = self.sam1(decoded[0], half)
            encoded1.append(joined)
            decoded1.append(decoded)
            gated1.append(gated)
            images1.append(restored)
        # stage 2: halves, with stage 1's features fused in, joined top and bottom before one decoder
        encoded2 = [
            self.encoder2(self.fuse12(torch.cat([self.shallow[1](half), gated], 1)), encoded, decoded)
            for half, gated, encoded, decoded in zip(halves, gated1, encoded1, decoded1)
        ]
        joined2 = [torch.cat(pair, dim=2) for pair in zip(*encoded2)]
        decoded2 = self.decoder2(joined2)
        gated2, image2 = self.sam2(decoded2[0], image)
        # stage 3: the whole image at its own resolution
        x = self.fuse23(torch.cat([self.shallow[2](image), gated2], 1))
        image3 = self.tail(self.refine(x, joined2, decoded2)) + image
        return [image3, image2, torch.cat(images1, dim=2)]

    def _run(self, lq: Tensor) -> tuple[list[Tensor], tuple[int, int]]:
        x, size = pad_to_multiple(lq, self.multiple)  # reflect, as the official test script pads
        return self.stages(x), size

    def forward(self, lq: Tensor, head: Head | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        outputs, size = self._run(lq)
        return crop_to(outputs[0], size), {}

    def forward_train(
        self, lq: Tensor, head: Head | None = None
    ) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
        """Also the stage-2 and stage-1 images (``stage2``, ``stage1``), which the official loss supervises."""
        outputs, size = self._run(lq)
        return crop_to(outputs[0], size), {}, {"stage2": crop_to(outputs[1], size), "stage1": crop_to(outputs[2], size)}
