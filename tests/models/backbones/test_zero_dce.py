"""The Zero-DCE backbone: curve maps, the curve iteration, odd sizes, gradients, bf16."""

from __future__ import annotations

import pytest
import torch

from src.models.backbones.zero_dce import ZeroDCE, apply_curves
from src.training.losses_zero_dce import ZeroDCELoss


@pytest.fixture(scope="module")
def model() -> ZeroDCE:
    torch.manual_seed(0)
    return ZeroDCE().eval()


def test_forward_applies_the_curve_maps(model: ZeroDCE) -> None:
    x = torch.rand(1, 3, 16, 12)
    with torch.no_grad():
        curves = model.curves(x)
        pred, _ = model(x)
    assert curves.shape == (1, 24, 16, 12)
    assert curves.abs().max() <= 1
    torch.testing.assert_close(pred, apply_curves(x, curves))


def test_curve_step_is_the_quadratic_and_unclamped() -> None:
    x = torch.tensor([0.0, 0.25, 0.5, 1.0]).view(1, 1, 1, 4)
    assert torch.equal(apply_curves(x, torch.zeros(1, 8, 1, 4)), x)
    one_step = apply_curves(x, torch.full((1, 1, 1, 4), -1.0))
    torch.testing.assert_close(one_step, 2 * x - x * x)  # the brightest curve; fixed points 0 and 1
    # curves outside the official tanh range are not clipped: the output can leave [0, 1]
    assert apply_curves(x, torch.full((1, 1, 1, 4), -3.0)).max() > 1
    with pytest.raises(ValueError, match="groups of 3"):
        apply_curves(torch.rand(1, 3, 2, 2), torch.rand(1, 4, 2, 2))


def test_every_parameter_gets_a_gradient_from_the_zero_reference_loss() -> None:
    torch.manual_seed(0)
    net = ZeroDCE()
    lq = torch.rand(2, 3, 32, 32) * 0.3
    curves = net.curves(lq)
    total, terms = ZeroDCELoss()(apply_curves(lq, curves), None, lq=lq, curves=curves)
    total.backward()
    assert set(terms) == {"spatial", "exposure", "color", "illumination"}
    dead = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"parameters without gradient: {dead}"
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())


def test_size_and_iterations() -> None:
    assert sum(p.numel() for p in ZeroDCE().parameters()) == 79_416
    assert ZeroDCE(iterations=4).curves(torch.rand(1, 3, 8, 8)).shape[1] == 12
