"""Peak-memory measurement shared by the benchmark and restore's automatic tiling."""

from __future__ import annotations

import pytest
import torch

from src.utils.memory import PeakMemory, cpu_peak_resettable, standalone


def test_standalone_memory_counts_own_increase_only() -> None:
    record = {"kind": "process_peak_rss", "peak_mib": 1500.0, "start_mib": 1200.0, "since": "reset"}
    alone = standalone(record, base_mib=700.0, held_mib=50.0)
    assert alone["peak_mib"] == 700.0 + 50.0 + 300.0 and alone["raw_peak_mib"] == 1500.0
    lifetime = standalone({**record, "since": "process start"}, base_mib=700.0)
    assert lifetime["peak_mib"] == 1500.0


@pytest.mark.skipif(not cpu_peak_resettable(), reason="the kernel does not let this process reset its peak RSS")
@pytest.mark.slow  # allocates and frees ~1 GiB twice: ~6 s
def test_peak_rss_is_reset_between_measurements() -> None:
    memory = PeakMemory("cpu")
    big = torch.ones(64 * 1024 * 1024 // 4)  # 64 MiB
    del big
    memory.reset()
    assert memory.read()["peak_mib"] - memory.read()["start_mib"] < 32
    memory.reset()
    big = torch.ones(64 * 1024 * 1024 // 4)
    assert memory.read()["peak_mib"] - memory.read()["start_mib"] > 48
    del big
