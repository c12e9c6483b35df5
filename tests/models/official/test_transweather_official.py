"""Our TransWeather computes the official function on weights rebuilt by the reference's ``materialise.py``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from src.models.official import from_official, load_strict
from src.models.official.transweather import build, convert
from src.training.pretrained import load_pretrained

TOL = 1e-5


@pytest.fixture(scope="module")
def ref(reference):
    return reference("transweather")


@pytest.fixture(scope="module")
def weights(ref) -> dict[str, torch.Tensor]:
    """The 152 MB official state dict, rebuilt from its recipe (no weights file ships in the folder)."""
    path = ref.dir / "materialise.py"
    spec = importlib.util.spec_from_file_location("transweather_materialise", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build()


def _diff(model, ref, inputs: str, outputs: str) -> float:
    x = ref.tensor(inputs, "input")
    with torch.no_grad():
        return (model(2 * x - 1) - ref.tensor(outputs, "output")).abs().max().item()


def test_every_vector(ref, weights) -> None:
    model = from_official("transweather", {}, weights)
    assert sum(p.numel() for p in model.parameters()) == ref.meta["default_configs"]["transweather"]["params"]
    assert _diff(model, ref, "input", "output") < TOL
    for size in ("odd_size", "odd_size_wide"):  # the tail's crop-by-one at 1/32 and 1/16
        assert _diff(model, ref, f"input_{size}", f"output_{size}") < TOL, size
    perturbed = from_official("transweather", {}, {**weights, **ref.tensors("perturbed_overrides")})
    assert _diff(perturbed, ref, "input", "perturbed_output") < TOL


def test_the_suite_calls_it_in_unit_range(ref, weights) -> None:
    """The backbone takes x in [0, 1] and returns the official model(2x - 1); sizes off 16 are padded."""
    model = from_official("transweather", {}, weights)
    x = ref.tensor("input", "input")
    with torch.no_grad():
        ours, _ = model.net(x)
        assert (ours - ref.tensor("output", "output")).abs().max() < TOL
        assert model.net(x[..., :50, :45])[0].shape == (1, 3, 50, 45)


def test_keys_and_a_released_file(ref, weights, tmp_path: Path) -> None:
    (config,) = ref.default_keys["configs"]
    official = {e["key"]: torch.zeros(e["shape"]) for e in config["state_dict"]}
    load_strict(build({}), convert(official), source="transweather")
    torch.save({"state_dict": {f"module.{k}": v for k, v in weights.items()}}, tmp_path / "best")
    model = build({})
    assert load_pretrained(model.net, None, tmp_path / "best", official="transweather") == "official transweather"
    assert _diff(model.eval(), ref, "input", "output") < TOL
