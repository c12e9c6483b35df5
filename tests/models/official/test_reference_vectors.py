"""Every reference folder of ``../shared/reference`` whose network has a converter: the main vector and every
variant (own constructor arguments and weights, perturbed constants, other sizes) through ``from_official``, and
every paper configuration of ``default_keys.json`` built with the official count and loaded strictly.

Driven by the folders and the converters (``src.models.official.available()``): a network added as one module
plus one converter is checked here without a new test file. Networks whose official call takes more than the
image (a text embedding, a pyramid) or returns more than it keep their own test files, named in ``OWN_CALL``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import pytest
import torch

from src.models.official import available, converter_module, from_official, load_strict
from tests.conftest import SHARED_DIR

TOL = 1e-5
#: folders whose official call is not ``y = net(x)`` in [0, 1] units, and the test that covers them
OWN_CALL = {
    "deepdeblur": "test_deepdeblur_official.py (net(x, [x1, x2]) and the pyramid outputs)",
    "airnet": "test_airnet_official.py (a second, degraded view as the contrastive key)",
    "transweather": "test_transweather_official.py (weights rebuilt by materialise.py)",
    "zero_dce": "test_zero_dce_official.py (its folder predates tiny_kwargs: the paper network itself)",
    "led_unet": "test_led_official.py (RepNR's training form per camera and its deploy form)",
    "daclip_irsde": "test_daclip_official.py (the noise network's call net(xt, lq, t, contexts) and the SDE)",
    "constyle_v2": "test_constyle_official.py (a container of two checkpoints: the prompter and the prompted NAFNet)",
    "perceive_ir": "test_perceive_ir_official.py (CLIP's features injected in the release's call order)",
}
#: further inputs of the official call, read from each vector's input file after the image (README: "extra inputs")
EXTRA_INPUTS = {"instructir": ("text_embedding",)}
FOLDERS = sorted(p.name for p in (SHARED_DIR / "reference").glob("*") if p.name in available()) if SHARED_DIR.is_dir() \
    else []


@dataclass(frozen=True)
class Case:
    """One vector: constructor arguments, the weights (with overrides) and the input and output files."""

    name: str
    kwargs: dict
    weights: str
    overrides: str | None
    input: str
    output: str


def cases(meta: dict) -> list[Case]:
    main = Case("main", meta["tiny_kwargs"], "weights", None, "input", "output")
    result = [main]
    for variant in meta.get("variants", []):
        weights, _, rest = variant["weights"].partition(" ")
        overrides = "perturbed_overrides" if "perturbed_overrides" in rest else None
        result.append(Case(variant["name"], variant.get("kwargs", meta["tiny_kwargs"]), weights.removesuffix(
            ".safetensors"), overrides, variant["input"].removesuffix(".safetensors"),
            variant["output"].removesuffix(".safetensors")))
    return result


def folder_weights(ref, name: str) -> dict[str, torch.Tensor]:
    """The folder's weights file, or, where it ships a recipe instead (README: "weights from recipes"), the state
    dict its ``materialise.py`` rebuilds."""
    if name == "weights" and not (ref.dir / "weights.safetensors").is_file() and (ref.dir / "materialise.py").is_file():
        spec = importlib.util.spec_from_file_location(f"{ref.dir.name}_materialise", ref.dir / "materialise.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.build()
    return ref.tensors(name)


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_vector_of_the_folder(folder: str, reference) -> None:
    if folder in OWN_CALL:
        pytest.skip(f"{folder}: its own call, checked in {OWN_CALL[folder]}")
    ref = reference(folder)
    for case in cases(ref.meta):
        weights = folder_weights(ref, case.weights)
        if case.overrides:
            overrides = ref.tensors(case.overrides)
            assert set(overrides) <= set(weights), f"{folder}: overrides of keys the weights lack"
            weights = {**weights, **overrides}
        model = from_official(folder, case.kwargs, weights).eval()
        inputs = ref.tensors(case.input)
        with torch.no_grad():
            out = model(inputs["input"], *(inputs[k] for k in EXTRA_INPUTS.get(folder, ())))
        expected = ref.tensor(case.output, "output")
        assert out.shape == expected.shape, f"{folder} {case.name}: shape {tuple(out.shape)}"
        assert (out - expected).abs().max().item() < TOL, f"{folder} {case.name}"
        if case.name == "main":
            assert sum(p.numel() for p in model.parameters()) == ref.meta["tiny_param_count"]
            if "tiny_state_dict_tensors" in ref.meta:  # aliased tensors count under every key, as officially
                assert len(model.state_dict()) == ref.meta["tiny_state_dict_tensors"]


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_paper_configuration_builds_with_the_official_count_and_keys(folder: str, reference) -> None:
    ref = reference(folder)
    if not (ref.dir / "default_keys.json").is_file():
        pytest.skip(f"{folder}: no default_keys.json (its main vector is the paper network)")
    converter = converter_module(folder)
    assert ref.default_keys["configs"], f"{folder}: default_keys.json lists no configuration"
    with torch.device("meta"):  # paper sizes: shapes only
        for config in ref.default_keys["configs"]:
            model = converter.build(config["kwargs"])
            assert sum(p.numel() for p in model.parameters()) == config["params"], config["config"]
            official = {e["key"]: torch.empty(e["shape"]) for e in config["state_dict"]}
            load_strict(model, converter.convert(official), source=config["config"])
