"""RestorationLoss: each weighted term is the named error, zero weights switch terms off, bad weights fail."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F
from torchmetrics.functional.image import peak_signal_noise_ratio

from src.training.losses import RestorationLoss, charbonnier, fft_l1, psnr_loss


@pytest.fixture
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, 16, 16, generator=gen), torch.rand(2, 3, 16, 16, generator=gen)


def test_default_is_plain_l1(pair) -> None:
    pred, target = pair
    total, terms = RestorationLoss()(pred, target)
    assert list(terms) == ["l1"]
    assert torch.allclose(total, F.l1_loss(pred, target))


def test_each_term_is_its_weighted_error_and_the_total_their_sum(pair) -> None:
    pred, target = pair
    total, terms = RestorationLoss(l1=0.5, mse=2.0, charbonnier=0.25, fft_l1=0.1, psnr=0.01)(pred, target)
    assert torch.allclose(terms["l1"], 0.5 * (pred - target).abs().mean())
    assert torch.allclose(terms["mse"], 2.0 * ((pred - target) ** 2).mean())
    assert torch.allclose(terms["charbonnier"], 0.25 * charbonnier(pred, target))
    assert torch.allclose(terms["fft_l1"], 0.1 * fft_l1(pred, target))
    assert torch.allclose(terms["psnr_loss"], 0.01 * psnr_loss(pred, target))
    assert torch.allclose(total, sum(terms.values()))


def test_psnr_loss_is_minus_the_mean_per_image_psnr(pair) -> None:
    pred, target = pair
    pred = target + 0.01 * (pred - 0.5)  # a near image beside a far one: the two PSNRs differ a lot
    pred[1] = target[1] + 0.3 * (pair[0][1] - 0.5)
    per_image = [peak_signal_noise_ratio(p[None], t[None], data_range=1.0) for p, t in zip(pred, target)]
    # within 0.01 dB: the loss adds eps = 1e-8 to each MSE (the 51 dB image's is 8e-6)
    assert torch.allclose(psnr_loss(pred, target), -torch.stack(per_image).mean(), atol=1e-2)
    # per image, not per pixel: the mean-PSNR loss differs from minus the PSNR of the pooled error
    assert not torch.allclose(psnr_loss(pred, target), -peak_signal_noise_ratio(pred, target, data_range=1.0), atol=1)


def test_a_zero_weight_switches_its_term_off(pair) -> None:
    pred, target = pair
    total, terms = RestorationLoss(l1=0.0, mse=1.0)(pred, target)
    assert list(terms) == ["mse"]
    assert torch.allclose(total, F.mse_loss(pred, target))


@pytest.mark.parametrize("weights", [{"l1": 0.0}, {"l1": -1.0}, {"mse": -0.5}])
def test_weights_that_switch_everything_off_or_are_negative_fail(weights) -> None:
    with pytest.raises(ValueError, match="model.loss"):
        RestorationLoss(**weights)


def test_multiscale_l1_compares_every_level_with_the_targets_pyramid():
    from src.models.backbones.deepdeblur import gaussian_pyramid
    from src.training.losses import MultiScaleL1

    gt = torch.rand(2, 3, 32, 32)
    levels = gaussian_pyramid(gt, 3)
    loss = MultiScaleL1()
    total, terms = loss.objective(gt, {"gt": gt}, {"scale1": levels[1], "scale2": levels[2]})
    assert set(terms) == {"l1", "l1_scale1", "l1_scale2"} and total.item() < 1e-6
    off = levels[2] + 0.1
    total, terms = loss.objective(gt, {"gt": gt}, {"scale1": levels[1], "scale2": off})
    assert terms["l1_scale2"].item() == pytest.approx(0.1, abs=1e-5) and total.item() == pytest.approx(0.1, abs=1e-5)
