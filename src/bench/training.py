"""Training throughput: images per second of a plain loop (forward with head, loss, backward, optimiser step).

Each setting gets a fresh network (same seed) and its warm-up, where compilation happens and the peak memory
is taken; then the timed steps of all settings run in turn, so they share the machine's background load.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from src.bench import ddp, network
from src.bench.config import BenchConfig
from src.bench.settings import NamedSetting
from src.bench.timing import interleave, summarise, time_calls
from src.training import speed
from src.training.precision import PrecisionTrial
from src.training.speed import SpeedSettings
from src.utils.memory import PeakMemory, current_mib, release_freed_memory, standalone

#: the second step is the first with optimiser state and activations alive together (the training peak)
MIN_WARMUP = 2


@dataclass
class Prepared:
    """One setting ready to step, with what was measured while preparing it."""

    step: Callable[[], None]
    record: dict[str, Any]


def prepare(model: str, setting: NamedSetting, cfg: BenchConfig, base_mib: float) -> Prepared:
    """Build, wrap, make the optimiser and a fixed random batch on the device, then warm up (timed apart)."""
    settings, device = setting.speed, cfg.device
    memory = PeakMemory(device)
    memory.reset()
    start = time.perf_counter()
    built = network.build(model, cfg.overrides, settings, device, cfg.seed, cfg.official_code, setting.official)
    built.trainee.train()
    runner = built.trainee
    if setting.ddp_find_unused is not None:
        runner = ddp.wrap(runner, device, setting.ddp_find_unused)
    optimizer = network.make_optimizer(built, settings)
    generator = torch.Generator().manual_seed(cfg.seed)
    shape = (cfg.batch, 3, cfg.train_size, cfg.train_size)
    lq = speed.prepare_input(torch.rand(shape, generator=generator).to(device), settings)
    gt = speed.prepare_input(torch.rand(shape, generator=generator).to(device), settings)
    build_s = time.perf_counter() - start
    first_loss: list[torch.Tensor] = []
    # speed=auto on a CPU with native bf16: the run's first steps try both precisions (src.training.precision)
    trial = PrecisionTrial() if settings.autocast_dtype is not None and not settings.autocast_inference else None

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        bf16 = trial.next_bf16() if trial is not None else settings.autocast_dtype is not None
        started = time.perf_counter()
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
            loss = runner(lq, gt)
        loss.backward()
        optimizer.step()
        if trial is not None:
            trial.record(time.perf_counter() - started)
        if not first_loss:  # same weights and batch in every setting: the fidelity check compares it
            first_loss.append(loss.detach())

    warmup = max(cfg.warmup, MIN_WARMUP) + (cfg.compile_warmup if settings.compile else 0)
    if trial is not None:  # the trial runs within the warm-up: the timed steps are the settled precision's
        warmup = max(warmup, 2 * (trial.warmup + trial.steps))
    warmup_times = time_calls(step, warmup, device)
    describe = setting.describe()
    if trial is not None:
        describe += f" (trial: {'bf16' if trial.decided else 'fp32'})"
    record = {
        "setting": setting.as_dict(),
        "describe": describe,
        "device": device,
        "threads": torch.get_num_threads(),
        "batch": cfg.batch,
        "size": [cfg.train_size, cfg.train_size],
        "parameters": built.parameters,
        "build_s": build_s,
        "warmup_steps": warmup,
        "warmup_times_s": warmup_times,
        "warmup_s": sum(warmup_times),
        "first_loss": float(first_loss[0]),
        "memory": standalone(memory.read(), base_mib),
        **({"precision_trial": trial.summary()} if trial is not None else {}),
    }
    return Prepared(step, record)


def prime(model: str, setting: NamedSetting, cfg: BenchConfig) -> None:
    """Two batch-1 steps of a throwaway network, so one-time costs of the process (thread pools, kernel
    libraries, the autograd engine) land before the memory base is taken, not on the first setting."""
    throwaway = prepare(model, setting, dataclasses.replace(cfg, batch=1, warmup=MIN_WARMUP, compile_warmup=0),
                        base_mib=0.0)
    del throwaway


def measure_training(model: str, settings: Sequence[NamedSetting], cfg: BenchConfig) -> dict[str, dict[str, Any]]:
    """Per setting name: warm-up, ``cfg.steps`` timed steps (median, IQR, raw list), images/s and peak memory."""
    network.forget_compiled()
    # eager and without DDP: the process group's cost belongs to the setting that uses DDP
    prime(model, NamedSetting("prime", SpeedSettings.baseline()), cfg)
    release_freed_memory()
    base_mib = current_mib(cfg.device)
    prepared = {s.name: prepare(model, s, cfg, base_mib) for s in settings}
    times = interleave({name: p.step for name, p in prepared.items()}, cfg.steps, cfg.device)
    results = {}
    for name, p in prepared.items():
        stats = summarise(times[name])
        results[name] = {**p.record, "steps": cfg.steps, "interleaved_with": [n for n in prepared if n != name],
                         **stats, "images_per_s": cfg.batch / stats["median_s"]}
    return results
