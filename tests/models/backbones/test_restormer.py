"""The Restormer backbone at tiny size: shapes at odd sizes, gradients, bf16, residual, head positions."""

from __future__ import annotations

import pytest
import torch

from src.models.backbones.restormer import Restormer

TINY = dict(dim=8, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1, heads=(1, 2, 2, 4))


@pytest.fixture(scope="module")
def tiny() -> Restormer:
    torch.manual_seed(0)
    return Restormer(**TINY)


def test_global_residual_returns_input_when_output_conv_is_zero() -> None:
    model = Restormer(**TINY)
    torch.nn.init.zeros_(model.output.weight)
    lq = torch.rand(1, 3, 19, 23)
    with torch.no_grad():
        pred, _ = model(lq)
    assert torch.equal(pred, lq)


@pytest.mark.parametrize(
    ("num_blocks", "heads"), [((1, 1), (1, 2)), ((1, 1, 1), (1, 1, 2)), ((1,) * 5, (1,) * 5)]
)
def test_any_number_of_levels(num_blocks: tuple[int, ...], heads: tuple[int, ...]) -> None:
    model = Restormer(dim=4, num_blocks=num_blocks, num_refinement_blocks=1, heads=heads)
    levels = len(heads)
    assert model.multiple == 2 ** (levels - 1)
    assert [f.name for f in model.feature_info] == [f"dec{i}" for i in range(levels - 1, 0, -1)]
    assert [f.channels for f in model.feature_info] == [4 * 2**i for i in range(levels - 1, 0, -1)]
    with torch.no_grad():
        pred, _ = model(torch.rand(1, 3, 13, 11))
    assert pred.shape == (1, 3, 13, 11)


def test_dual_pixel_task_maps_six_channels_to_three_without_residual() -> None:
    model = Restormer(in_channels=6, global_residual=False, dual_pixel_task=True, **TINY)
    assert model.skip is not None
    with torch.no_grad():
        pred, _ = model(torch.rand(1, 6, 16, 16))
    assert pred.shape == (1, 3, 16, 16)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(num_blocks=(1, 1, 1), heads=(1, 2, 2, 4)), "one entry per level"),
        (dict(num_blocks=(1,), heads=(1,)), "one entry per level"),
        (dict(layernorm_type="RMS"), "layernorm_type"),
        (dict(in_channels=6), "global_residual"),
    ],
)
def test_bad_configurations_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Restormer(**{**TINY, **kwargs})


def test_default_is_the_paper_configuration(reference) -> None:
    """Our defaults are the paper's (motion deblurring, deraining, Gaussian denoising) network."""
    paper = next(c for c in reference("restormer").default_keys["configs"] if c["config"] == "restormer")
    assert sum(p.numel() for p in Restormer().parameters()) == paper["params"]


def test_zero_init_output_starts_as_the_identity_and_still_learns() -> None:
    torch.manual_seed(0)
    net = Restormer(**TINY, zero_init_output=True)
    x = torch.rand(2, 3, 19, 23)
    out, _ = net(x)
    assert torch.equal(out, x)
    target = torch.rand_like(x)
    (out - target).abs().mean().backward()
    assert net.output.weight.grad is not None and net.output.weight.grad.abs().sum() > 0
    torch.manual_seed(0)
    default_out, _ = Restormer(**TINY)(x)
    assert not torch.equal(default_out, x)  # the official initialisation is not the identity


def test_output_init_scale_scales_only_the_initial_residual() -> None:
    x = torch.rand(1, 3, 16, 16)
    torch.manual_seed(0)
    default = Restormer(**TINY)
    torch.manual_seed(0)
    scaled = Restormer(**TINY, output_init_scale=0.1)
    assert torch.allclose(scaled.output.weight, 0.1 * default.output.weight)
    scaled_params = dict(scaled.named_parameters())
    assert all(torch.equal(p, scaled_params[n]) for n, p in default.named_parameters() if not n.startswith("output."))
    with torch.no_grad():
        assert torch.allclose(scaled(x)[0] - x, 0.1 * (default(x)[0] - x), atol=1e-6)
    with pytest.raises(ValueError, match="output_init_scale"):
        Restormer(**TINY, output_init_scale=-1.0)
