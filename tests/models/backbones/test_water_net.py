"""Water-Net: the paper's layer table, its gated fusion, its input check and the port's weight names."""

from __future__ import annotations

import pytest
import torch

from src.models.backbones.water_net import CMG_KERNELS, REFINER_KERNELS, WaterNet


def test_the_parameter_count_is_the_layer_tables() -> None:
    cmg = [12, 128, 128, 128, 64, 64, 64, 64, 3]
    refiner = [6, 32, 32, 3]
    count = sum((k * k * cmg[i] + 1) * cmg[i + 1] for i, k in enumerate(CMG_KERNELS))
    count += 3 * sum((k * k * refiner[i] + 1) * refiner[i + 1] for i, k in enumerate(REFINER_KERNELS))
    assert count == 1_090_668 == sum(p.numel() for p in WaterNet().parameters())


def test_the_output_is_the_refined_inputs_weighted_by_their_maps() -> None:
    torch.manual_seed(0)
    net = WaterNet(confidence_width=8, refiner_width=4).eval()
    x = torch.rand(2, 12, 17, 21)
    with torch.no_grad():
        out, aux = net(x)
        maps = net.cmg(x)
        image = x[:, :3]
        expected = sum(refiner(image, x[:, 3 * (i + 1) : 3 * (i + 2)]) * maps[:, i : i + 1]
                       for i, refiner in enumerate((net.wb_refiner, net.ce_refiner, net.gc_refiner)))
    assert out.shape == (2, 3, 17, 21) and aux == {} and torch.allclose(out, expected)
    assert float(maps.min()) > 0 and float(maps.max()) < 1  # sigmoid maps, not normalised to sum to 1
    with pytest.raises(ValueError, match="12 channels"):
        net(torch.rand(1, 3, 8, 8))


def test_the_weight_names_are_the_pytorch_ports() -> None:
    names = set(WaterNet().state_dict())
    assert {f"cmg.conv{i}.weight" for i in range(1, 9)} <= names
    assert {f"{part}_refiner.conv{i}.bias" for part in ("wb", "ce", "gc") for i in range(1, 4)} <= names
    assert len(names) == 2 * (8 + 9)
