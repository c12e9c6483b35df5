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


def test_the_controlled_clip_gives_the_content_and_degradation_embeddings(reference, tmp_path) -> None:
    """DA-CLIP's vision tower with its controller (main and perturbed vectors, exact), read from a checkpoint
    laid out as the release's (duplicate visual alias, text-tower keys left out) into the restorer's encoder."""
    from safetensors.torch import save_file

    from src.models.backbones.daclip_irsde import DaclipIRSDE
    from src.models.layers.clip_vision import (
        ControlledVision,
        clip_preprocess,
        clip_preprocess_release,
        from_daclip_state,
    )

    ref = reference("daclip_controller")
    vision_sizes = ref.meta["tiny_kwargs"]["vision"]
    vision = ControlledVision(**vision_sizes).eval()
    weights = ref.tensors("weights")
    x = ref.tensor("input", "input")
    for overrides, output in ((None, "output"), ("perturbed_overrides", "perturbed_output")):
        state = {**weights, **(ref.tensors(overrides) if overrides else {})}
        load_strict(vision, from_daclip_state(state))
        with torch.no_grad():
            content, degradation = vision(x)
        expected = ref.tensors(output)
        assert (content - expected["output"]).abs().max() < 1e-5, output
        assert (degradation - expected["degra_features"]).abs().max() < 1e-5, output
    # the official count holds clip.logit_scale and logit_scale, two copies of one scalar; ours keeps one
    assert sum(p.numel() for p in vision.parameters()) == ref.meta["tiny_param_count"] - 1
    path = tmp_path / "daclip.safetensors"
    save_file({**weights, "clip.token_embedding.weight": torch.zeros(4, 8)}, str(path))
    net = DaclipIRSDE(width=32, multipliers=(1, 1, 1, 1), encoder="daclip", clip_weights=str(path),
                      clip_vision=vision_sizes)
    load_strict(vision, from_daclip_state(weights))
    image = torch.rand(1, 3, 80, 96)
    with torch.no_grad():
        expected = vision(clip_preprocess_release(image, 64))
    for got, want in zip(net.contexts(image), expected):  # the release's preprocessing by default
        assert torch.allclose(got, want, atol=1e-6)
    fast = DaclipIRSDE(width=32, multipliers=(1, 1, 1, 1), encoder="daclip", clip_weights=str(path),
                       clip_vision=vision_sizes, clip_preprocess="float")
    with torch.no_grad():
        expected = vision(clip_preprocess(image, 64))
    for got, want in zip(fast.contexts(image), expected):
        assert torch.allclose(got, want, atol=1e-6)
    with pytest.raises(FileNotFoundError, match="daclip_ViT-B-32.pt"):
        DaclipIRSDE(width=32, multipliers=(1, 1, 1, 1), encoder="daclip", clip_weights=str(tmp_path / "no.pt"))


def test_the_releases_clip_preprocessing_truncates_to_8_bits_and_the_float_one_stays_close() -> None:
    """DA-CLIP's ``clip_transform`` makes 8-bit values by truncation (0.999 -> 254), then resizes through PIL: a
    flat image keeps its truncated value; a textured one differs from the float path by the 8-bit steps."""
    from src.models.layers.clip_vision import CLIP_MEAN, CLIP_STD, clip_preprocess, clip_preprocess_release

    flat = torch.full((1, 3, 40, 60), 0.999)
    out = clip_preprocess_release(flat, 32)
    assert out.shape == (1, 3, 32, 32)
    for c in range(3):
        assert torch.allclose(out[0, c], torch.tensor((254 / 255 - CLIP_MEAN[c]) / CLIP_STD[c]), atol=1e-6)
    image = torch.rand(2, 3, 48, 80, generator=torch.Generator().manual_seed(0))
    smooth = torch.nn.functional.avg_pool2d(image, 5, 1, 2)
    diff = (clip_preprocess_release(smooth, 32) - clip_preprocess(smooth, 32)).abs()
    assert diff.mean() < 0.03 and diff.max() > 0  # half an 8-bit step is 0.0073 in normalised units
