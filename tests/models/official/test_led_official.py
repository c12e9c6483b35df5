"""LED's U-Net and RepNR against the official vectors (``../shared/reference/led_unet``): the plain network at two
sizes, the RepNR training form for every camera branch, and its deploy form (weights and output), all exact."""

from __future__ import annotations

import pytest
import torch

from src.models.layers.repnr import RepNRConv2d, deploy, generalize, set_camera, to_repnr
from src.models.official import led_unet, load_strict


@pytest.fixture
def ref(reference):
    return reference("led_unet")


def test_plain_network_at_two_sizes(ref) -> None:
    model = led_unet.build(ref.meta["tiny_kwargs"]).eval()
    load_strict(model, led_unet.convert(ref.tensors("weights")))
    with torch.no_grad():
        for name, output in (("input", "output"), ("input_odd_size", "output_odd_size")):
            got = model(ref.tensors(name)["input"])
            assert torch.allclose(got, ref.tensors(output)["output"], atol=1e-5), name


def test_repnr_every_camera_and_its_deploy_form(ref) -> None:
    model = led_unet.build_repnr(ref.meta["tiny_kwargs"]).eval()
    weights = {**ref.tensors("repnr_weights"), **ref.tensors("repnr_perturbed_overrides")}
    load_strict(model, led_unet.convert(weights))
    x, outputs = ref.tensors("input")["input"], ref.tensors("repnr_output")
    with torch.no_grad():
        for branch in (0, 1, 2, 3, 4, -1):
            set_camera(model.net, branch)
            expected = outputs[f"output_branch_{branch if branch >= 0 else 'last'}"]
            assert torch.allclose(model(x), expected, atol=1e-5), branch
        deploy(model.net)
    assert not any(isinstance(m, RepNRConv2d) for m in model.modules())
    state = model.state_dict()
    for key, value in ref.tensors("repnr_deploy_weights").items():
        assert torch.allclose(state[f"net.{key}"], value, atol=1e-6), key
    with torch.no_grad():
        assert torch.allclose(model(x), ref.tensors("repnr_deploy_output")["output"], atol=1e-5)


def test_a_fresh_repnr_network_is_the_plain_one_and_deploys_to_it() -> None:
    """At initialisation (alignment 1 and 0, auxiliary zero) every camera computes the plain network."""
    torch.manual_seed(0)
    plain = led_unet.build({"inchannels": 4, "outchannels": 4, "channels": 4}).eval()
    repnr = led_unet.build_repnr({"inchannels": 4, "outchannels": 4, "channels": 4}).eval()
    repnr.net.load_state_dict({k: v for k, v in plain.net.state_dict().items()}, strict=False)
    for name, module in repnr.net.named_children():
        if isinstance(module, RepNRConv2d):
            conv = getattr(plain.net, name)
            module.main_weight.data.copy_(conv.weight)
            module.main_bias.data.copy_(conv.bias)
    x = torch.rand(1, 4, 24, 40)
    with torch.no_grad():
        set_camera(repnr.net, 2)
        assert torch.allclose(repnr(x), plain(x), atol=1e-6)
        assert torch.allclose(deploy(repnr.net)(x)[0], plain(x), atol=1e-6)
    with pytest.raises(ValueError, match="zero-padded"):
        to_repnr(torch.nn.Sequential(torch.nn.Conv2d(2, 2, 3, padding_mode="reflect")), 2)


def test_generalize_sets_the_test_branch_to_the_cameras_mean(ref) -> None:
    model = led_unet.build_repnr(ref.meta["tiny_kwargs"])
    load_strict(model, led_unet.convert({**ref.tensors("repnr_weights"), **ref.tensors("repnr_perturbed_overrides")}))
    generalize(model.net)
    conv = model.net.conv3_1
    for params in (conv.align_weights, conv.align_biases):
        assert torch.allclose(params[-1], torch.stack(list(params)[:-1]).mean(dim=0))
        assert not torch.allclose(params[-1], params[0])
