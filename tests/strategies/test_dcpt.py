"""DCPT: the classifier equals the official one on the reference vectors, the taps read the official hooks'
features, and the pre-training objective trains network and classifier together."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from src.models.official import from_official, load_strict
from src.strategies.base import FeatureTap
from src.strategies.dcpt import DegradationClassifier, choose_positions, focal_loss
from src.utils.errors import ConfigError

TOL = 1e-5


@pytest.fixture(scope="module")
def dcpt(shared_dir):
    folder = shared_dir / "reference" / "dcpt"
    if not folder.is_dir():
        pytest.skip(f"../shared/reference absent: no DCPT vectors at {folder}")
    spec = importlib.util.spec_from_file_location("dcpt_materialise", folder / "materialise.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from safetensors.torch import load_file

    weights = module.build()
    parts = {prefix: {k.removeprefix(f"{prefix}."): v for k, v in weights.items() if k.startswith(f"{prefix}.")}
             for prefix in ("net_g", "net_dc", "net_dc_noimg")}
    return parts, load_file(folder / "input.safetensors"), load_file(folder / "output.safetensors"), folder


def _classifier(state: dict, with_image: bool) -> DegradationClassifier:
    classifier = DegradationClassifier([96, 192], num_classes=3, blocks=1, with_image=with_image).eval()
    load_strict(classifier, state, source="official DCPT classifier")
    return classifier


def test_features_and_both_classifiers_equal_the_official(dcpt) -> None:
    parts, inputs, outputs, folder = dcpt
    import json

    kwargs = json.loads((folder / "meta.json").read_text())["tiny_kwargs"]["net_g"]
    kwargs = {k: v for k, v in kwargs.items() if k != "window_size"}  # accepted officially, never read
    model = from_official("promptir", kwargs, parts["net_g"], official_unused_modules=False)
    x = inputs["input"]
    tap = FeatureTap(model.head, ["dec1", "dec2"])
    with torch.no_grad():
        out, _ = model.net(x, head=tap)
    assert (out - outputs["output"]).abs().max() < TOL
    # head positions dec1 / dec2 are the official hooks decoder_level2.0 / decoder_level3.0 (before the prompts)
    assert (tap.features["dec1"] - outputs["feature_0"]).abs().max() < TOL
    assert (tap.features["dec2"] - outputs["feature_1"]).abs().max() < TOL
    features = [tap.features["dec1"], tap.features["dec2"]]
    with torch.no_grad():
        logits = _classifier(parts["net_dc"], with_image=True)(x, features)
        logits_noimg = _classifier(parts["net_dc_noimg"], with_image=False)(x, features)
    assert (logits - outputs["logits"]).abs().max() < TOL
    assert (logits_noimg - outputs["logits_noimg"]).abs().max() < TOL


def test_focal_loss_is_cross_entropy_at_gamma_zero_and_smaller_above() -> None:
    logits, target = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, 4, 0])
    ce = torch.nn.functional.cross_entropy(logits, target)
    assert torch.allclose(focal_loss(logits, target, 0.0), ce)
    assert focal_loss(logits, target, 2.0) < ce


def test_positions_are_checked_and_ordered_finest_first() -> None:
    from src.models.backbones.base import FeatureInfo

    info = [FeatureInfo("dec3", 64, 8), FeatureInfo("dec2", 32, 4), FeatureInfo("dec1", 16, 2)]
    assert [i.name for i in choose_positions(info, None)] == ["dec1", "dec2"]
    assert [i.name for i in choose_positions(info, ["dec3", "dec1"])] == ["dec1", "dec3"]
    with pytest.raises(ConfigError, match="dec9"):
        choose_positions(info, ["dec9"])
    with pytest.raises(ConfigError, match="publishes none"):
        choose_positions([], None)


def test_the_classifier_resizes_between_positions_that_do_not_halve() -> None:
    classifier = DegradationClassifier([8, 16], num_classes=4, blocks=1)
    logits = classifier(torch.rand(2, 3, 32, 32), [torch.rand(2, 8, 16, 16), torch.rand(2, 16, 4, 4)])
    assert logits.shape == (2, 4)
