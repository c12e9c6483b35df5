"""Peak memory of one measurement: the process's peak RSS on CPU, the CUDA allocator's peak on a GPU (bench, restore).

On Linux the peak RSS (``VmHWM``) can be reset to the current RSS by writing ``5`` to ``/proc/self/clear_refs``,
so measurements can share a process. Where that fails, :func:`cpu_peak_resettable` says so and the runner
measures in a fresh process instead (its lifetime peak is then the measurement's peak).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import gc
import re
from pathlib import Path
from typing import Any

import torch

MIB = 1024 * 1024
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(key: str) -> int | None:
    try:
        match = re.search(rf"^{key}:\s+(\d+)\s+kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def rss_mib() -> float:
    """Current resident set size (``VmRSS``), NaN where /proc is missing."""
    kib = _status_kib("VmRSS")
    return kib / 1024 if kib is not None else float("nan")


def peak_rss_mib() -> float:
    """Peak resident set size since the last reset (``VmHWM``), or the ``ru_maxrss`` lifetime peak."""
    kib = _status_kib("VmHWM")
    if kib is None:
        import resource

        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library, looked up once (``find_library`` runs ldconfig: a quarter of a second each call)."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def release_freed_memory(collect: bool = True) -> None:
    """Collect garbage and hand freed heap pages back to the OS, so the next peak starts from live memory only.

    ``collect=False`` skips the garbage collection (a quarter of a second in a process holding Hydra, Lightning
    and a test suite's objects) where the freed memory is known to be released by reference counting.
    """
    if collect:
        gc.collect()
    libc = _libc()
    if libc is not None:
        with contextlib.suppress(AttributeError):  # not glibc: no malloc_trim
            libc.malloc_trim(0)


def reset_cpu_peak() -> bool:
    """Reset ``VmHWM`` to the current RSS; False where the kernel does not allow it."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    hwm, rss = _status_kib("VmHWM"), _status_kib("VmRSS")
    return hwm is not None and rss is not None and hwm <= rss + 1024


def cpu_peak_resettable() -> bool:
    """Whether peak RSS can be measured per measurement inside one process."""
    return reset_cpu_peak()


def current_mib(device: str) -> float:
    """Memory in use now: the CUDA allocator's on a GPU, the process RSS on CPU."""
    if device == "cuda":
        torch.cuda.synchronize()
        return torch.cuda.memory_allocated() / MIB
    return rss_mib()


def standalone(record: dict[str, Any], base_mib: float, held_mib: float = 0.0) -> dict[str, Any]:
    """``record`` with ``peak_mib`` as if the measurement ran alone in the process.

    Settings timed side by side share one process, so the raw peak of the second holds the first's network.
    Its own need is its increase over its start (plus ``held_mib`` it allocated before the reset, such as
    the network of an inference measurement), on top of ``base_mib``, the process before any network.
    Where the peak could not be reset the raw lifetime peak is all there is (the measurement ran alone).
    """
    out = {**record, "raw_peak_mib": record["peak_mib"], "increase_mib": record["peak_mib"] - record["start_mib"]}
    if record["since"] == "reset":
        out.update(peak_mib=base_mib + held_mib + out["increase_mib"], base_mib=base_mib, held_mib=held_mib)
    return out


class PeakMemory:
    """``reset()`` before a measurement, ``read()`` after it: a dict with the peak and what it counts."""

    def __init__(self, device: str, collect_garbage: bool = True) -> None:
        self.device = device
        self.collect_garbage = collect_garbage
        self.start_mib = 0.0
        self.since = "process start"

    def reset(self) -> None:
        release_freed_memory(self.collect_garbage)
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            self.start_mib = torch.cuda.memory_allocated() / MIB
            self.since = "reset"
            return
        self.since = "reset" if reset_cpu_peak() else "process start"
        self.start_mib = rss_mib()

    def read(self) -> dict[str, Any]:
        if self.device == "cuda":
            torch.cuda.synchronize()
            return {
                "kind": "cuda_max_allocated",
                "peak_mib": torch.cuda.max_memory_allocated() / MIB,
                "peak_reserved_mib": torch.cuda.max_memory_reserved() / MIB,
                "start_mib": self.start_mib,
                "process_rss_mib": rss_mib(),
                "since": self.since,
            }
        return {"kind": "process_peak_rss", "peak_mib": peak_rss_mib(), "start_mib": self.start_mib,
                "since": self.since}


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
