"""The benchmark's Markdown tables (one per measurement kind, then the goals) and atomic file writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from src.bench.settings import BASELINE, OFFICIAL
from src.utils.atomic import write_text_atomic


def write_json(path: Path, result: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(result, indent=2, allow_nan=True) + "\n")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _mib(memory: dict[str, Any]) -> str:
    label = "GPU alloc" if memory["kind"] == "cuda_max_allocated" else "RSS"
    return f"{memory['peak_mib']:,.0f} MiB {label}"


def machine_line(result: dict[str, Any]) -> str:
    m, v, c = result["machine"], result["versions"], result["config"]
    gpu = f"{m['gpu']['name']} ({m['gpu']['memory_gib']:.0f} GiB)" if m["gpu"] else "no GPU"
    load = result.get("load_average", {})
    commit = (v["git_commit"] or "?")[:10] + (" (modified)" if v["git_dirty"] else "")
    return (f"**Machine**: {m['cpu']}, {m['cores_usable']} cores, {c['threads']} torch threads, {gpu}, "
            f"{m['memory_gib']:.0f} GiB; device `{c['device']}`. **Versions**: Python {v['python']}, torch "
            f"{v['torch']}, torchvision {v['torchvision']}, lightning {v['lightning']}, commit {commit}. "
            f"**Date**: {result['created']}. **Load average** (1 min) before/after: "
            f"{load.get('before', ['?'])[0]} / {load.get('after', ['?'])[0]}.")


def _with_official(models: dict[str, Any]) -> bool:
    return any(OFFICIAL in figures["training"] for figures in models.values())


def _vs(runs: dict[str, Any], name: str, reference: str) -> str:
    return f"{runs[reference]['median_s'] / runs[name]['median_s']:.2f}x" if reference in runs else "-"


def training_table(models: dict[str, Any]) -> list[str]:
    official = _with_official(models)
    rows = []
    for model, figures in models.items():
        runs = figures["training"]
        for name, run in runs.items():
            rows.append([model, name, run["describe"], f"{run['batch']} x {run['size'][0]}x{run['size'][1]}",
                         f"{run['warmup_s']:.1f}", f"{run['median_s'] * 1000:.0f}", f"{run['iqr_s'] * 1000:.0f}",
                         f"{run['images_per_s']:.2f}", _mib(run["memory"]), _vs(runs, name, BASELINE)]
                        + ([_vs(runs, name, OFFICIAL)] if official else []))
    header = ["model", "setting", "switches", "batch", "warm-up s", "median ms/step", "IQR ms", "img/s", "peak memory",
              "vs baseline"] + (["vs official"] if official else [])
    return ["## Training throughput", "", *_table(header, rows)]


def latency_table(models: dict[str, Any]) -> list[str]:
    official = _with_official(models)
    rows = []
    for model, figures in models.items():
        for size, runs in figures["latency"].items():
            for name, run in runs.items():
                rows.append([model, size, name, run["describe"], f"{run['warmup_s']:.1f}",
                             f"{run['median_s'] * 1000:.0f}", f"{run['iqr_s'] * 1000:.0f}", _mib(run["memory"]),
                             _vs(runs, name, BASELINE)] + ([_vs(runs, name, OFFICIAL)] if official else []))
    header = ["model", "image", "setting", "switches", "warm-up s", "median ms", "IQR ms", "peak memory",
              "vs baseline"] + (["vs official"] if official else [])
    return ["## Inference latency (batch 1)", "", *_table(header, rows)]


def loader_table(loader: dict[str, Any]) -> list[str]:
    rows = [[f, str(r["workers"]), f"{r['batch']} x {r['patch_size']}", f"{r['patches_per_s_per_worker']:.1f}",
             f"{r['ms_per_patch_per_worker']:.1f}"] for f, r in loader.items()]
    header = ["family", "workers", "batch", "patches/s per worker", "ms per patch"]
    return ["## Data loading (training patches)", "", *_table(header, rows)]


def tiled_table(models: dict[str, Any]) -> list[str]:
    rows = []
    for model, figures in models.items():
        t = figures.get("tiled")
        if not t:
            continue
        b = t["bound"]
        rows.append([model, f"{t['size'][1]}x{t['size'][0]}", f"{t['tile']} / {t['overlap']}", str(t["tiles"]),
                     f"{t['seconds']:.0f}", f"{t['peak_mib']:,.0f}", f"{b['tile_peak_mib']:,.0f}",
                     f"{b['buffers_mib']:,.0f}", f"{b['bound_mib']:,.0f}", "yes" if t["within_bound"] else "**no**"])
    if not rows:
        return []
    header = ["model", "image", "tile / overlap", "tiles", "seconds", "peak RSS MiB", "one-tile peak MiB",
              "buffers MiB", "bound MiB", "within"]
    return ["## Tiled inference memory (CPU)", "", *_table(header, rows)]


def _db(value: float) -> str:
    return "identical" if value == float("inf") else f"{value:.1f}"


def fidelity_table(models: dict[str, Any]) -> list[str]:
    rows = []
    for model, figures in models.items():
        fidelity = figures.get("fidelity") or {}
        inference, training = fidelity.get("inference", {}), fidelity.get("training", {})
        for name in [n for n in figures["training"] if n != BASELINE]:
            inf, tr = inference.get(name), training.get(name)
            if inf is None and tr is None:
                continue
            within = (inf is None or inf["within"]) and (tr is None or tr["within"])
            kinds = dict.fromkeys(part["arithmetic"] for part in (inf, tr) if part is not None)
            arithmetic = (f"inference {inf['arithmetic']}, training {tr['arithmetic']}" if len(kinds) > 1
                          else next(iter(kinds)))
            rows.append([model, name, arithmetic,
                         _db(inf["agreement_db"]) if inf else "-", f"{inf['max_abs_diff']:.1e}" if inf else "-",
                         f"{inf['psnr_shift_db']:.4f}" if inf else "-",
                         f"{tr['relative_change']:.1e}" if tr else "-", "yes" if within else "**no**"])
    if not rows:
        return []
    header = ["model", "setting", "arithmetic", "output agreement dB", "max abs diff", "PSNR shift dB",
              "first-loss change", "within tolerance"]
    return ["## Fidelity (beside the baseline's output and first training loss)", "", *_table(header, rows)]


def goals_table(goals: list[dict[str, Any]]) -> list[str]:
    rows = [[g["goal"], g["model"], g["target"], g["measured"], "met" if g["met"] else "**not met**", g["why"]]
            for g in goals]
    return ["## Goals", "", *_table(["goal", "model", "target", "measured", "status", "why"], rows)]


def markdown(result: dict[str, Any]) -> str:
    """The whole report: machine line, one table per measurement kind, the goals."""
    models = result["models"]
    lines = ["# make bench", "", machine_line(result), "", f"Command: `{result['command']}`", ""]
    lines += training_table(models) + latency_table(models)
    if result["loader"]:
        lines += loader_table(result["loader"])
    lines += tiled_table(models) + fidelity_table(models) + goals_table(result["goals"])
    return "\n".join(lines)
