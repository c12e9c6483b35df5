"""The DnCNN backbone: residual output, odd sizes, gradients, bf16, gray and colour, KAIR's batch norm."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from src.models.backbones.base import NoHead
from src.models.backbones.dncnn import DnCNN

TINY = dict(channels=8, depth=4)


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("shape", [(1, 37, 53), (2, 5, 3)])
def test_any_size_gives_same_size_finite_output(in_channels: int, shape: tuple[int, int, int]) -> None:
    model = DnCNN(in_channels, in_channels, **TINY).eval()
    lq = torch.rand(shape[0], in_channels, *shape[1:])
    with torch.no_grad():
        pred, aux = model(lq)
    assert pred.shape == lq.shape
    assert torch.isfinite(pred).all()
    assert aux == {}


def test_contract_has_no_head_positions() -> None:
    model = DnCNN(**TINY)
    assert model.feature_info == [] and model.multiple == 1
    lq = torch.rand(1, 1, 9, 9)
    with torch.no_grad():
        assert torch.equal(model.eval()(lq)[0], model(lq, head=NoHead(model.feature_info))[0])


def test_output_is_input_minus_predicted_noise() -> None:
    model = DnCNN(**TINY).eval()
    lq = torch.rand(1, 1, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(model(lq)[0], lq - model.noise(lq))
        torch.nn.init.zeros_(model.last.weight)
        torch.nn.init.zeros_(model.last.bias)
        assert torch.equal(model(lq)[0], lq)


@pytest.mark.parametrize("batch_norm", [True, False])
def test_every_parameter_gets_a_gradient(batch_norm: bool) -> None:
    torch.manual_seed(0)
    model = DnCNN(3, 3, batch_norm=batch_norm, **TINY)
    lq, gt = torch.rand(2, 3, 15, 11), torch.rand(2, 3, 15, 11)
    pred, _ = model(lq)
    F.mse_loss(pred, gt).backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"parameters without gradient: {dead}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_runs_under_bf16_autocast() -> None:
    model = DnCNN(**TINY).eval()
    lq = torch.rand(1, 1, 21, 30)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pred, _ = model(lq)
    assert pred.shape == lq.shape
    assert torch.isfinite(pred.float()).all()


def test_batch_norm_uses_kair_settings() -> None:
    norm = DnCNN(**TINY).body[0].norm
    assert isinstance(norm, torch.nn.BatchNorm2d)
    assert norm.eps == 1e-4 and norm.momentum == 0.9
    assert isinstance(DnCNN(batch_norm=False, **TINY).body[0].norm, torch.nn.Identity)


def test_layer_count_and_parameters() -> None:
    """17 layers of 64 features on gray: 0.56M parameters with batch norm (KAIR's count)."""
    model = DnCNN()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 17
    assert sum(p.numel() for p in model.parameters()) == 557_057


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(in_channels=3, out_channels=1), "must equal"),
        (dict(depth=1), "depth"),
        (dict(activation="gelu"), "activation"),
    ],
)
def test_bad_configurations_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DnCNN(**kwargs)
