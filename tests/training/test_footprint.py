"""The training-step memory estimate: a line through two measured peaks, and probes that change nothing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from src.training.footprint import (
    Probe,
    footprint,
    left_as_found,
    optimizer_state_bytes,
    probe_sides,
    probe_steps,
    step_seconds,
)
from src.utils.memory import cpu_peak_resettable


def test_the_estimate_is_the_line_through_the_probes_scaled_to_the_batch() -> None:
    probes = [Probe(32, 100.0 + 3.0 * 32 * 32, 0.1), Probe(64, 100.0 + 3.0 * 64 * 64, 0.4)]
    estimate = footprint(probes, batch=8, patch=128, optimizer_bytes=50.0, held_bytes=1000.0)
    assert estimate.activation_bytes == pytest.approx(3.0 * 8 * 128 * 128)
    assert estimate.fixed_bytes == pytest.approx(100.0)
    assert estimate.peak_bytes == pytest.approx(1000.0 + 100.0 + 3.0 * 8 * 128 * 128 + 50.0)
    assert estimate.seconds_per_step == pytest.approx(0.4 * 8 * 128 * 128 / (64 * 64))
    launch_bound = [Probe(32, 1.0, 0.03), Probe(64, 2.0, 0.03)]  # a GPU: batch-1 steps of equal time
    assert footprint(launch_bound, 8, 128, 0.0, 0.0).seconds_per_step == pytest.approx(0.03)
    assert step_seconds(Probe(32, 0, 0.5), Probe(64, 0, 0.4), 64 * 64 * 2) == pytest.approx(0.4)  # noise: no less
    assert probe_sides(8, 128) == (32, 64) and probe_sides(48, 24) == (48, 96) and probe_sides(1, 16) == (16, 17)


def test_optimizer_state_counts_adam_moments() -> None:
    params = [nn.Parameter(torch.zeros(10))]
    assert optimizer_state_bytes(torch.optim.AdamW(params), 40.0) == 80.0
    assert optimizer_state_bytes(torch.optim.Adam(params, amsgrad=True), 40.0) == 120.0
    assert optimizer_state_bytes(torch.optim.SGD(params, lr=0.1), 40.0) == 40.0
    assert optimizer_state_bytes(None, 40.0) == 0.0


class _Trainee(nn.Module):
    """A module with batch-norm statistics and dropout: what a probe must leave as it found it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.BatchNorm2d(8)
        self.drop = nn.Dropout(0.5)

    def training_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        return self.drop(self.norm(self.conv(batch["lq"]))).mean() - batch["gt"].mean(), {}


@pytest.mark.skipif(not cpu_peak_resettable(), reason="this kernel does not let a process reset its peak RSS")
def test_probes_grow_with_the_patch_and_leave_the_run_as_found() -> None:
    module = _Trainee().train()
    buffers = {k: v.clone() for k, v in module.state_dict().items()}
    rng = torch.random.get_rng_state()
    with left_as_found(module, torch.device("cpu")):
        probes = probe_steps(module, torch.device("cpu"), (32, 256), None)
    assert probes is not None and probes[1].peak_bytes > probes[0].peak_bytes
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert all(torch.equal(v, module.state_dict()[k]) for k, v in buffers.items())
    assert all(p.grad is None for p in module.parameters())
