"""How much memory one training step of this run needs, and how long the run's steps take, measured small.

A paper-size network on a laptop's CPU is killed by the kernel at its first step with nothing printed. So before
the first real step the network runs two tiny training steps (batch 1, two small square patches; forward, loss,
backward, nothing else changed), and the growth of the peak between them gives the memory per pixel of the
batch: activations scale with batch x height x width, so the real step's peak is the probe's fixed part (weights'
gradients, workspaces) plus that slope times the real batch's pixels, plus the optimiser's state (AdamW keeps two
numbers per parameter, allocated at the first step) and an EMA copy of the weights where one is kept. The times
of the two probe steps, extended along their line to the batch's pixels, give a rough duration (without
validation and loading).

The probes leave the run as they found it: random-number states restored, buffers (batch-norm statistics,
queues) copied back, gradients dropped; a compiled network runs them eagerly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from src.utils.memory import PeakMemory, release_freed_memory

#: smallest probe side; the second probe is twice as wide (both rounded up to the network's multiple)
PROBE_SIDE = 32
GIB = 2**30


@dataclass(frozen=True)
class Probe:
    """One probe step: its square side, its peak growth over the start (bytes) and its duration."""

    side: int
    peak_bytes: float
    seconds: float


@dataclass(frozen=True)
class Footprint:
    """The estimated peak of one training step (bytes) and its parts, and the time per step (seconds)."""

    fixed_bytes: float
    activation_bytes: float
    optimizer_bytes: float
    held_bytes: float
    seconds_per_step: float

    @property
    def peak_bytes(self) -> float:
        return self.held_bytes + self.fixed_bytes + self.activation_bytes + self.optimizer_bytes


@contextmanager
def left_as_found(module: nn.Module, device: torch.device) -> Iterator[None]:
    """Run probes without changing the run: RNG states, buffers and gradients are put back afterwards."""
    buffers = {name: b.detach().clone() for name, b in module.named_buffers()}
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), torch.compiler.set_stance("force_eager"):
            yield
    finally:
        with torch.no_grad():
            for name, b in module.named_buffers():
                if name in buffers:
                    b.copy_(buffers[name])
        module.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        release_freed_memory(collect=False)


def probe_sides(multiple: int, patch: int) -> tuple[int, int]:
    """Two sides for the probes (the real patch itself where it is that small)."""
    m = max(int(multiple), 1)
    first = -(-min(PROBE_SIDE, patch) // m) * m
    second = max(-(-min(2 * PROBE_SIDE, patch) // m) * m, first + m)
    return first, second


def probe_steps(module: nn.Module, device: torch.device, sides: tuple[int, int], dtype: torch.dtype | None,
                channels_last: bool = False, scale: int = 1,
                fields: dict[str, Any] | None = None) -> list[Probe] | None:
    """Batch-1 training steps (forward, loss, backward) at the two sides, measured and timed; ``None`` where
    peaks cannot be measured.

    The small side runs first unmeasured, so one-time costs of the process (thread pools, the autograd engine)
    do not inflate it; the large side's memory is measured at its first step, which like a run's first step
    includes what is chosen per shape: the slope between them errs on the large side, and a run that does not
    fit is never waved through. Its time is taken at a second step: a first step at a new shape pays one-time
    costs (cuDNN's algorithm search took 5-11 s on an H200) that would make a 0.06 s step look like minutes.
    """
    # tensors of a step are freed by reference counting: no garbage collection between the steps (it costs
    # more than the steps of a small network)
    memory = PeakMemory(device.type, collect_garbage=False)
    generator = torch.Generator().manual_seed(0)
    inputs = {}
    net = getattr(module, "net", None)  # the network's own channels: gray DnCNN 1, packed RAW 4
    channels_in, channels_out = getattr(net, "in_channels", 3), getattr(net, "out_channels", 3)
    for side in sides:
        lq = torch.rand(1, channels_in, side, side, generator=generator).to(device)
        gt = torch.rand(1, channels_out, side * scale, side * scale, generator=generator).to(device)  # SR: x larger
        inputs[side] = (lq.contiguous(memory_format=torch.channels_last) if channels_last else lq, gt)
    small, large = sides
    probes: dict[int, Probe] = {}
    timed: dict[int, float] = {}
    for side, measured in ((small, False), (large, True), (large, False), (small, True)):
        module.zero_grad(set_to_none=True)
        memory.reset()
        if memory.since != "reset":
            return None
        start = time.perf_counter()
        lq, gt = inputs[side]
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = module.training_loss({"lq": lq, "gt": gt, **(fields or {})})[0]
        loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        record = memory.read()
        del loss
        if measured:
            probes[side] = Probe(side, (record["peak_mib"] - record["start_mib"]) * 2**20, seconds)
        elif side == large:
            timed[side] = seconds
    large_probe = probes[large]
    return [probes[small], Probe(large, large_probe.peak_bytes, min(large_probe.seconds, timed[large]))]


def optimizer_state_bytes(optimizer: torch.optim.Optimizer | None, parameter_bytes: float) -> float:
    """State the optimiser allocates at its first step: two moments for Adam/AdamW (three with amsgrad), one
    momentum buffer otherwise (a bound for SGD with momentum; none without)."""
    if optimizer is None:
        return 0.0
    if isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW):
        amsgrad = any(group.get("amsgrad") for group in optimizer.param_groups)
        return (3 if amsgrad else 2) * parameter_bytes
    return parameter_bytes


def footprint(probes: list[Probe], batch: int, patch: int, optimizer_bytes: float, held_bytes: float) -> Footprint:
    """Scale the probes to ``batch`` patches of ``patch`` x ``patch``: a line through the two peaks by pixels."""
    small, large = probes[0], probes[-1]
    pixels = lambda p: p.side * p.side  # noqa: E731
    slope = max((large.peak_bytes - small.peak_bytes) / max(pixels(large) - pixels(small), 1), 0.0)
    fixed = max(large.peak_bytes - slope * pixels(large), 0.0)
    real_pixels = batch * patch * patch
    return Footprint(
        fixed_bytes=fixed,
        activation_bytes=slope * real_pixels,
        optimizer_bytes=optimizer_bytes,
        held_bytes=held_bytes,
        seconds_per_step=step_seconds(small, large, real_pixels),
    )


def step_seconds(small: Probe, large: Probe, real_pixels: int) -> float:
    """A line through the two probes' step times, extended to ``real_pixels``, never below the large probe's.

    Proportional scaling suits a CPU, where a step's time grows with its pixels, but not a GPU, where a batch-1
    step is bound by kernel launches: an H200 took as long for 48x48 as for 96x96, and proportional scaling
    printed 2 s for a 0.08 s step. The line's intercept carries the launch-bound part, its slope the rest.
    """
    pixels = lambda p: p.side * p.side  # noqa: E731
    slope = max((large.seconds - small.seconds) / max(pixels(large) - pixels(small), 1), 0.0)
    return max(large.seconds + slope * (real_pixels - pixels(large)), large.seconds)
