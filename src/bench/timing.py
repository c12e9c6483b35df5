"""Wall-clock timing that waits for the GPU, and the robust summary (median, IQR) every figure is given as."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch


def synchronize(device: str) -> None:
    """Wait for queued GPU work, so a timer measures the work and not its launch."""
    if device == "cuda":
        torch.cuda.synchronize()


def time_calls(fn: Callable[[], Any], count: int, device: str) -> list[float]:
    """Seconds taken by each of ``count`` calls of ``fn``."""
    times = []
    for _ in range(count):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def interleave(calls: dict[str, Callable[[], Any]], count: int, device: str) -> dict[str, list[float]]:
    """``count`` timed calls of each function, taken in turn (order reversed every round).

    Settings compared this way see the same background load, so their ratio survives a noisy shared machine
    far better than two runs taken one after the other.
    """
    times: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for round_ in range(count):
        for name in names if round_ % 2 == 0 else reversed(names):
            times[name] += time_calls(calls[name], 1, device)
    return times


def quantile(values: list[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default), defined for one value too."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarise(times: list[float]) -> dict[str, Any]:
    """Median and interquartile range of the timed calls, with the raw list kept."""
    return {
        "times_s": times,
        "median_s": statistics.median(times) if times else float("nan"),
        "iqr_s": quantile(times, 0.75) - quantile(times, 0.25),
        "min_s": min(times) if times else float("nan"),
    }
