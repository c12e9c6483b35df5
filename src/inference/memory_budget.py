"""The automatic-tiling threshold from the memory this machine has free, not a fixed pixel count.

``inference.max_pixels: auto`` is resolved once per restore run: the network's memory per pixel is measured
on two small inputs (the peak's growth between them, so the weights and fixed workspaces do not count), and
an image is run whole only when that need, times its pixels, fits in ``fraction`` of the memory available now
(``MemAvailable`` and any cgroup limit on CPU, the free CUDA memory on a GPU). A fixed default was wrong both
ways: too large for a laptop, needlessly tiling (and changing the output of networks with a global receptive
field) on a large server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch import Tensor

from src.utils.memory import PeakMemory, available_bytes

log = logging.getLogger(__name__)

#: probe sides (pixels) whose peak memories give the per-pixel slope
PROBE_SIDES = (64, 128)


def bytes_per_pixel(run: Callable[[Tensor], Tensor], device: torch.device, multiple: int = 1) -> float | None:
    """Peak memory growth per input pixel of ``run`` (B=1, RGB), or ``None`` where peaks cannot be measured."""
    memory = PeakMemory(device.type)
    peaks = []
    sizes = []
    for side in PROBE_SIDES:
        side = -(-side // multiple) * multiple
        x = torch.rand(1, 3, side, side, device=device)
        memory.reset()
        if memory.since != "reset":
            return None  # the kernel does not let this process reset its peak RSS
        with torch.inference_mode():
            run(x)
        record = memory.read()
        peaks.append((record["peak_mib"] - record["start_mib"]) * 2**20)
        sizes.append(side * side)
    slope = (peaks[1] - peaks[0]) / (sizes[1] - sizes[0])
    return slope if slope > 0 else peaks[1] / sizes[1]  # no growth measured: the whole peak, as if per pixel


def auto_max_pixels(run: Callable[[Tensor], Tensor], device: torch.device, multiple: int = 1,
                    fraction: float = 0.5, fallback: int = 1_048_576) -> int:
    """The largest pixel count to run whole on ``device``; ``fallback`` where memory cannot be measured."""
    per_pixel = bytes_per_pixel(run, device, multiple)
    free = available_bytes(device)
    if per_pixel is None or free is None:
        log.warning("inference.max_pixels=auto: cannot measure memory here; tiling above %d pixels", fallback)
        return fallback
    pixels = max(int(fraction * free / per_pixel), 1)
    log.info("inference.max_pixels=auto: %.1f KiB per pixel, %.1f GiB available on %s: images above %d pixels "
             "(%dx%d) are tiled", per_pixel / 1024, free / 2**30, device, pixels, int(pixels**0.5), int(pixels**0.5))
    return pixels
