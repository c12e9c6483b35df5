"""Our SwinIR computes the official function and loads official checkpoints (``shared/reference/swinir``)."""

from __future__ import annotations

import pytest
import torch

from src.models.official import from_official
from src.models.official.swinir import build, convert


@pytest.fixture(scope="module")
def ref(reference):
    return reference("swinir")


def test_wrong_key_or_shape_is_named(ref) -> None:
    kwargs, weights = ref.meta["tiny_kwargs"], ref.tensors("weights")
    renamed = dict(weights)
    renamed["layers.0.residual_group.blocks.0.attn.qkv2.weight"] = renamed.pop(
        "layers.0.residual_group.blocks.0.attn.qkv.weight"
    )
    with pytest.raises(ValueError, match=r"missing keys.*net\.groups\.0\.blocks\.0\.attn\.qkv\.weight") as err:
        from_official("swinir", kwargs, renamed)
    assert "net.groups.0.blocks.0.attn.qkv2.weight" in str(err.value)
    with pytest.raises(ValueError, match=r"unexpected keys \(1\): absolute_pos_embed"):
        from_official("swinir", kwargs, {**weights, "absolute_pos_embed": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"shape mismatches.*net\.conv_last\.weight"):
        from_official("swinir", kwargs, {**weights, "conv_last.weight": torch.zeros(1, 8, 3, 3)})
    without_mask = {k: v for k, v in weights.items() if not k.endswith("blocks.1.attn_mask")}
    with pytest.raises(ValueError, match=r"missing keys.*attn_mask"):
        from_official("swinir", kwargs, without_mask)


def test_key_mapping() -> None:
    converted = convert({
        "patch_embed.norm.weight": torch.zeros(1),
        "layers.3.residual_group.blocks.5.attn_mask": torch.zeros(1),
        "layers.3.conv.bias": torch.zeros(1),
        "conv_after_body.weight": torch.zeros(1),
    })
    assert sorted(converted) == [
        "net.conv_after_body.weight", "net.embed_norm.weight", "net.groups.3.blocks.5.attn_mask",
        "net.groups.3.conv.bias",
    ]


def test_unsupported_or_unknown_official_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="upscale=2 is not implemented"):
        build({"upscale": 2, "upsampler": "pixelshuffle"})
    with pytest.raises(ValueError, match="upsampler='pixelshuffledirect' is not implemented"):
        build({"upscale": 1, "upsampler": "pixelshuffledirect"})
    with pytest.raises(ValueError, match="unknown official SwinIR arguments: window"):
        build({"window": 8})
    model = build({"upscale": 1, "upsampler": None, "in_chans": 1, "embed_dim": 8, "depths": [1], "num_heads": [2],
                   "img_size": 16, "window_size": 4, "use_checkpoint": True})
    assert model.net.in_channels == 1 and model.net.groups[0].grad_checkpoint
