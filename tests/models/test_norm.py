"""The channel layer norm (src/models/layers/norm.py) equals the layer norms of the official codes to 1e-6."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from src.models.layers.norm import ChannelLayerNorm


def _inputs() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(2, 16, 9, 11, generator=g),
            torch.randn(1, 48, 5, 7, generator=g) * 0.01 + 100.0]  # a large mean: no cancellation allowed


def test_with_bias_is_layer_norm_over_channels() -> None:
    x = _inputs()[0]
    norm = ChannelLayerNorm(x.shape[1], eps=1e-6)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-1, 1)
        expected = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), norm.weight, norm.bias, 1e-6)
        assert (norm(x) - expected.permute(0, 3, 1, 2)).abs().max() < 1e-6 * float(expected.abs().max())


def test_a_large_mean_does_not_cancel_the_variance() -> None:
    """Mean 100, spread 0.01: float32 inputs carry ~1e-3 relative error themselves (so does F.layer_norm); a
    one-pass mean of squares would be off by the whole signal."""
    x = _inputs()[1]
    x64 = x.double()
    truth = (x64 - x64.mean(1, keepdim=True)) / torch.sqrt(x64.var(1, keepdim=True, unbiased=False) + 1e-6)
    with torch.no_grad():
        assert (ChannelLayerNorm(x.shape[1], eps=1e-6)(x).double() - truth).abs().max() < 1e-2


@pytest.mark.parametrize("x", _inputs(), ids=["unit", "large_mean"])
def test_bias_free_divides_the_uncentred_input_by_the_spread(x: torch.Tensor) -> None:
    """Restormer's BiasFree_LayerNorm: ``x / sqrt(var + eps) * weight`` with the biased variance."""
    norm = ChannelLayerNorm(x.shape[1], with_bias=False)
    x64 = x.double()
    expected = x64 / torch.sqrt(x64.var(dim=1, keepdim=True, unbiased=False) + 1e-5)
    with torch.no_grad():
        got = norm(x).double()
    assert ((got - expected).abs() / expected.abs().clamp_min(1.0)).max() < 1e-6


def test_bf16_inputs_are_normalised_in_float32_and_keep_their_dtype() -> None:
    x = _inputs()[0].bfloat16()
    norm = ChannelLayerNorm(x.shape[1])
    out = norm(x)
    assert out.dtype == torch.bfloat16
    assert (out.float() - norm(x.float())).abs().max() < 0.02
