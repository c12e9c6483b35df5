"""Run one measurement here or in a fresh process, where its peak RSS is the process's own lifetime peak.

Fresh processes are used where the peak RSS cannot be reset (``--isolate``, or automatically when
``/proc/self/clear_refs`` refuses), so one measurement never inherits another's peak. Settings are then
measured one per process, one after the other, instead of side by side.

    echo '{"kind": ..., "model": ..., "setting": ..., "config": ...}' | python -m src.bench.isolate
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import torch

from src.bench.config import BenchConfig
from src.bench.latency import measure_latency
from src.bench.machine import ROOT
from src.bench.settings import NamedSetting
from src.bench.tiled import measure_tiled
from src.bench.training import measure_training


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Dispatch a JSON job: ``kind`` is ``training``, ``latency`` (any settings) or ``tiled`` (one, ``phases``)."""
    cfg = BenchConfig.from_dict(job["config"])
    torch.set_num_threads(cfg.threads)
    settings = [NamedSetting.from_dict(s) for s in job["settings"]]
    kind = job["kind"]
    if kind == "training":
        return measure_training(job["model"], settings, cfg)
    if kind == "latency":
        return measure_latency(job["model"], settings, cfg)
    if kind == "tiled":
        (setting,) = settings
        return measure_tiled(job["model"], setting, cfg, phases=tuple(job["phases"]))
    raise ValueError(f"unknown measurement kind {kind!r}")


def in_child(job: dict[str, Any]) -> dict[str, Any]:
    """``run_job`` in a fresh Python process; its stderr is shown when it fails."""
    proc = subprocess.run([sys.executable, "-m", "src.bench.isolate"], input=json.dumps(job), cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{job['kind']} measurement of {job['model']} failed in its own process:\n"
                           f"{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(kind: str, model: str, settings: Sequence[NamedSetting], cfg: BenchConfig, isolate: bool,
            **extra: Any) -> dict[str, Any]:
    """One measurement of ``settings`` side by side, in this process or (``isolate``) in a fresh one."""
    job = {"kind": kind, "model": model, "settings": [s.as_dict() for s in settings], "config": cfg.as_dict(),
           **extra}
    return in_child(job) if isolate else run_job(job)


if __name__ == "__main__":
    print(json.dumps(run_job(json.loads(sys.stdin.read()))))
