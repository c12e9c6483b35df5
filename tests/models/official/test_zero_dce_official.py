"""Our Zero-DCE reproduces the official network with the released weights on real low-light images."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from src.models.backbones.zero_dce import apply_curves
from src.models.official import from_official
from src.models.official.zero_dce import build, convert
from src.utils.weights import load_state_dict_file

TOL = 1e-5


@pytest.fixture(scope="module")
def ref(reference):
    return reference("zero_dce")


@pytest.fixture(scope="module")
def released(shared_dir: Path) -> dict[str, torch.Tensor]:
    """``Epoch99.pth`` as released: CUDA tensors, read onto the CPU by the safe loader."""
    path = shared_dir / "data" / "weights" / "zero_dce_epoch99.pth"
    if not path.is_file():
        pytest.skip(f"released Zero-DCE weights absent: {path}")
    return load_state_dict_file(path)


@pytest.fixture(scope="module", autouse=True)
def flush_denormals():
    """The released weights hold ~19k denormal floats, which make CPU convolutions ~50x slower; flushing them
    in the arithmetic changes results by < 1e-30."""
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)


@pytest.fixture(scope="module")
def model(released) -> torch.nn.Module:
    return from_official("zero_dce", {}, released)


@pytest.mark.parametrize("image", ["1", "22", "780"])
def test_released_weights_on_real_images(ref, model, image: str) -> None:
    """Both official image outputs (after 4 and after 8 curve steps) and, where stored, the curve maps.

    The outputs are derived from the curve maps here; ``test_official_forward_call`` checks the forward itself.
    """
    assert sum(p.numel() for p in model.parameters()) == ref.meta["param_count"]
    outputs = ref.tensors("output")
    x = ref.tensor("input", f"input_{image}")
    with torch.no_grad():
        curves = model.net.curves(x)
    assert (apply_curves(x, curves) - outputs[f"enhanced_{image}"]).abs().max().item() < TOL
    assert (apply_curves(x, curves[:, :12]) - outputs[f"enhanced_1_{image}"]).abs().max().item() < TOL
    if f"curves_{image}" in outputs:
        assert (curves - outputs[f"curves_{image}"]).abs().max().item() < TOL


def test_official_forward_call(ref, model) -> None:
    """``from_official(...)(x)`` returns the enhanced image (the official second output) as a plain tensor."""
    with torch.no_grad():
        enhanced = model(ref.tensor("input", "input_780"))
    assert isinstance(enhanced, torch.Tensor)
    assert (enhanced - ref.tensor("output", "enhanced_780")).abs().max().item() < TOL


def test_wrong_key_or_shape_is_named(released) -> None:
    renamed = dict(released)
    renamed["e_conv8.weight"] = renamed.pop("e_conv7.weight")
    with pytest.raises(ValueError, match=r"missing keys \(1\): net\.to_curves\.weight") as err:
        from_official("zero_dce", {}, renamed)
    assert "unexpected keys (1): e_conv8.weight" in str(err.value)
    with pytest.raises(ValueError, match=r"shape mismatches.*net\.dec3\.weight"):
        from_official("zero_dce", {}, {**released, "e_conv5.weight": torch.zeros(32, 32, 3, 3)})


def test_official_class_takes_no_arguments() -> None:
    with pytest.raises(ValueError, match="unknown official Zero-DCE arguments: number_f"):
        build({"number_f": 16})


def test_colliding_keys_are_an_error() -> None:
    with pytest.raises(ValueError, match="both map to 'net.enc1.bias'"):
        convert({"e_conv1.bias": torch.zeros(1), "net.enc1.bias": torch.zeros(1)})
