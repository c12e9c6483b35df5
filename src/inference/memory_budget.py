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
import re
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from src.utils.memory import PeakMemory

log = logging.getLogger(__name__)

#: probe sides (pixels) whose peak memories give the per-pixel slope
PROBE_SIDES = (64, 128)
MEMINFO = Path("/proc/meminfo")
CGROUP = Path("/sys/fs/cgroup")


def _cgroup_headroom() -> int | None:
    """Bytes this process's cgroup (v2) may still use, where it sets a limit."""
    try:
        limit = (CGROUP / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((CGROUP / "memory.current").read_text())
    except (OSError, ValueError):
        return None


def available_bytes(device: torch.device) -> int | None:
    """Memory available to a new allocation on ``device`` now, or ``None`` where it cannot be read."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        match = re.search(r"^MemAvailable:\s+(\d+) kB", MEMINFO.read_text(), re.MULTILINE)
    except OSError:
        match = None
    found = [int(match.group(1)) * 1024] if match else []
    headroom = _cgroup_headroom()
    if headroom is not None:
        found.append(headroom)
    return min(found) if found else None


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
