"""RAM: masks as the official generator draws them, the Mask Attribute Conductance of the reference network equal
to the official ranking, and fine-tuning that trains only the selected layers."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from src.analysis.mac import conductance, parameter_layers, rank, soft_mask
from src.models.official import converter_module, from_official
from src.strategies.ram import pixel_mask, read_ranking
from src.utils.errors import ConfigError


@pytest.fixture(scope="module")
def ram(shared_dir):
    folder = shared_dir / "reference" / "ram_promptir"
    if not folder.is_dir():
        pytest.skip(f"../shared/reference absent: no RAM vectors at {folder}")
    return folder


def test_masks_equal_the_official_generator(ram) -> None:
    masks = load_file(ram / "mim_masks.safetensors")
    for side in (64, 128):
        ours = pixel_mask(side, side, 0.5, 1, np.random.RandomState(0))
        assert np.array_equal(ours, masks[f"mask_train_{side}"].numpy()), side
    assert np.array_equal(load_file(ram / "input.safetensors")["mask"][0].numpy(), masks["mask_train_64"].numpy())


def test_masked_input_gives_the_official_masked_output(ram) -> None:
    """RAM's forward with a mask is the network on ``x * (1 - m)`` (the official token is zeros)."""
    from src.strategies.ram import RamPretrain

    meta = json.loads((ram / "meta.json").read_text())
    model = from_official("ram_promptir", meta["tiny_kwargs"], _weights(ram))
    inputs = load_file(ram / "input.safetensors")
    strategy = RamPretrain(token="zeros")
    with torch.no_grad():
        out = model(strategy.masked(inputs["input"], inputs["mask"][:, None]))
    assert (out - load_file(ram / "output.safetensors")["output_masked"]).abs().max() < 1e-5


def _weights(folder):
    spec = importlib.util.spec_from_file_location("ram_materialise", folder / "materialise.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build()


def test_conductance_and_ranking_equal_the_official(ram) -> None:
    """The reference's 121 layers (10 steps, one image, its pixel order): each official layer's conductance equals
    ours at the layer its parameters map to, and the ranking's head is the same."""
    meta = json.loads((ram / "meta.json").read_text())
    weights = _weights(ram)
    model = from_official("ram_promptir", meta["tiny_kwargs"], weights)
    layers = parameter_layers({"net": model.net, "head": model.head})
    reference = json.loads((ram / "mac_ranking.json").read_text())
    order = load_file(ram / "mac_conductance.safetensors")["order_array"].numpy()
    image = load_file(ram / "input.safetensors")["input"]
    values = conductance(lambda x: model.net(x, head=model.head)[0], layers, image, order, steps=10)
    ours = dict(zip((name for name, _ in layers), values))
    assert len(layers) == len(reference["layers_in_hook_order"]) == 121
    convert = converter_module("ram_promptir").convert
    names = {}
    for official, expected in zip(reference["layers_in_hook_order"], reference["conductance_in_hook_order"]):
        key = next(k for k in weights if k.startswith(f"{official}.") and "." not in k[len(official) + 1:])
        names[official] = next(iter(convert({key: weights[key]}))).rpartition(".")[0]
        assert ours[names[official]] == pytest.approx(expected, rel=1e-4), official
    ranked = [r["layer"] for r in rank([n for n, _ in layers], values)]
    assert ranked[:10] == [names[r["layer"]] for r in reference["ranked"][:10]]


def test_soft_mask_reveals_in_order() -> None:
    order = np.random.RandomState(0).permutation(100)
    mask = soft_mask(order, 0.5, 10000.0)
    assert (mask > 0).sum() == 50 and mask[order[0]] == pytest.approx(1.0) and mask[order[60]] == 0.0


def test_a_ranking_file_is_read_or_refused(tmp_path) -> None:
    (tmp_path / "r.json").write_text(json.dumps({"ranked": [{"layer": "net.a"}, {"layer": "net.b"}]}))
    assert read_ranking(tmp_path / "r.json") == ["net.a", "net.b"]
    (tmp_path / "r.txt").write_text("net.b\nnet.a\n")
    assert read_ranking(tmp_path / "r.txt") == ["net.b", "net.a"]
    with pytest.raises(ConfigError, match="no such file"):
        read_ranking(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="ranked"):
        read_ranking(tmp_path / "bad.json")
