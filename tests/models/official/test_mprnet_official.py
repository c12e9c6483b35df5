"""Our MPRNet computes the official function (every stage), shares its one PReLU, and fits the three models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from src.models.official import from_official
from src.models.official.mprnet import build
from src.training.pretrained import load_pretrained

TOL = 1e-5


@pytest.fixture(scope="module")
def ref(reference):
    return reference("mprnet")


def _diff(model, ref, inputs: str, outputs: str) -> float:
    with torch.no_grad():
        return (model(ref.tensor(inputs, "input")) - ref.tensor(outputs, "output")).abs().max().item()


def test_one_prelu_is_shared_by_every_block(ref) -> None:
    model = from_official("mprnet", ref.meta["tiny_kwargs"], ref.tensors("weights"))
    prelus = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.PReLU)}
    assert len(prelus) == 1
    aliases = ref.meta["shared_state_dict_entries"]["aliases"]
    assert len([k for k in model.state_dict() if k.endswith("act.weight")]) == len(aliases) + 1


def test_a_released_file_loads_from_its_data_parallel_layout(ref, tmp_path: Path) -> None:
    weights = {f"module.{k}": v for k, v in ref.tensors("weights").items()}
    torch.save({"state_dict": weights, "epoch": 3000}, tmp_path / "model_deblurring.pth")
    model = build(ref.meta["tiny_kwargs"])
    assert load_pretrained(model.net, None, tmp_path / "model_deblurring.pth", official="mprnet") == "official mprnet"
    assert _diff(model.eval(), ref, "input", "output") < TOL
