"""TransWeather's objective: the VGG16 feature term from local weights only, and a clear stop without them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from src.models.layers.vgg import FEATURE_LAYERS, VGGWeightsError
from src.training.losses_perceptual import TransWeatherLoss, feature_loss


@pytest.fixture
def vgg_file(tmp_path: Path) -> Path:
    """A file in torchvision's vgg16 key layout (random weights: the test checks the plumbing, not ImageNet)."""
    torch.manual_seed(0)
    path = tmp_path / "vgg16.pth"
    torch.save(torchvision.models.vgg16(weights=None).state_dict(), path)
    return path


def test_without_the_weights_the_loss_names_the_file_to_fetch(tmp_path: Path) -> None:
    loss = TransWeatherLoss(vgg_weights=str(tmp_path / "nowhere.pth"))  # building needs no file (evaluation)
    gt = torch.rand(1, 3, 16, 16)
    with pytest.raises(VGGWeightsError, match=r"(?s)not found at .*nowhere\.pth.*download\.pytorch\.org.*perceptual=0"):
        loss.objective(gt, {"gt": gt}, {})
    assert TransWeatherLoss(perceptual=0).feature_network() is None  # the pixel term alone needs no file


def test_the_feature_term_is_the_mean_of_three_layer_mses(vgg_file: Path) -> None:
    loss = TransWeatherLoss(vgg_weights=str(vgg_file))
    assert "vgg" not in dict(loss.named_modules()) and not list(loss.state_dict())  # never in checkpoints
    gt = torch.rand(2, 3, 32, 32)
    total, terms = loss.objective(gt.clone(), {"gt": gt}, {})
    assert total.item() == 0.0 and set(terms) == {"smooth_l1", "perceptual"}
    pred = (gt + 0.1 * torch.randn_like(gt)).requires_grad_()
    total, terms = loss.objective(pred, {"gt": gt}, {})
    expected = torch.nn.functional.smooth_l1_loss(pred, gt) + 0.04 * feature_loss(loss.feature_network(), pred, gt)
    assert torch.allclose(total, expected) and terms["perceptual"] > 0
    total.backward()
    assert pred.grad is not None and all(p.grad is None for p in loss.vgg.parameters())
    assert len(loss.vgg) == FEATURE_LAYERS[-1] + 1


def test_a_file_of_another_network_is_refused(tmp_path: Path) -> None:
    torch.save({"features.0.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(VGGWeightsError, match="does not fit torchvision's vgg16"):
        TransWeatherLoss(vgg_weights=str(tmp_path / "other.pth")).feature_network()


@pytest.mark.slow  # VGG19 to relu5_4 read and run (4 s)
def test_water_net_loss_is_l1_plus_the_vgg19_relu5_4_mse_on_imagenet_normalised_input() -> None:
    from src.training.losses_perceptual import IMAGENET_MEAN, IMAGENET_STD, WaterNetLoss

    loss = WaterNetLoss()
    generator = torch.Generator().manual_seed(0)
    pred, gt = torch.rand(1, 3, 32, 32, generator=generator), torch.rand(1, 3, 32, 32, generator=generator)
    total, terms = loss.objective(pred, {"gt": gt}, {})
    vgg = loss.feature_network()
    assert len(vgg) == 36  # features up to relu5_4
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = torch.nn.functional.l1_loss(pred, gt) + 0.05 * torch.nn.functional.mse_loss(
            vgg((pred - mean) / std), vgg((gt - mean) / std))
    assert torch.allclose(total, expected) and set(terms) == {"l1", "perceptual"}
