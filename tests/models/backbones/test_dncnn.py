"""The DnCNN backbone: residual output, odd sizes, gradients, bf16, gray and colour, KAIR's batch norm."""

from __future__ import annotations

import pytest
import torch

from src.models.backbones.dncnn import DnCNN

TINY = dict(channels=8, depth=4)


def test_output_is_input_minus_predicted_noise() -> None:
    model = DnCNN(**TINY).eval()
    lq = torch.rand(1, 1, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(model(lq)[0], lq - model.noise(lq))
        torch.nn.init.zeros_(model.last.weight)
        torch.nn.init.zeros_(model.last.bias)
        assert torch.equal(model(lq)[0], lq)


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
