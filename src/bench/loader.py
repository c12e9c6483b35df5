"""Data-loader throughput: training patches per second that one worker makes for each degradation family.

The dataset is the single-family training dataset the datamodule builds (``data=synth5deg``), batched as in
training; the clean photographs are decoded once before the workers start, as they are after the first epoch.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader, Dataset, Sampler

from src.bench.config import BenchConfig


class Keys(Sampler):
    """``(epoch, index)`` keys cycling over the clean images, a new epoch (new crops) on every pass."""

    def __init__(self, images: int, count: int) -> None:
        self.images, self.count = images, count

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter((i // self.images, i % self.images) for i in range(self.count))

    def __len__(self) -> int:
        return self.count


def family_datasets(cfg: BenchConfig) -> dict[str, Dataset]:
    """The training dataset of each family in ``cfg.families`` (default: all of ``data``'s) at the patch size."""
    from src.run.assemble import build, compose

    composed = compose("train", [f"data={cfg.data}", f"data.patch_size={cfg.train_size}"])

    datamodule = build(composed.data, "data")
    families = list(datamodule.train_sets) if cfg.families is None else cfg.families
    unknown = [f for f in families if f not in datamodule.train_sets]
    if unknown:
        raise ValueError(f"unknown families {unknown}; data={cfg.data} has {', '.join(datamodule.train_sets)}")
    return {f: datamodule.train_sets[f] for f in families}


def preload(dataset: Any) -> None:
    """Decode every clean image once (sources cache them), so the forked workers start warm."""
    source = getattr(dataset, "source", None)
    if source is not None:
        for index in range(len(source)):
            source[index]


def measure_loader(family: str, dataset: Any, cfg: BenchConfig) -> dict[str, Any]:
    """Patches per second per worker over ``cfg.loader_batches`` batches after ``cfg.loader_warmup``."""
    preload(dataset)
    total = (cfg.loader_warmup + cfg.loader_batches) * cfg.batch
    images = len(getattr(dataset, "source", dataset))
    loader = DataLoader(dataset, batch_size=cfg.batch, sampler=Keys(images, total), num_workers=cfg.loader_workers,
                        drop_last=True)
    arrivals: list[float] = []
    start = time.perf_counter()
    for batch in loader:
        arrivals.append(time.perf_counter())
        del batch
    first_timed = arrivals[cfg.loader_warmup - 1] if cfg.loader_warmup else start
    timed = arrivals[cfg.loader_warmup:]
    elapsed = timed[-1] - first_timed
    per_batch = [b - a for a, b in zip([first_timed, *timed[:-1]], timed)]
    patches_per_s = len(timed) * cfg.batch / elapsed
    return {
        "family": family,
        "data": cfg.data,
        "patch_size": cfg.train_size,
        "batch": cfg.batch,
        "workers": cfg.loader_workers,
        "warmup_batches": cfg.loader_warmup,
        "batches": len(timed),
        "batch_times_s": per_batch,
        "elapsed_s": elapsed,
        "patches_per_s": patches_per_s,
        "patches_per_s_per_worker": patches_per_s / max(cfg.loader_workers, 1),
        "ms_per_patch_per_worker": 1000.0 * max(cfg.loader_workers, 1) / patches_per_s,
    }
