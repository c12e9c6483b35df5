"""The model summary's FLOPs are counted, at the stated input size, not printed as zeros."""

from __future__ import annotations

from lightning.pytorch.utilities.model_summary import ModelSummary

from src.callbacks.model_summary import ModelSummaryWithFlops
from src.run.assemble import build_model
from src.summary import summarise


def test_flops_are_those_of_one_forward_at_the_input_size(tiny_cfg):
    cfg = tiny_cfg()
    model = build_model(cfg)
    assert ModelSummary(model).total_flops == 0  # Lightning's summary alone
    callback = ModelSummaryWithFlops(input_size=64)
    callback._max_depth = 0  # set the example input, print nothing
    callback.on_fit_start(None, model)
    assert tuple(model.example_input_array.shape) == (1, 3, 64, 64)
    assert ModelSummary(model).total_flops == summarise(cfg, (64, 64))["flops"] > 0
