"""Our MIRNet computes the official function (main, odd size, perturbed) with its two weight-sharing quirks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from src.models.backbones.mirnet import DAU
from src.models.official.mirnet import build
from src.training.pretrained import load_pretrained

TOL = 1e-5


@pytest.fixture(scope="module")
def ref(reference):
    return reference("mirnet")


def _diff(model, ref, inputs: str, outputs: str) -> float:
    with torch.no_grad():
        return (model(ref.tensor(inputs, "input")) - ref.tensor(outputs, "output")).abs().max().item()


def test_a_scales_dau_serves_every_column_and_one_prelu_every_dau(ref) -> None:
    model = build(ref.meta["tiny_kwargs"])
    for msrb in model.net.groups[0].msrbs:
        assert all(column is scale[0] for scale in msrb.blocks for column in scale)
    daus = [m for m in model.modules() if isinstance(m, DAU)]
    assert len({id(d.act) for d in daus}) == 1
    official = {e: None for e in ref.tensors("weights")}
    assert len(official) == len(model.state_dict())  # every alias is a key on both sides


def test_a_released_file_loads_from_its_data_parallel_layout(ref, tmp_path: Path) -> None:
    weights = {f"module.{k}": v for k, v in ref.tensors("weights").items()}
    torch.save({"state_dict": weights, "epoch": 60}, tmp_path / "model_denoising.pth")
    model = build(ref.meta["tiny_kwargs"])
    assert load_pretrained(model.net, None, tmp_path / "model_denoising.pth", official="mirnet") == "official mirnet"
    assert _diff(model.eval(), ref, "input", "output") < TOL
