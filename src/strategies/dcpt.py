"""DCPT (Hu et al., ICLR 2025): pre-train a restorer by classifying degradations from its own features.

Each step the network reconstructs the *clean* image from the clean image (an L1 term that keeps it a generator),
and a light classifier reads the network's features of the *degraded* image at chosen head positions and
predicts the degradation family (focal loss; ``gamma`` 0 is cross-entropy). The two terms are summed and
back-propagated once, so the classification gradient shapes the network's encoder; network and classifier are
stepped together, as the official two optimisers are: Adam's update is per parameter, so two Adams stepped on the
same loss equal one Adam with two parameter groups, which is what this builds (``classifier_lr`` sets the
classifier group's rate). Fine-tuning then starts from the pre-trained weights (``model.pretrained=<checkpoint>``:
the classifier's tensors are left out of a plain model).

:class:`DegradationClassifier` is the official aggregator (MILab-PKU/dcpt ``degrad_classify_arch.py``):
per feature, add it (times a softmax-normalised mixing weight) to the running map, run bottleneck blocks, halve
with a 1x1 convolution and max-pooling; then a last stage, global mean and a linear layer. ``with_image`` adds the
official ``PromptIR_DC`` variant's stride-2 embedding of the degraded image as the running map's start; without it
(the paper's "solely from encoder features", ``PromptIR_NoImg_DC``) the map starts at zero. Features from any
backbone's ``feature_info`` positions are used finest first; where a position is not half the size of the one
before (other backbones), the running map is resized to it, which the official code never needs.
The classification pass runs the network's whole forward on the degraded batch (the official one stops after
decoder level 2, which is PromptIR-specific), so a step costs two full forwards and backwards.
The official release has no pre-training options, so the positions, the blocks and the loss settings are ours
(defaults: every position but the coarsest, two blocks, cross-entropy) and stated in the config.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.models.backbones.base import FeatureInfo
from src.models.layers.norm import ChannelLayerNorm
from src.strategies.base import FeatureTap, Strategy, require_same_size
from src.utils.errors import ConfigError

log = logging.getLogger(__name__)


class NormedConv(nn.Conv2d):
    """A bias-free convolution followed by a channel layer norm (``.norm``), the official blocks' unit."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.norm = ChannelLayerNorm(out_channels, eps=1e-6)
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(super().forward(x))


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 at twice the width inside, each normalised, ReLUs between, a residual around."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = 2 * channels
        self.conv1 = NormedConv(channels, inner, 1)
        self.conv2 = NormedConv(inner, inner, 3)
        self.conv3 = NormedConv(inner, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.conv1(x))
        y = F.relu(self.conv2(y))
        return F.relu(self.conv3(y) + x)


class DegradationClassifier(nn.Module):
    """Degradation logits from a network's features (finest first; ``channels`` theirs); see the module doc."""

    def __init__(self, channels: Sequence[int], num_classes: int, blocks: int = 2, with_image: bool = False,
                 in_channels: int = 3) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        if not channels or num_classes < 2 or blocks < 1:
            raise ConfigError(f"a degradation classifier needs features ({channels}), >= 2 classes ({num_classes}) "
                              f"and >= 1 block ({blocks})")
        self.with_image = with_image
        self.mixing_weights = nn.Parameter(torch.ones(len(channels)))
        if with_image:
            self.conv_embed = nn.Sequential(nn.Conv2d(in_channels, channels[0], 7, stride=2, padding=3),
                                            ChannelLayerNorm(channels[0], eps=1e-6))
        self.bottleneck_layers = nn.ModuleList(
            nn.Sequential(*(Bottleneck(c) for _ in range(blocks))) for c in channels)
        widths = [*channels[1:], channels[-1]]
        self.downsample_layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, w, 1, bias=False), nn.MaxPool2d(2), nn.ReLU()) for c, w in zip(channels, widths))
        for layer in self.downsample_layers:
            nn.init.kaiming_normal_(layer[0].weight, mode="fan_out", nonlinearity="relu")
        self.last_stage = nn.Sequential(*(Bottleneck(channels[-1]) for _ in range(blocks)))
        self.fc = nn.Linear(channels[-1], num_classes)

    def forward(self, image: Tensor, features: Sequence[Tensor]) -> Tensor:
        if len(features) != len(self.bottleneck_layers):
            raise ValueError(f"expected {len(self.bottleneck_layers)} features, got {len(features)}")
        mix = torch.softmax(self.mixing_weights, dim=0)
        running: Tensor | None = self.conv_embed(image) if self.with_image else None
        for i, feature in enumerate(features):
            added = mix[i] * feature
            if running is not None:
                if running.shape[-2:] != feature.shape[-2:]:
                    running = F.interpolate(running, size=feature.shape[-2:], mode="nearest")
                added = running + added
            running = self.downsample_layers[i](self.bottleneck_layers[i](added))
        return self.fc(self.last_stage(running).mean(dim=(2, 3)))


def focal_loss(logits: Tensor, target: Tensor, gamma: float) -> Tensor:
    """``-(1 - p_y)^gamma log p_y``, averaged; ``gamma`` 0 is cross-entropy (the official default)."""
    log_p = F.log_softmax(logits.float(), dim=1).gather(1, target[:, None]).squeeze(1)
    return (-((1.0 - log_p.exp()) ** gamma) * log_p).mean() if gamma else -log_p.mean()


def choose_positions(info: Sequence[FeatureInfo], names: Sequence[str] | None) -> list[FeatureInfo]:
    """The classifier's positions, finest first: ``names`` (checked against the backbone's), or every position
    but the coarsest."""
    known = {i.name: i for i in info}
    if not known:
        raise ConfigError("DCPT reads the network's features at its head positions (feature_info), and this "
                          "backbone publishes none")
    if names:
        missing = [n for n in names if n not in known]
        if missing:
            raise ConfigError(f"model.strategy.positions names {missing}, not positions of this backbone "
                              f"(its feature_info: {sorted(known)})")
        chosen = [known[n] for n in names]
    else:
        ordered = sorted(known.values(), key=lambda i: i.reduction)
        chosen = ordered[:-1] if len(ordered) > 1 else ordered
    return sorted(chosen, key=lambda i: i.reduction)


class DcptPretrain(Strategy):
    """The pre-training objective (see the module docstring)."""

    def __init__(self, families: Sequence[str], positions: Sequence[str] | None = None, blocks: int = 2,
                 with_image: bool = False, gamma: float = 0.0, classify_weight: float = 1.0,
                 reconstruct_weight: float = 1.0, classifier_lr: float | None = None) -> None:
        super().__init__()
        self.families = [str(f) for f in families or []]
        if len(self.families) < 2:
            raise ConfigError(f"model.strategy.families={self.families}: DCPT classifies >= 2 degradation families")
        if gamma < 0:
            raise ConfigError(f"model.strategy.gamma={gamma}: the focal loss's gamma is >= 0")
        self.position_names = list(positions) if positions else None
        self.blocks, self.with_image, self.gamma = int(blocks), bool(with_image), float(gamma)
        self.classify_weight, self.reconstruct_weight = float(classify_weight), float(reconstruct_weight)
        self.classifier_lr = classifier_lr
        self.positions: list[str] = []
        self.classifier: DegradationClassifier | None = None

    def bind(self, module: Any) -> None:
        net = module.net
        require_same_size(net, "DCPT reconstructs the clean image from itself")
        chosen = choose_positions(net.feature_info, self.position_names)
        self.positions = [i.name for i in chosen]
        self.classifier = DegradationClassifier([i.channels for i in chosen], len(self.families), self.blocks,
                                                self.with_image, net.in_channels)
        log.info("DCPT: classifying %s from the features at %s", self.families, self.positions)

    def labels(self, batch: Mapping[str, Any], device: torch.device) -> Tensor:
        unknown = sorted(set(batch["family"]) - set(self.families))
        if unknown:
            raise ConfigError(f"the batch has families {unknown} that model.strategy.families={self.families} lacks")
        return torch.tensor([self.families.index(f) for f in batch["family"]], device=device)

    def logits(self, module: Any, batch: Mapping[str, Any], lq: Tensor) -> Tensor:
        """The classifier's logits for ``lq`` from the network's features (with their gradients)."""
        tap = FeatureTap(module.head, self.positions)
        module.network_outputs(batch, lq=lq, head=tap)
        return self.classifier(lq, [tap.features[name] for name in self.positions])

    def training_loss(self, module: Any, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        gt = batch["gt"]
        clean, aux, _, intent = module.network_outputs(batch, lq=gt)
        reconstruct = F.l1_loss(clean.float(), gt.float())
        logits = self.logits(module, batch, batch["lq"])
        target = self.labels(batch, logits.device)
        classify = focal_loss(logits, target, self.gamma)
        total = self.reconstruct_weight * reconstruct + self.classify_weight * classify
        accuracy = (logits.detach().argmax(dim=1) == target).float().mean()
        terms = {"dcpt/reconstruct": reconstruct.detach(), "dcpt/classify": classify.detach(),
                 "dcpt/accuracy": accuracy}
        return module.complete_objective(total, terms, batch, aux, intent)

    def example_fields(self, batch: int) -> dict[str, Any]:
        return {"family": [self.families[0]] * batch}

    def parameter_groups(self, module: Any, trainable: Sequence[nn.Parameter]) -> list[dict[str, Any]] | None:
        if self.classifier_lr is None:
            return None
        mine = {id(p) for p in self.classifier.parameters()}
        return [{"params": [p for p in trainable if id(p) not in mine]},
                {"params": [p for p in trainable if id(p) in mine], "lr": float(self.classifier_lr)}]
