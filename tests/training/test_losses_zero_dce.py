"""Zero-DCE's zero-reference losses: each term vanishes exactly where it should and is positive otherwise."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from src.training.losses_zero_dce import (
    ZeroDCELoss,
    color_constancy,
    exposure_control,
    illumination_smoothness,
    spatial_consistency,
)


def official_style_spatial(enhanced: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """The term as the paper's code states it: four zero-padded difference convolutions per pooled image."""
    kernels = torch.tensor(
        [
            [[0, 0, 0], [-1, 1, 0], [0, 0, 0]],
            [[0, 0, 0], [0, 1, -1], [0, 0, 0]],
            [[0, -1, 0], [0, 1, 0], [0, 0, 0]],
            [[0, 0, 0], [0, 1, 0], [0, -1, 0]],
        ],
        dtype=enhanced.dtype,
    ).unsqueeze(1)
    e = F.conv2d(F.avg_pool2d(enhanced.mean(1, keepdim=True), 4), kernels, padding=1)
    o = F.conv2d(F.avg_pool2d(original.mean(1, keepdim=True), 4), kernels, padding=1)
    return (o - e).pow(2).sum(1).mean()


def test_spatial_consistency_matches_the_convolution_form() -> None:
    torch.manual_seed(0)
    low, enhanced = torch.rand(2, 3, 33, 26) * 0.2, torch.rand(2, 3, 33, 26)
    torch.testing.assert_close(spatial_consistency(enhanced, low), official_style_spatial(enhanced, low))


def test_spatial_consistency_is_zero_only_for_the_same_structure() -> None:
    low = torch.rand(1, 3, 32, 32)
    assert spatial_consistency(low, low) == 0
    assert spatial_consistency(low.flip(-1), low) > 0


def test_exposure_is_zero_at_the_well_exposed_level() -> None:
    x = torch.full((2, 3, 32, 48), 0.6)
    x[:, 0] += 0.1  # channel mean stays 0.6 when the others compensate
    x[:, 1] -= 0.1
    assert exposure_control(x).item() == pytest.approx(0.0, abs=1e-12)
    assert exposure_control(torch.full((1, 3, 32, 32), 0.2)).item() == pytest.approx(0.16, rel=1e-5)
    # patches are 16 x 16 and a partial border patch is dropped (floor pooling, as the official AvgPool2d)
    x = torch.full((1, 3, 16, 20), 0.6)
    x[..., 16:] = 0.0
    assert exposure_control(x).item() == pytest.approx(0.0, abs=1e-12)


def test_color_constancy_is_zero_for_grey_images_with_a_finite_gradient() -> None:
    grey = torch.rand(2, 1, 16, 16).expand(2, 3, 16, 16).clone().requires_grad_(True)
    value = color_constancy(grey)
    assert value.item() == 0
    value.backward()
    assert torch.isfinite(grey.grad).all()
    tinted = torch.rand(2, 3, 16, 16) * torch.tensor([1.0, 0.5, 0.2]).view(1, 3, 1, 1)
    assert color_constancy(tinted) > 0


def test_color_constancy_value() -> None:
    """Means (0.5, 0.3, 0.3): Drg = Drb = 0.04, Dgb = 0 -> sqrt(2 * 0.04**2)."""
    x = torch.tensor([0.5, 0.3, 0.3]).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    assert color_constancy(x).item() == pytest.approx((2 * 0.04**2) ** 0.5)


def test_illumination_smoothness_is_zero_for_constant_curves() -> None:
    constant = torch.rand(2, 24, 1, 1).expand(2, 24, 9, 7)
    assert illumination_smoothness(constant) == 0
    assert illumination_smoothness(torch.rand(2, 24, 9, 7)) > 0


def test_illumination_smoothness_value() -> None:
    """A unit step along W on one map: 2 * (0 + H / (H (W - 1))) / batch."""
    curves = torch.zeros(2, 24, 5, 6)
    curves[0, 0, :, 3:] = 1.0
    assert illumination_smoothness(curves).item() == pytest.approx(2 * (1 / 5) / 2)


def test_module_weights_terms_and_ignores_the_target() -> None:
    torch.manual_seed(0)
    low, enhanced, curves = torch.rand(1, 3, 32, 32) * 0.2, torch.rand(1, 3, 32, 32), torch.rand(1, 24, 32, 32)
    loss = ZeroDCELoss()
    total, terms = loss(enhanced, None, lq=low, curves=curves)
    assert terms["spatial"] == spatial_consistency(enhanced, low)
    assert terms["exposure"] == 10 * exposure_control(enhanced)
    assert terms["color"] == 5 * color_constancy(enhanced)
    assert terms["illumination"] == 200 * illumination_smoothness(curves)
    torch.testing.assert_close(total, sum(terms.values()))
    with_gt, _ = loss(enhanced, torch.rand(1, 3, 32, 32), lq=low, curves=curves)
    assert with_gt == total


def test_module_needs_its_inputs_and_switches_terms_off() -> None:
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="input image"):
        ZeroDCELoss()(x, x, curves=torch.rand(1, 24, 16, 16))
    with pytest.raises(ValueError, match="curve maps"):
        ZeroDCELoss()(x, x, lq=x)
    total, terms = ZeroDCELoss(spatial=0, illumination=0)(x, None)
    assert set(terms) == {"exposure", "color"}
    with pytest.raises(ValueError, match="weight 0"):
        ZeroDCELoss(spatial=0, exposure=0, color=0, illumination=0)
