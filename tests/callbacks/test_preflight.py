"""Preflight: the estimate is printed, and a run that cannot fit stops before its first step with overrides that fit."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch

from src.callbacks.preflight import Preflight, RunTooLargeError
from src.train import train
from src.training.footprint import GIB, Footprint


def _estimate(activation_gib: float, fixed_gib: float = 0.0) -> Footprint:
    return Footprint(fixed_bytes=fixed_gib * GIB, activation_bytes=activation_gib * GIB, optimizer_bytes=0.0,
                     held_bytes=0.0, seconds_per_step=0.5)


def test_a_run_over_the_limit_is_refused_with_the_batch_and_patch_that_fit() -> None:
    check = Preflight(batch_size=4, patch_size=128, memory_limit_gib=2.5, margin=1.0)
    trainer = SimpleNamespace(estimated_stepping_batches=100)
    with pytest.raises(RunTooLargeError) as err:
        check._judge(trainer, _estimate(4.0), torch.device("cpu"), None)
    message = str(err.value)
    # 1 GiB a sample: two fit in 2.5 GiB; at batch 4, 2.5/4 of the pixels: a 101-pixel side, 96 on the grid of 16
    assert "data.batch_size=2" in message and "data.patch_size=96 (batch 4)" in message
    assert "needs about 4.0 GiB more" in message and "refuse=false" in message
    assert check.report["fits"] is False


def test_a_run_that_fits_prints_its_estimate_and_duration(caplog: pytest.LogCaptureFixture) -> None:
    check = Preflight(batch_size=4, patch_size=128, memory_limit_gib=8)  # 4 GiB x 1.15 fits
    with caplog.at_level(logging.INFO, logger="src.callbacks.preflight"):
        check._judge(SimpleNamespace(estimated_stepping_batches=7200), _estimate(4.0), torch.device("cpu"), None)
    assert check.report["fits"] is True
    assert "7200 training steps take roughly 1:00:00" in caplog.text


def test_refuse_false_warns_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    check = Preflight(batch_size=4, patch_size=128, memory_limit_gib=1, refuse=False)
    check._judge(SimpleNamespace(estimated_stepping_batches=1), _estimate(4.0), torch.device("cpu"), None)
    assert "does not fit" in caplog.text


def test_training_stops_before_its_first_step_under_a_tiny_limit(tiny_cfg, tmp_path) -> None:
    cfg = tiny_cfg("logger=none", "callbacks.preflight.memory_limit_gib=0.01")
    with pytest.raises(RunTooLargeError, match="This run does not fit"):
        train(cfg)
    assert not list(tmp_path.rglob("*.ckpt"))
