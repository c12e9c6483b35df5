"""Our Restormer computes the official function and loads official checkpoints (``shared/reference``)."""

from __future__ import annotations

import pytest
import torch

from src.models.official import from_official
from src.models.official.restormer import build, convert


@pytest.fixture(scope="module")
def ref(reference):
    return reference("restormer")


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
