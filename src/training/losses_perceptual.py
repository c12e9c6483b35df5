"""TransWeather's objective: smooth L1 plus ``perceptual`` x the VGG16 feature loss, from local weights only.

The official ``train.py`` takes ``vgg16(pretrained=True).features[:16]`` (frozen) and its ``LossNetwork``
averages the MSE of the relu1_2, relu2_2 and relu3_3 features of the prediction and the target, both fed as
they are (no ImageNet normalisation; the prediction is the network's tanh output). torchvision would download
the ImageNet weights when they are absent; here they are read from where torchvision caches them (the file
LPIPS's ``vgg`` uses too), and a missing file stops the run at its first training step (the preflight's, before
the run's own), naming the file to fetch; evaluation and restoration never need it.
The VGG is kept out of the module tree, so checkpoints do not carry its 15 MB of frozen weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from src.models.layers.vgg import FEATURE_LAYERS, vgg_features
from src.training.losses import Objective


def feature_loss(features: nn.Sequential, pred: Tensor, target: Tensor) -> Tensor:
    """Mean over relu1_2, relu2_2, relu3_3 of the MSE between the two images' features."""
    losses = []
    x, y = pred, target
    for index, layer in enumerate(features):
        x, y = layer(x), layer(y)
        if index in FEATURE_LAYERS:
            losses.append(nn.functional.mse_loss(x, y))
    return sum(losses) / len(losses)


class PixelPlusPerceptual(Objective):
    """A pixel term plus a perceptual term on frozen VGG features (read from local weights on first use, kept out
    of the module tree so checkpoints never carry them, moved to the data's device); subclasses name the pixel
    term (``pixel``), the VGG (``feature_network``) and the feature distance (``perceptual``)."""

    #: the pixel term's name in ``weights`` and the logged terms
    pixel_name = "l1"

    def __init__(self, pixel: float, perceptual: float, vgg_weights: str | None = None) -> None:
        super().__init__()
        self.weights = self.term_weights(**{self.pixel_name: pixel, "perceptual": perceptual})
        self.vgg_weights = vgg_weights
        # a plain attribute, not a submodule: read at the first training step (the preflight's, before the run's
        # first), so evaluating or restoring never needs the file
        self.__dict__["vgg"] = None

    def load_features(self) -> nn.Sequential:
        raise NotImplementedError

    def pixel(self, pred: Tensor, gt: Tensor) -> Tensor:
        raise NotImplementedError

    def perceptual(self, vgg: nn.Sequential, pred: Tensor, gt: Tensor) -> Tensor:
        raise NotImplementedError

    def feature_network(self) -> nn.Sequential | None:
        """The frozen VGG layers, read on first use (``None`` when the perceptual weight is 0)."""
        if self.weights["perceptual"] and self.vgg is None:
            self.__dict__["vgg"] = self.load_features()
        return self.vgg

    def objective(
        self, pred: Tensor, batch: Mapping[str, Any], outputs: Mapping[str, Tensor]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        if batch.get("gt") is None:
            raise ValueError(f"{type(self).__name__} compares with the ground truth, but the batch has no `gt`")
        gt = batch["gt"]
        terms: dict[str, Tensor] = {}
        if self.weights[self.pixel_name]:
            terms[self.pixel_name] = self.weights[self.pixel_name] * self.pixel(pred, gt)
        vgg = self.feature_network()
        if vgg is not None:
            if next(vgg.parameters()).device != pred.device:
                vgg.to(pred.device)
            terms["perceptual"] = self.weights["perceptual"] * self.perceptual(vgg, pred, gt)
        return sum(terms.values()), terms


class TransWeatherLoss(PixelPlusPerceptual):
    """``smooth_l1`` x smooth L1 + ``perceptual`` x the VGG16 feature loss (official weights 1 and 0.04)."""

    pixel_name = "smooth_l1"

    def __init__(self, smooth_l1: float = 1.0, perceptual: float = 0.04, vgg_weights: str | None = None) -> None:
        super().__init__(smooth_l1, perceptual, vgg_weights)

    def load_features(self) -> nn.Sequential:
        return vgg_features(self.vgg_weights)

    def pixel(self, pred: Tensor, gt: Tensor) -> Tensor:
        return nn.functional.smooth_l1_loss(pred, gt)

    def perceptual(self, vgg: nn.Sequential, pred: Tensor, gt: Tensor) -> Tensor:
        return feature_loss(vgg, pred, gt)


#: index of relu5_4 in torchvision's ``vgg19().features``: Water-Net's perceptual layer
VGG19_RELU5_4 = 35
#: torchvision's ImageNet normalisation, which its VGG19 weights expect
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WaterNetLoss(PixelPlusPerceptual):
    """Water-Net's objective (official ``model_train.py``): ``l1`` x L1 + ``perceptual`` x the MSE of the VGG19
    relu5_4 features of prediction and target (weights 1 and 0.05).

    The official code feeds MatConvNet's VGG19 the 0-255 image minus the ImageNet mean; torchvision's VGG19
    (the weights a PyTorch user has) expects ImageNet-normalised [0, 1] input, so it gets that."""

    def __init__(self, l1: float = 1.0, perceptual: float = 0.05, vgg_weights: str | None = None) -> None:
        super().__init__(l1, perceptual, vgg_weights)

    def load_features(self) -> nn.Sequential:
        return vgg_features(self.vgg_weights, arch="vgg19", last=VGG19_RELU5_4)

    def pixel(self, pred: Tensor, gt: Tensor) -> Tensor:
        return nn.functional.l1_loss(pred, gt)

    def perceptual(self, vgg: nn.Sequential, pred: Tensor, gt: Tensor) -> Tensor:
        mean = pred.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = pred.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return nn.functional.mse_loss(vgg((pred - mean) / std), vgg((gt - mean) / std))
