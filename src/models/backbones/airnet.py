"""AirNet (Li et al., CVPR 2022): a contrastive degradation encoder guiding a deformable restoration network.

* The encoder (CBDE) is a small residual CNN with BatchNorm trained by MoCo: a query encoder, a momentum copy
  for the keys (updated as ``k = m k + (1 - m) q``, never by gradient) and a queue of past keys as
  negatives. Its full-resolution stem output ``inter`` is the degradation representation.
* The restorer (DGRN) is groups of blocks whose degradation-guided modules add, to their input, a deformable
  convolution with offsets predicted from ``cat(x, inter)`` and a spatial feature transform ``x * g + b`` with
  ``g, b`` computed from ``inter``.

Training. Each step needs a second view of the same degraded image as the MoCo key. The official loader cuts a
second random crop from the full image; our batches hold one crop, so the key is derived from it
(:func:`key_view`: a random square sub-crop, ``key_crop`` of the shorter side, under a random one of the eight
flips/rotations). It carries the same degradation and partly other content, which is what the contrastive
task needs, and the LightningModule stays unaware of it. A caller holding a true second crop passes it as
``key``. The InfoNCE loss comes back in the aux dict as ``contrastive``, weighted by ``contrastive_weight``
(0.1 as official). With ``encoder_only`` set (by :class:`~src.callbacks.airnet_warmup.AirNetWarmup` during the
official encoder warm-up) only the encoder runs: the aux loss is the unweighted InfoNCE and the prediction is
the input itself, so the reconstruction term the LightningModule adds is a constant without gradient.

Eval mode uses the query encoder only (BatchNorm running statistics) and returns ``(restored, {})``.

Not trained by gradient: the key encoder (``requires_grad=False``, so the optimiser never sees it) and the
``queue``/``queue_ptr`` buffers.

Head positions (``feature_info``): after each restorer group, ``channels`` wide, full resolution
(``group0``, ``group1``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.models.backbones.base import Backbone, FeatureInfo, Head, add_aux
from src.models.layers.deform import GuidedDeformConv

#: the official LeakyReLU slope, everywhere in AirNet.
SLOPE = 0.1


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


# ----------------------------------------------------------------------------------------------- encoder


class ResBlock(nn.Module):
    """Two 3x3 conv + BatchNorm (the first strided) beside a strided 1x1 conv + BatchNorm, summed, LeakyReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(SLOPE),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(self.residual(x) + self.shortcut(x), SLOPE)


class ResEncoder(nn.Module):
    """Stem block at full resolution (its output guides the restorer), two strided blocks, pooling, MLP.

    Returns ``(embedding, projection, inter)``: the pooled feature, its MLP projection (the contrastive
    representation) and the stem output.
    """

    def __init__(self, in_channels: int, widths: Sequence[int], dim: int) -> None:
        super().__init__()
        c0, c1, c2 = widths
        self.stem = ResBlock(in_channels, c0)
        self.down = nn.Sequential(ResBlock(c0, c1, stride=2), ResBlock(c1, c2, stride=2))
        self.mlp = nn.Sequential(nn.Linear(c2, c2), nn.LeakyReLU(SLOPE), nn.Linear(c2, dim))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        inter = self.stem(x)
        embedding = self.down(inter).mean(dim=(-2, -1))
        return embedding, self.mlp(embedding), inter


class ContrastiveEncoder(nn.Module):
    """MoCo over :class:`ResEncoder`: query encoder, momentum key encoder and a queue of ``queue_size`` keys."""

    def __init__(
        self, in_channels: int, widths: Sequence[int], dim: int, queue_size: int, momentum: float = 0.999,
        temperature: float = 0.07,
    ) -> None:
        super().__init__()
        if queue_size < 1:
            raise ValueError(f"queue_size must be positive, got {queue_size}")
        self.momentum = momentum
        self.temperature = temperature
        self.query = ResEncoder(in_channels, widths, dim)
        self.key = ResEncoder(in_channels, widths, dim)
        for q, k in zip(self.query.parameters(), self.key.parameters()):
            k.data.copy_(q.data)
            k.requires_grad = False  # moved by the momentum update only
        self.register_buffer("queue", F.normalize(torch.randn(dim, queue_size), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    def forward(self, x: Tensor) -> Tensor:
        """The degradation representation ``inter`` of ``x`` (query encoder)."""
        return self.query(x)[2]

    @torch.no_grad()
    def _momentum_update(self) -> None:
        for q, k in zip(self.query.parameters(), self.key.parameters()):
            k.mul_(self.momentum).add_(q.detach(), alpha=1.0 - self.momentum)

    @torch.no_grad()
    def _enqueue(self, keys: Tensor) -> None:
        """Write ``keys`` (N x dim) at the pointer, wrapping around (the official code needs N to divide K)."""
        size, n = self.queue.shape[1], keys.shape[0]
        ptr = int(self.queue_ptr)
        # as if written one after another: with more keys than places only the last `size` survive
        start = ptr + max(0, n - size)
        index = (start + torch.arange(min(n, size), device=keys.device)) % size
        self.queue[:, index] = keys[-size:].t().to(self.queue.dtype)
        self.queue_ptr[0] = (ptr + n) % size

    def contrastive(self, query: Tensor, key: Tensor) -> tuple[Tensor, Tensor]:
        """``(inter, loss)``: the query's representation and the InfoNCE loss against its key and the queue.

        Also advances the key encoder and enqueues the keys, as one official training step does.
        """
        _, q, inter = self.query(query)
        q = F.normalize(q, dim=1)
        with torch.no_grad():
            self._momentum_update()
            k = F.normalize(self.key(key)[1], dim=1)
        positive = (q * k).sum(dim=1, keepdim=True)
        negative = q @ self.queue.clone().to(q.dtype)
        logits = torch.cat([positive, negative], dim=1) / self.temperature
        labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        loss = F.cross_entropy(logits.float(), labels)
        self._enqueue(k)
        return inter, loss


# ----------------------------------------------------------------------------------------------- restorer


class SpatialFeatureTransform(nn.Module):
    """``x * gamma(guide) + beta(guide)``, each a 1x1 conv, LeakyReLU, 1x1 conv (no biases)."""

    def __init__(self, channels: int, guide_channels: int) -> None:
        super().__init__()

        def branch() -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(guide_channels, channels, 1, bias=False), nn.LeakyReLU(SLOPE),
                nn.Conv2d(channels, channels, 1, bias=False),
            )

        self.gamma = branch()
        self.beta = branch()

    def forward(self, x: Tensor, guide: Tensor) -> Tensor:
        return x * self.gamma(guide) + self.beta(guide)


class GuidedModule(nn.Module):
    """DGM: ``x + (deform_conv(x | guide) + sft(x | guide))``."""

    def __init__(self, channels: int, guide_channels: int) -> None:
        super().__init__()
        self.dcn = GuidedDeformConv(channels, channels, guide_channels)
        self.sft = SpatialFeatureTransform(channels, guide_channels)

    def forward(self, x: Tensor, guide: Tensor) -> Tensor:
        return x + (self.dcn(x, guide) + self.sft(x, guide))


class GuidedBlock(nn.Module):
    """DGB: guided module, conv, guided module, conv (LeakyReLU between), plus the block's input."""

    def __init__(self, channels: int, guide_channels: int) -> None:
        super().__init__()
        self.dgm1 = GuidedModule(channels, guide_channels)
        self.conv1 = conv3x3(channels, channels)
        self.dgm2 = GuidedModule(channels, guide_channels)
        self.conv2 = conv3x3(channels, channels)

    def forward(self, x: Tensor, guide: Tensor) -> Tensor:
        out = F.leaky_relu(self.dgm1(x, guide), SLOPE)
        out = F.leaky_relu(self.conv1(out), SLOPE)
        out = F.leaky_relu(self.dgm2(out, guide), SLOPE)
        return self.conv2(out) + x


class GuidedGroup(nn.Module):
    """DGG: guided blocks, a conv, plus the group's input."""

    def __init__(self, channels: int, guide_channels: int, blocks: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(GuidedBlock(channels, guide_channels) for _ in range(blocks))
        self.conv = conv3x3(channels, channels)

    def forward(self, x: Tensor, guide: Tensor) -> Tensor:
        res = x
        for block in self.blocks:
            res = block(res, guide)
        return self.conv(res) + x


class GuidedRestorer(nn.Module):
    """DGRN: head conv, guided groups, a conv with a long skip, tail conv (no image-level residual)."""

    def __init__(self, in_channels: int, channels: int, groups: int, blocks: int) -> None:
        super().__init__()
        self.head = conv3x3(in_channels, channels)
        self.groups = nn.ModuleList(GuidedGroup(channels, channels, blocks) for _ in range(groups))
        self.conv = conv3x3(channels, channels)
        self.tail = conv3x3(channels, in_channels)

    def forward(self, x: Tensor, guide: Tensor, head: Head | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        aux: dict[str, Tensor] = {}
        image, x = x, self.head(x)
        res = x
        for i, group in enumerate(self.groups):
            res = group(res, guide)
            if head is not None:
                res, extra = head(f"group{i}", res, image)
                add_aux(aux, extra)
        return self.tail(self.conv(res) + x), aux


# ----------------------------------------------------------------------------------------------- network


def key_view(lq: Tensor, fraction: float) -> Tensor:
    """A second view of each image for the MoCo key: a random square crop under a random flip/rotation.

    The crop side is ``fraction`` of the shorter side (at least 1 pixel); each sample draws its own position
    and one of the eight dihedral transforms (torch's global generator, so seeded runs repeat).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"key_crop must lie in (0, 1], got {fraction}")
    b, _, h, w = lq.shape
    side = max(1, round(min(h, w) * fraction))
    tops = torch.randint(0, h - side + 1, (b,)).tolist()
    lefts = torch.randint(0, w - side + 1, (b,)).tolist()
    transforms = torch.randint(0, 8, (b,)).tolist()
    views = []
    for image, top, left, t in zip(lq, tops, lefts, transforms):
        view = torch.rot90(image[:, top : top + side, left : left + side], t % 4, dims=(-2, -1))
        views.append(view.flip(-1) if t >= 4 else view)
    return torch.stack(views)


class AirNet(Backbone):
    """The AirNet backbone; in eval mode with no head it is the official network.

    Args:
        in_channels: image channels.
        channels: restorer width, also the encoder stem width (the guide ``inter`` must match it).
        encoder_widths: widths of the encoder's two strided blocks.
        embed_dim: contrastive representation size (the queue's first dimension).
        queue_size: MoCo negatives; official ``256 * batch_size`` (1280 for its batch of 5).
        momentum, temperature: MoCo's key-encoder momentum and softmax temperature.
        groups, blocks: restorer groups and guided blocks per group (5 and 5 officially).
        contrastive_weight: weight of the InfoNCE loss next to the reconstruction loss (0.1 officially).
        key_crop: side of the derived key view, as a fraction of the shorter side of the input.
    """

    def __init__(
        self,
        in_channels: int = 3,
        channels: int = 64,
        encoder_widths: Sequence[int] = (128, 256),
        embed_dim: int = 256,
        queue_size: int = 1280,
        momentum: float = 0.999,
        temperature: float = 0.07,
        groups: int = 5,
        blocks: int = 5,
        contrastive_weight: float = 0.1,
        key_crop: float = 0.5,
    ) -> None:
        super().__init__()
        if len(encoder_widths) != 2:
            raise ValueError(f"encoder_widths needs the widths of the two strided blocks, got {encoder_widths}")
        self.encoder = ContrastiveEncoder(in_channels, (channels, *encoder_widths), embed_dim, queue_size, momentum,
                                          temperature)
        self.restorer = GuidedRestorer(in_channels, channels, groups, blocks)
        self.contrastive_weight = float(contrastive_weight)
        self.key_crop = float(key_crop)
        #: train the encoder alone with the unweighted contrastive loss (the official warm-up phase)
        self.encoder_only = False
        self.multiple = 1
        self.in_channels = self.out_channels = in_channels
        self.feature_info: list[FeatureInfo] = [FeatureInfo(f"group{i}", channels, 1) for i in range(groups)]

    def forward(
        self, lq: Tensor, head: Head | None = None, key: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        if not self.training:
            return self.restorer(lq, self.encoder(lq), head)
        inter, loss = self.encoder.contrastive(lq, key_view(lq, self.key_crop) if key is None else key)
        if self.encoder_only:
            return lq, {"contrastive": loss}
        pred, aux = self.restorer(lq, inter, head)
        add_aux(aux, {"contrastive": self.contrastive_weight * loss})
        return pred, aux
