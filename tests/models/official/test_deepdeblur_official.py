"""Our DeepDeblur computes the official MSResNet's function, builds its own pyramid as skimage does, loads its files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.transform import pyramid_gaussian

from src.models.backbones.deepdeblur import gaussian_pyramid
from src.models.official import from_official, load_strict
from src.models.official.deepdeblur import build, convert
from src.training.pretrained import load_pretrained

TOL = 1e-5


@pytest.fixture(scope="module")
def ref(reference):
    return reference("deepdeblur")


def test_main_vector_with_the_given_pyramid_and_each_scale(ref) -> None:
    model = from_official("deepdeblur", ref.meta["tiny_kwargs"], ref.tensors("weights"))
    assert sum(p.numel() for p in model.parameters()) == ref.meta["tiny_param_count"]
    inputs, outputs = ref.tensors("input"), ref.tensors("output")
    with torch.no_grad():
        restored = model.net.restore_pyramid([inputs["input"], inputs["input_scale1"], inputs["input_scale2"]])
    for ours, key in zip(restored, ("output", "output_scale1", "output_scale2")):
        assert (ours - outputs[key]).abs().max() < TOL, key


def test_odd_size_variant(ref) -> None:
    (variant,) = [v for v in ref.meta["variants"] if v["name"] == "odd_size"]
    model = from_official("deepdeblur", ref.meta["tiny_kwargs"], ref.tensors("weights"))
    inputs = ref.tensors(Path(variant["input"]).stem)
    with torch.no_grad():
        ours = model(inputs["input"], [inputs["input_scale1"], inputs["input_scale2"]])
    assert (ours - ref.tensors(Path(variant["output"]).stem)["output"]).abs().max() < TOL


def test_the_network_builds_skimages_pyramid(ref) -> None:
    """``net(x)``: the pyramid made inside equals skimage's ``pyramid_gaussian`` (the official data code's)."""
    x = ref.tensors("input")["input"]
    ours = gaussian_pyramid(x, 3)
    theirs = pyramid_gaussian(x[0].permute(1, 2, 0).numpy(), max_layer=2, channel_axis=-1)
    for level, expected in zip(ours, theirs):
        assert np.abs(level[0].permute(1, 2, 0).numpy() - expected).max() < TOL
    model = from_official("deepdeblur", ref.meta["tiny_kwargs"], ref.tensors("weights"))
    with torch.no_grad():
        assert (model(x) - ref.tensors("output")["output"]).abs().max() < 1e-4


def test_paper_checkpoint_fits_and_counts(ref) -> None:
    (config,) = ref.default_keys["configs"]
    model = build(config["kwargs"])
    assert sum(p.numel() for p in model.parameters()) == config["params"] == 11721321
    official = {e["key"]: torch.zeros(e["shape"]) for e in config["state_dict"]}
    load_strict(model, convert(official), source=config["config"])


def test_a_released_file_loads_under_its_G_key(ref, tmp_path: Path) -> None:
    weights = ref.tensors("weights")
    torch.save({"G": dict(weights)}, tmp_path / "model-1.pt")
    model = build(ref.meta["tiny_kwargs"])
    assert load_pretrained(model.net, None, tmp_path / "model-1.pt", official="deepdeblur") == "official deepdeblur"
    with torch.no_grad():
        inputs = ref.tensors("input")
        ours = model.eval()(inputs["input"], [inputs["input_scale1"], inputs["input_scale2"]])
    assert (ours - ref.tensors("output")["output"]).abs().max() < TOL
