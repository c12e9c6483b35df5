"""Parameter and FLOP counts for the summary printout."""

from __future__ import annotations

import torch
from torch import nn

from src.models.backbones.restormer import Restormer
from src.training.profile import count_flops, count_parameters


def test_counts_of_a_convolution() -> None:
    conv = nn.Conv2d(3, 8, 3, padding=1)
    assert count_parameters(conv) == 8 * 3 * 9 + 8
    conv.bias.requires_grad_(False)
    assert count_parameters(conv, trainable_only=True) == 8 * 3 * 9
    assert count_flops(conv, (1, 3, 16, 16)) == 2 * 8 * 3 * 9 * 16 * 16


def test_flops_of_a_backbone_grow_with_the_image() -> None:
    model = Restormer(dim=8, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1, heads=(1, 2, 2, 4))
    small, large = count_flops(model, (1, 3, 16, 16)), count_flops(model, (1, 3, 32, 32))
    assert 0 < small < large
    assert model.training  # counting leaves the mode alone
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())
    assert torch.is_grad_enabled()
