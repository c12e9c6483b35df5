"""Our Restormer computes the official function and loads official checkpoints (``shared/reference``)."""

from __future__ import annotations

import pytest
import torch

from src.models.official import from_official, load_strict
from src.models.official.restormer import build, convert

TOL = 1e-5


@pytest.fixture(scope="module")
def ref(reference):
    return reference("restormer")


def _max_diff(model: torch.nn.Module, ref, output: str) -> float:
    with torch.no_grad():
        pred = model(ref.tensor("input"))
    return (pred - ref.tensor(output)).abs().max().item()


def test_main_vector(ref) -> None:
    model = from_official("restormer", ref.meta["tiny_kwargs"], ref.tensors("weights"))
    assert sum(p.numel() for p in model.parameters()) == ref.meta["tiny_param_count"]
    assert _max_diff(model, ref, "output") < TOL


def test_perturbed_vector(ref) -> None:
    weights = ref.tensors("weights")
    overrides = ref.tensors("perturbed_overrides")
    assert set(overrides) <= set(weights)
    model = from_official("restormer", ref.meta["tiny_kwargs"], {**weights, **overrides})
    assert _max_diff(model, ref, "perturbed_output") < TOL


def test_biasfree_vector(ref) -> None:
    variant = next(v for v in ref.meta["variants"] if v["name"] == "biasfree")
    model = from_official("restormer", variant["kwargs"], ref.tensors("weights_biasfree"))
    assert _max_diff(model, ref, "output_biasfree") < TOL


def test_paper_checkpoints_fit(ref) -> None:
    """Every paper configuration's official keys and shapes load strictly; parameter counts agree."""
    configs = ref.default_keys["configs"]
    assert {c["config"] for c in configs} >= {"restormer", "restormer_realdenoising_biasfree"}
    for config in configs:
        model = build(config["kwargs"])
        assert sum(p.numel() for p in model.parameters()) == config["params"], config["config"]
        official = {e["key"]: torch.zeros(e["shape"]) for e in config["state_dict"]}
        load_strict(model, convert(official), source=config["config"])


def test_wrong_key_or_shape_is_named(ref) -> None:
    kwargs, weights = ref.meta["tiny_kwargs"], ref.tensors("weights")
    renamed = dict(weights)
    renamed["encoder_level1.0.attn.temp"] = renamed.pop("encoder_level1.0.attn.temperature")
    with pytest.raises(ValueError, match=r"missing keys.*encoders\.0\.blocks\.0\.attn\.temperature"):
        from_official("restormer", kwargs, renamed)
    with pytest.raises(ValueError, match=r"unexpected keys \(1\): extra_module\.weight"):
        from_official("restormer", kwargs, {**weights, "extra_module.weight": torch.zeros(1)})
    reshaped = {**weights, "output.weight": torch.zeros(3, 16, 1, 1)}
    with pytest.raises(ValueError, match=r"shape mismatches.*output\.weight"):
        from_official("restormer", kwargs, reshaped)


def test_unknown_official_argument_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown official Restormer arguments: decoder"):
        build({"dim": 8, "decoder": True})


def test_dual_pixel_build_has_no_global_residual() -> None:
    model = build({"inp_channels": 6, "dim": 8, "num_blocks": [1, 1, 1, 1], "dual_pixel_task": True})
    assert not model.net.global_residual and model.net.skip is not None


def test_colliding_keys_are_an_error() -> None:
    """An unrecognised key passed through must not silently overwrite a converted one."""
    with pytest.raises(ValueError, match="both map to 'net.embed.weight'"):
        convert({"patch_embed.proj.weight": torch.zeros(1), "net.embed.weight": torch.zeros(1)})
