"""Our NAFNet computes the official function and loads official checkpoints (``shared/reference/nafnet``)."""

from __future__ import annotations

import pytest
import torch

from src.models.official import from_official, load_strict
from src.models.official.nafnet import build, convert

TOL = 1e-5


@pytest.fixture(scope="module")
def ref(reference):
    return reference("nafnet")


def test_from_official_returns_the_image_and_our_keys(ref) -> None:
    model = from_official("nafnet", ref.meta["tiny_kwargs"], ref.tensors("weights"))
    assert all(k.startswith("net.") for k in model.state_dict())
    with torch.no_grad():
        assert isinstance(model(ref.tensor("input")), torch.Tensor)


def _max_diff(model: torch.nn.Module, ref, input_name: str, output: str) -> float:
    with torch.no_grad():
        pred = model(ref.tensor(input_name))
    return (pred - ref.tensor(output)).abs().max().item()


def test_nafnet_local_gives_the_main_vector(ref) -> None:
    """NAFNetLocal (256 px crops) equals NAFNet on a 64 px input: the main vector (NAFNet's own is checked by
    test_reference_vectors.py)."""
    model = from_official("nafnet", ref.meta["tiny_kwargs"], ref.tensors("weights"), local=True)
    assert sum(p.numel() for p in model.parameters()) == ref.meta["tiny_param_count"]
    assert _max_diff(model, ref, "input", "output") < TOL


def test_paper_checkpoints_fit(ref) -> None:
    """Every official configuration's keys and shapes load strictly; parameter counts agree (built on meta)."""
    configs = ref.default_keys["configs"]
    assert {c["config"] for c in configs} == {
        "nafnet_sidd_w32",
        "nafnet_sidd_w64",
        "nafnet_gopro_w32",
        "nafnet_gopro_w64",
    }
    for config in configs:
        with torch.device("meta"):
            model = build(config["kwargs"], local="gopro" in config["config"])
            official = {e["key"]: torch.empty(e["shape"]) for e in config["state_dict"]}
        assert sum(p.numel() for p in model.parameters()) == config["params"], config["config"]
        load_strict(model, convert(official), source=config["config"])
    gopro_w32 = next(c for c in configs if c["config"] == "nafnet_gopro_w32")
    assert gopro_w32["params"] == 17_111_907


def test_wrong_key_or_shape_is_named(ref) -> None:
    kwargs, weights = ref.meta["tiny_kwargs"], ref.tensors("weights")
    renamed = dict(weights)
    renamed["encoders.0.0.conv9.weight"] = renamed.pop("encoders.0.0.conv3.weight")
    with pytest.raises(ValueError, match=r"missing keys.*net\.encoders\.0\.blocks\.0\.mix_out\.weight") as err:
        from_official("nafnet", kwargs, renamed)
    assert "unexpected keys (1): encoders.0.0.conv9.weight" in str(err.value)
    with pytest.raises(ValueError, match=r"unexpected keys \(1\): extra_module\.weight"):
        from_official("nafnet", kwargs, {**weights, "extra_module.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"shape mismatches.*net\.ending\.weight"):
        from_official("nafnet", kwargs, {**weights, "ending.weight": torch.zeros(3, 16, 3, 3)})


def test_decoders_are_reindexed_by_level(ref) -> None:
    """Official ``ups.0``/``decoders.0`` are the deepest; ours are indexed by level."""
    converted = convert(ref.tensors("weights"))
    assert converted["net.decoders.3.up.conv.weight"].shape == (256, 128, 1, 1)
    assert converted["net.decoders.0.blocks.0.beta"].shape == (1, 8, 1, 1)


def test_unknown_official_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown official NAFNet arguments: drop_out_rate"):
        build({"width": 8, "drop_out_rate": 0.1})
    with pytest.raises(ValueError, match="pass local=True"):
        build({"width": 8, "train_size": [1, 3, 256, 256]})
    with pytest.raises(ValueError, match="fast_imp"):
        build({"width": 8, "fast_imp": True}, local=True)


def test_local_build_reads_the_train_size() -> None:
    model = build({"width": 8, "enc_blk_nums": [1], "dec_blk_nums": [1], "train_size": [1, 3, 128, 64]}, local=True)
    assert model.net.local_pool_train_size == (128, 64)
    assert model.net.encoders[0].blocks[0].sca.local_kernel == (192, 96)


def test_colliding_keys_are_an_error() -> None:
    with pytest.raises(ValueError, match="both map to 'net.encoders.0.down.weight'"):
        convert({"downs.0.weight": torch.zeros(1), "net.encoders.0.down.weight": torch.zeros(1)})
