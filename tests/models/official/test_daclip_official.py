"""DA-CLIP's noise network and IR-SDE against the official vectors (``../shared/reference/daclip_irsde``): the
U-Net at two sizes and with perturbed constants, the schedule, and one posterior step (all within 1e-5)."""

from __future__ import annotations

import pytest
import torch

from src.models.layers.irsde import IRSDE
from src.models.official import daclip_irsde, load_strict


@pytest.fixture
def ref(reference):
    return reference("daclip_irsde")


def noise(model, inputs):
    with torch.no_grad():
        return model.net.unet(inputs["xt"], inputs["input"], inputs["time"], inputs["degra_context"],
                              inputs["image_context"])


def test_the_noise_network_at_two_sizes_and_perturbed(ref) -> None:
    model = daclip_irsde.build(ref.meta["tiny_kwargs"]).eval()
    weights = ref.tensors("weights")
    load_strict(model, daclip_irsde.convert(weights))
    assert sum(p.numel() for p in model.parameters()) == ref.meta["tiny_param_count"]
    for inputs, output in (("input", "output"), ("input_odd_size", "output_odd_size")):
        assert (noise(model, ref.tensors(inputs)) - ref.tensor(output, "output")).abs().max() < 1e-5, inputs
    load_strict(model, daclip_irsde.convert({**weights, **ref.tensors("perturbed_overrides")}))
    assert (noise(model, ref.tensors("input")) - ref.tensor("perturbed_output", "output")).abs().max() < 1e-5


def test_the_schedule_and_one_posterior_step(ref) -> None:
    sde = IRSDE(max_sigma=50, steps=100, schedule="cosine", eps=0.005)
    for name, value in ref.tensors("sde_schedule").items():
        assert torch.allclose(getattr(sde, name), value, atol=1e-7, rtol=0), name
    step, inputs = ref.tensors("sde_step_io"), ref.tensors("input")
    xt, mu, eps = inputs["xt"], inputs["input"], step["noise_pred"]
    x0 = sde.x0_from_noise(xt, eps, mu, 50)
    assert torch.allclose(x0, step["x0_from_noise"], atol=1e-5)
    assert torch.allclose(sde.optimum_step(xt, x0, mu, 50), step["posterior_mean"], atol=1e-5)
    assert torch.allclose(sde.optimum_std(50), step["posterior_std"], atol=1e-7)
    assert torch.allclose(sde.score(eps, 50), step["score"], atol=1e-5)
