"""Tiled inference of a large image (3840x2160 by default) on CPU, and the memory bound the tile size sets.

The bound is what tiling promises: the memory of restoring one tile (model, Python, PyTorch and one tile's
activations, measured as the peak of a single-tile run) plus the full-resolution buffers that tiling keeps
(the input, the weighted output sum, the weight sum and the normalised output), plus a small slack for
allocator rounding. A peak above it means memory grows with the image, not the tile.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from src.bench import network
from src.bench.config import BenchConfig
from src.bench.settings import NamedSetting
from src.inference.config import InferenceConfig
from src.inference.tiling import infer, padded, tile_starts
from src.training import speed
from src.utils.memory import MIB, PeakMemory

DEVICE = "cpu"
PHASES = ("tile", "image")


def buffer_bytes(height: int, width: int, out_channels: int = 3, in_channels: int = 3) -> dict[str, int]:
    """Full-resolution float32 tensors alive during ``tiled``: the input, ``out``, ``weight_sum`` and ``out / sum``."""
    pixels = height * width * 4
    return {
        "input": in_channels * pixels,
        "output_sum": out_channels * pixels,
        "weight_sum": pixels,
        "normalised_output": out_channels * pixels,
    }


def memory_bound(tile_peak_mib: float, buffers: dict[str, int], slack: float) -> dict[str, Any]:
    """``(one-tile peak + buffers) * (1 + slack)``, with its parts."""
    buffers_mib = sum(buffers.values()) / MIB
    return {
        "tile_peak_mib": tile_peak_mib,
        "buffers_mib": buffers_mib,
        "buffers": {k: v / MIB for k, v in buffers.items()},
        "slack": slack,
        "bound_mib": (tile_peak_mib + buffers_mib) * (1.0 + slack),
    }


def measure_tiled(
    model: str, setting: NamedSetting, cfg: BenchConfig, phases: Sequence[str] = PHASES
) -> dict[str, Any]:
    """Peak memory of ``phases``: ``tile`` (one tile through the network) and ``image`` (the whole image, tiled)."""
    settings = setting.speed
    network.forget_compiled()
    built = network.build(model, cfg.overrides, settings, DEVICE, cfg.seed)
    trainee = built.trainee.eval()

    def restore(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), speed.autocast(settings, DEVICE, inference=True):
            return trainee.restore(speed.prepare_input(x, settings))

    height, width = cfg.tiled_size
    result: dict[str, Any] = {
        "setting": setting.as_dict(), "describe": setting.describe(training=False), "device": DEVICE,
        "threads": torch.get_num_threads(), "size": [height, width], "tile": cfg.tile, "overlap": cfg.overlap,
    }
    generator = torch.Generator().manual_seed(cfg.seed)
    if "tile" in phases:
        memory = PeakMemory(DEVICE)
        memory.reset()
        side = min(cfg.tile, height), min(cfg.tile, width)
        start = time.perf_counter()
        out = padded(restore, built.multiple)(torch.rand(1, 3, *side, generator=generator))
        result["tile_seconds"] = time.perf_counter() - start
        result["out_channels"] = int(out.shape[1])
        result["tile_memory"] = memory.read()
        del out
    if "image" in phases:
        memory = PeakMemory(DEVICE)
        memory.reset()
        image = torch.rand(1, 3, height, width, generator=generator)
        options = InferenceConfig(tile=cfg.tile, overlap=cfg.overlap, max_pixels=None)
        start = time.perf_counter()
        out = infer(restore, image, built.multiple, options)
        result["seconds"] = time.perf_counter() - start
        rows, cols = tile_starts(height, cfg.tile, cfg.overlap), tile_starts(width, cfg.tile, cfg.overlap)
        result["tiles"] = len(rows) * len(cols)
        result["memory"] = memory.read()
        result["out_channels"] = int(out.shape[1])
        del out, image
    return result


def judge(result: dict[str, Any], cfg: BenchConfig) -> dict[str, Any]:
    """Add the bound and whether the image's peak stayed within it (both phases must be in ``result``)."""
    height, width = cfg.tiled_size
    bound = memory_bound(result["tile_memory"]["peak_mib"], buffer_bytes(height, width, result["out_channels"]),
                         cfg.bound_slack)
    peak = result["memory"]["peak_mib"]
    return {**result, "bound": bound, "peak_mib": peak, "within_bound": peak <= bound["bound_mib"]}
