"""Every head on the tiny configuration of every backbone that publishes head positions.

Backbones and heads are discovered from ``conf/model/backbone/*_tiny.yaml`` and ``conf/model/head/*.yaml``,
so a new one joins this matrix without editing the test.
"""

from __future__ import annotations

import pytest
import torch

from src.run.assemble import build_model
from tests.conftest import CONF_DIR, compose

TINY_BACKBONES = sorted(p.stem for p in (CONF_DIR / "model" / "backbone").glob("*_tiny.yaml"))
HEADS = sorted(p.stem for p in (CONF_DIR / "model" / "head").glob("*.yaml") if p.stem != "none")


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("backbone", TINY_BACKBONES)
def test_head_fits_backbone(backbone, head, tmp_path):
    torch.manual_seed(0)
    cfg = compose("train", ["model=restormer_tiny", f"model/backbone={backbone}", f"model/head={head}"], tmp_path)
    model = build_model(cfg)
    if not model.net.feature_info:
        pytest.skip(f"{backbone} publishes no head positions")
    model.train()
    x = torch.rand(2, 3, 37, 45)
    pred, aux = model.net(x, head=model.head)
    assert pred.shape == x.shape and torch.isfinite(pred).all()
    loss = (pred - x).abs().mean() + sum(aux.values())
    loss.backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    unreached = [n for n, p in trainable.items() if p.grad is None]
    if head == "experts":  # top-1 routing: only the experts chosen for this batch are reached
        unreached = [n for n in unreached if ".experts." not in n]
    assert not unreached, f"parameters without a gradient: {unreached[:10]}"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(model.net(x, head=model.head)[0].float()).all()
