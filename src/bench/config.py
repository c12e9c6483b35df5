"""What one benchmark run measures and how: one frozen record, stored whole in the JSON beside the figures."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class BenchConfig:
    """Options of a run (the command-line arguments after parsing; see ``src.bench.cli``)."""

    models: tuple[str, ...] = ("restormer_tiny", "promptir_tiny")
    out: str = "outputs/bench"
    #: ``cpu`` or ``cuda`` (the CLI's ``auto`` is resolved before this record is made)
    device: str = "cpu"
    threads: int = 1
    seed: int = 0
    #: extra Hydra overrides applied to every model's config (e.g. ``model.backbone.dim=8``)
    overrides: tuple[str, ...] = ()
    # ---- training throughput
    batch: int = 8
    train_size: int = 128
    steps: int = 10
    warmup: int = 3
    #: warm-up steps when the network is compiled (compilation happens in the first ones)
    compile_warmup: int = 8
    # ---- inference latency, ``(height, width)`` pairs, batch 1
    latency_sizes: tuple[tuple[int, int], ...] = ((256, 256), (720, 1280))
    latency_repeats: int = 5
    latency_warmup: int = 1
    #: time compiled inference too (the suite's inference runs a compiled network eagerly)
    compile_inference: bool = False
    # ---- tiled inference of a large image on CPU (memory bound)
    #: ``None``: only for tiny models (``*_tiny``); True/False: every model / none
    tiled: bool | None = None
    tiled_size: tuple[int, int] = (2160, 3840)
    tile: int = 256
    overlap: int = 32
    #: the bound may exceed its parts by this fraction (allocator rounding and fragmentation)
    bound_slack: float = 0.05
    #: each tiled phase in a fresh process: in the benchmark's own process the heap left by earlier
    #: measurements (glibc raises its mmap threshold after large frees) shifts the peak by ~100 MiB
    tiled_fresh_process: bool = True
    # ---- data loading
    data: str = "synth5deg"
    #: families whose loaders are timed; ``None``: every family of ``data`` (its config is the one list)
    families: tuple[str, ...] | None = None
    loader_workers: int = 1
    loader_batches: int = 20
    loader_warmup: int = 3
    # ---- settings
    #: ``key=value`` overrides of ``speed.resolve`` for our setting (``compile=true`` ...)
    ours: dict[str, Any] = field(default_factory=dict)
    #: folders of official repositories (``--official-code``): their networks run as a further setting
    official_code: tuple[str, ...] = ()
    #: the length (optimiser steps) of the run ``ours`` stands for: ``compile: auto`` compiles only runs of
    #: ``speed.compile_min_steps`` or more, as in training; ``None``: a run long enough for every choice
    run_steps: int | None = None
    ablation: bool = False
    #: the switches of the ablation (``settings.ABLATION_NAMES``); empty: every one
    ablation_switches: tuple[str, ...] = ()
    #: the baseline's DDP wrapper: ``auto`` (on CUDA, as the official train.py), ``on``, ``off``
    baseline_ddp: str = "auto"
    #: run each memory measurement in a fresh process (automatic where the peak RSS cannot be reset)
    isolate: bool = False

    def tiled_for(self, model: str) -> bool:
        """Whether the large tiled image runs for ``model`` (paper-size networks take many minutes on CPU)."""
        return model.endswith("_tiny") if self.tiled is None else self.tiled

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BenchConfig:
        """Inverse of :meth:`as_dict` (JSON turns tuples into lists)."""
        data = dict(values)
        for key in ("models", "overrides", "families", "ablation_switches", "official_code"):
            if key in data:  # records written before a key existed lack it
                data[key] = None if data[key] is None else tuple(data[key])
        data["latency_sizes"] = tuple(tuple(s) for s in data["latency_sizes"])
        data["tiled_size"] = tuple(data["tiled_size"])
        return cls(**data)
