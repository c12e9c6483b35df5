"""One benchmark run: every measurement for every model and setting, the ratios, the goals, the two files."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from src.bench import ddp, fidelity, goals, machine, report
from src.bench.config import BenchConfig
from src.bench.isolate import measure
from src.bench.latency import size_key
from src.bench.loader import family_datasets, measure_loader
from src.bench.network import check_models
from src.bench.settings import BASELINE, OFFICIAL, OURS, NamedSetting, named_settings, ours_speed
from src.bench.tiled import judge
from src.training.speed import SpeedSettings
from src.utils.atomic import write_text_atomic
from src.utils.memory import cpu_peak_resettable

log = logging.getLogger(__name__)
JSON_NAME, MARKDOWN_NAME = "bench.json", "bench.md"
#: the figures so far, rewritten after each phase and removed once bench.json is written
PARTIAL_NAME = "bench.partial.json"


def speedups(models: dict[str, Any]) -> None:
    """Per model: ours and each ablation over the baseline, from the stored medians (throughput up = time down);
    where the official code ran, every setting over it too (``vs_official``)."""
    for figures in models.values():
        training = figures["training"]
        figures["speedup"] = _ratios(training, figures["latency"], BASELINE)
        if OFFICIAL in training:
            figures["speedup"]["vs_official"] = _ratios(training, figures["latency"], OFFICIAL)


def _ratios(training: dict[str, Any], latency: dict[str, Any], reference: str) -> dict[str, Any]:
    base = training[reference]["median_s"]
    return {
        "training": {name: base / run["median_s"] for name, run in training.items() if name != reference},
        "latency": {size: {name: runs[reference]["median_s"] / run["median_s"] for name, run in runs.items()
                           if name != reference} for size, runs in latency.items()},
    }


def for_inference(settings: list[NamedSetting], cfg: BenchConfig) -> list[NamedSetting]:
    """The settings as the suite's inference runs them (``RestorationModule.forward``, ``src.restore``): no
    optimiser, no DDP, and a compiled network run eagerly (one graph per image size would stall), unless
    ``cfg.compile_inference``. A switch that then changes nothing at inference is left out."""
    result = []
    for s in settings:
        speed_settings = dataclasses.replace(s.speed, fused_adamw=False)
        if s.speed.compile and not cfg.compile_inference:
            speed_settings = dataclasses.replace(speed_settings, compile=False, compile_mode=None)
        if s.name not in (BASELINE, OURS, OFFICIAL) and speed_settings == SpeedSettings.baseline():
            continue
        result.append(NamedSetting(s.name, speed_settings, None, s.official))
    return result


def side_by_side(kind: str, model: str, settings: list[NamedSetting], cfg: BenchConfig,
                 isolate: bool) -> dict[str, Any]:
    """All settings in one interleaved measurement, or (``isolate``) each in its own process, merged."""
    if not isolate:
        return measure(kind, model, settings, cfg, False)
    merged: dict[str, Any] = {}
    for setting in settings:
        part = measure(kind, model, [setting], cfg, True)
        if kind == "training":
            merged.update(part)
        else:  # latency: {size: {setting: record}}
            for size, runs in part.items():
                merged.setdefault(size, {}).update(runs)
    return merged


def measure_model(model: str, settings: list[NamedSetting], cfg: BenchConfig, isolate: bool,
                  on_phase: Callable[[dict[str, Any]], None] = lambda figures: None) -> dict[str, Any]:
    """Training and latency for each setting, then the tiled large image (ours, on CPU) where asked for;
    ``on_phase`` sees the figures so far after each phase (a run cut short keeps what it measured)."""
    log.info("%s: training, %s", model, ", ".join(f"{s.name} ({s.describe()})" for s in settings))
    figures: dict[str, Any] = {"training": side_by_side("training", model, settings, cfg, isolate)}
    figures["parameters"] = figures["training"][BASELINE]["parameters"]
    on_phase(figures)
    inference = for_inference(settings, cfg)
    log.info("%s: latency at %s", model, ", ".join(size_key(s) for s in cfg.latency_sizes))
    figures["latency"] = side_by_side("latency", model, inference, cfg, isolate) if cfg.latency_sizes else {}
    on_phase(figures)
    log.info("%s: fidelity (outputs and first training loss beside the baseline's)", model)
    figures["fidelity"] = {"inference": fidelity.measure_inference(model, inference, cfg),
                           "training": fidelity.first_loss_changes(figures["training"])}
    if cfg.tiled_for(model):
        ours = NamedSetting(OURS, ours_speed("cpu", cfg.ours, cfg.run_steps))
        (cpu_setting,) = for_inference([ours], cfg)
        log.info("%s: tiled %s on CPU", model, size_key(cfg.tiled_size))
        if isolate or cfg.tiled_fresh_process:
            tiled = {**measure("tiled", model, [cpu_setting], cfg, True, phases=["tile"]),
                     **measure("tiled", model, [cpu_setting], cfg, True, phases=["image"])}
        else:
            tiled = measure("tiled", model, [cpu_setting], cfg, False, phases=["tile", "image"])
        figures["tiled"] = judge(tiled, cfg)
    return figures


def run(cfg: BenchConfig, command: str | None = None) -> dict[str, Any]:
    """Measure everything ``cfg`` asks for and write ``bench.json`` and ``bench.md`` under ``cfg.out``."""
    check_models(cfg.models)
    torch.set_num_threads(cfg.threads)
    isolate = cfg.isolate or (cfg.device == "cpu" and not cpu_peak_resettable())
    settings = named_settings(cfg.device, cfg.ours, cfg.ablation, cfg.baseline_ddp, cfg.ablation_switches,
                              cfg.run_steps, official=bool(cfg.official_code))
    result: dict[str, Any] = {
        "schema": 1,
        "created": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": command or shlex.join(["python", "-m", "src.bench", *sys.argv[1:]]),
        "machine": machine.machine(),
        "versions": machine.versions(),
        "config": cfg.as_dict(),
        "isolated_processes": isolate,
        "settings": {s.name: {**s.as_dict(), "describe": s.describe()} for s in settings},
        "load_average": {"before": machine.load_average()},
    }
    out = Path(cfg.out)
    models: dict[str, Any] = {}

    def keep_partial(figures: dict[str, Any]) -> None:
        report.write_json(out / PARTIAL_NAME, {**result, "models": {**models, model: figures}})

    try:
        for model in cfg.models:
            models[model] = measure_model(model, settings, cfg, isolate, keep_partial)
    finally:
        ddp.shutdown()
    loader: dict[str, Any] = {}
    if cfg.families is None or cfg.families:
        for family, dataset in family_datasets(cfg).items():
            log.info("loader: %s", family)
            loader[family] = measure_loader(family, dataset, cfg)
    speedups(models)
    result.update(models=models, loader=loader)
    result["goals"] = [g.as_dict() for g in goals.evaluate(models, loader, cfg.device)]
    result["load_average"]["after"] = machine.load_average()
    report.write_json(out / JSON_NAME, result)
    write_text_atomic(out / MARKDOWN_NAME, report.markdown(result))
    (out / PARTIAL_NAME).unlink(missing_ok=True)
    return result
