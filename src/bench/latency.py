"""Inference latency: one image (batch 1) through the network, padded to its multiple as ``src.inference`` does.

As for training, each setting's network is built fresh (same seed) and warmed up on its own, where its peak
memory is taken; the timed calls of all settings then run in turn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch

from src.bench import network
from src.bench.config import BenchConfig
from src.bench.settings import NamedSetting
from src.bench.timing import interleave, summarise, time_calls
from src.inference.tiling import padded
from src.training import speed
from src.training.speed import SpeedSettings
from src.utils.memory import PeakMemory, current_mib, release_freed_memory, standalone

#: extra warm-up calls per size when compiled: the first compiles for the new shape, the next settle
COMPILE_WARMUP = 2


def size_key(size: Sequence[int]) -> str:
    """``(720, 1280)`` -> ``"1280x720"`` (width x height, as image sizes are usually written)."""
    height, width = size
    return f"{width}x{height}"


def restorer(model: str, setting: NamedSetting, cfg: BenchConfig) -> tuple[Callable[[torch.Tensor], torch.Tensor], int]:
    """A function restoring one image under the setting (as ``src.restore`` does: padded to the network's
    multiple, ``inference_mode``, the setting's autocast), and that multiple."""
    settings, device = setting.speed, cfg.device
    built = network.build(model, cfg.overrides, settings, device, cfg.seed, cfg.official_code, setting.official)
    trainee = built.trainee.eval()

    def restore(x: torch.Tensor) -> torch.Tensor:
        return trainee.restore(speed.prepare_input(x, settings))

    run = padded(restore, built.multiple)

    def call(image: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), speed.autocast(settings, device, inference=True):
            return run(image)

    return call, built.multiple


def prime(model: str, cfg: BenchConfig) -> None:
    """One eager call of a throwaway network at the first size, so one-time costs of the process land before
    the memory base is taken rather than on the first setting measured."""
    call, _ = restorer(model, NamedSetting("prime", SpeedSettings.baseline()), cfg)
    height, width = cfg.latency_sizes[0]
    call(torch.rand(1, 3, height, width).to(cfg.device))


def measure_latency(
    model: str, settings: Sequence[NamedSetting], cfg: BenchConfig
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{size: {setting name: record}}`` for each size in ``cfg.latency_sizes``."""
    device = cfg.device
    network.forget_compiled()
    prime(model, cfg)
    release_freed_memory()
    base_mib = current_mib(device)
    calls, held, multiples = {}, {}, {}
    for setting in settings:
        start = current_mib(device)
        calls[setting.name], multiples[setting.name] = restorer(model, setting, cfg)
        held[setting.name] = current_mib(device) - start  # the network's weights
    by_name = {s.name: s for s in settings}
    generator = torch.Generator().manual_seed(cfg.seed)
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for height, width in cfg.latency_sizes:
        image = torch.rand(1, 3, height, width, generator=generator).to(device)
        records = {}
        for name, call in calls.items():
            setting = by_name[name]
            memory = PeakMemory(device)
            memory.reset()
            warmup = cfg.latency_warmup + (COMPILE_WARMUP if setting.speed.compile else 0)
            warmup_times = time_calls(partial(call, image), warmup, device)
            records[name] = {
                "setting": setting.as_dict(), "describe": setting.describe(training=False), "device": device,
                "threads": torch.get_num_threads(), "size": [height, width], "padded_to_multiple": multiples[name],
                "warmup_calls": warmup, "warmup_times_s": warmup_times, "warmup_s": sum(warmup_times),
                "memory": standalone(memory.read(), base_mib, held[name]),
            }
        timed = {name: partial(call, image) for name, call in calls.items()}
        times = interleave(timed, cfg.latency_repeats, device)
        for name, record in records.items():
            record.update(repeats=cfg.latency_repeats, **summarise(times[name]))
        results[size_key((height, width))] = records
        del image
    return results
