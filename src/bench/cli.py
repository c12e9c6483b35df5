"""Command line of ``python -m src.bench`` (what ``make bench`` runs): arguments -> :class:`BenchConfig` -> run."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from src.bench.config import BenchConfig
from src.bench.network import check_models
from src.bench.settings import ABLATION_NAMES, parse_ours


def parse_size(text: str) -> tuple[int, int]:
    """``"1280x720"`` (width x height) -> ``(720, 1280)`` (height, width); ``"256"`` -> ``(256, 256)``."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1280x720, got {text!r}") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) <= 0:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1280x720, got {text!r}")
    return parts[1], parts[0]


def _ours(text: str) -> dict[str, Any]:
    try:
        return parse_ours(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m src.bench",
        description="Training throughput, inference latency, peak memory and loader speed, ours beside the "
        "official way (baseline) of running the same network. Writes bench.json and bench.md under --out.",
    )
    p.add_argument("--models", nargs="+", default=["restormer_tiny", "promptir_tiny"],
                   help="model config names (conf/model), e.g. promptir, restormer_tiny")
    p.add_argument("--out", default="outputs/bench", help="folder for bench.json and bench.md")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto: cuda when present")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--override", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="Hydra override for every model config (repeatable), e.g. model.backbone.dim=8")
    g = p.add_argument_group("training")
    g.add_argument("--batch", type=int, default=8)
    g.add_argument("--train-size", type=int, default=128, help="square patch side")
    g.add_argument("--steps", type=int, default=10, help="timed steps (median and IQR)")
    g.add_argument("--warmup", type=int, default=3, help="steps timed apart before (at least 2: the memory peak)")
    g.add_argument("--compile-warmup", type=int, default=8, help="extra warm-up steps when compiling")
    g = p.add_argument_group("inference")
    g.add_argument("--latency-sizes", nargs="*", type=parse_size, default=[(256, 256), (720, 1280)],
                   metavar="WxH", help="batch-1 image sizes (default 256x256 1280x720)")
    g.add_argument("--latency-repeats", type=int, default=5)
    g.add_argument("--latency-warmup", type=int, default=1, help="calls timed apart before (peak memory taken there)")
    g.add_argument("--compile-inference", action="store_true",
                   help="compile for inference too (the suite's inference runs compiled networks eagerly)")
    tiled = g.add_mutually_exclusive_group()
    tiled.add_argument("--4k", dest="tiled", action="store_true", default=None,
                       help="tiled large-image memory check for every model (default: tiny models only)")
    tiled.add_argument("--no-4k", dest="tiled", action="store_false", help="skip the tiled large-image check")
    g.add_argument("--tiled-size", type=parse_size, default=(2160, 3840), metavar="WxH")
    g.add_argument("--tiled-in-process", dest="tiled_fresh_process", action="store_false",
                   help="run the tiled phases in this process (faster start; the peak then depends on what ran before)")
    g.add_argument("--tile", type=int, default=256)
    g.add_argument("--overlap", type=int, default=32)
    g = p.add_argument_group("data loading")
    g.add_argument("--data", default="synth5deg", help="data config whose families are timed")
    g.add_argument("--families", nargs="*", default=None,
                   help="families to time (default: every family of --data; the flag alone: skip)")
    g.add_argument("--loader-workers", type=int, default=1)
    g.add_argument("--loader-batches", type=int, default=20)
    g.add_argument("--loader-warmup", type=int, default=3)
    g = p.add_argument_group("settings")
    g.add_argument("--ours", type=_ours, default={}, metavar="KEY=VALUE,...",
                   help="override speed.resolve for ours: compile, channels_last, precision, fused_adamw, "
                   "compile_mode (true/false/auto or a value)")
    g.add_argument("--official-code", nargs="+", default=(), metavar="PATH",
                   help="folders of official repositories (clones; nothing is fetched): each model's official "
                   "network runs as the setting 'official', from the same weights, beside ours")
    g.add_argument("--run-steps", type=int, default=None, metavar="N",
                   help="the run length ours stands for: compile: auto compiles only runs of "
                   "speed.compile_min_steps or more (GPU 5000, CPU 2000), as training does (default: unbounded)")
    g.add_argument("--ablation", nargs="*", choices=ABLATION_NAMES, default=None, metavar="SWITCH",
                   help="also time each speed switch alone on the baseline; the flag alone: every switch, "
                   f"else only those named ({', '.join(ABLATION_NAMES)}; e.g. leave compile out where its "
                   "minutes of compilation do not fit)")
    g.add_argument("--baseline-ddp", choices=["auto", "on", "off"], default="auto",
                   help="wrap the baseline in one-process DDP with unused-parameter search (auto: on CUDA)")
    g.add_argument("--isolate", action="store_true", help="measure each figure in a fresh process")
    return p


def config_from_args(argv: Sequence[str] | None = None) -> BenchConfig:
    """Parse ``argv`` into a config; an unknown model ends with a usage error that lists the available ones."""
    p = parser()
    args = p.parse_args(argv)
    try:
        check_models(args.models)
    except ValueError as err:
        p.error(str(err))
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available")
    positive = {"batch": args.batch, "train-size": args.train_size, "steps": args.steps,
                "latency-repeats": args.latency_repeats, "latency-warmup": args.latency_warmup,
                "loader-batches": args.loader_batches}
    for name, value in positive.items():
        if value < 1:
            p.error(f"--{name} must be at least 1, got {value}")
    if args.overlap >= args.tile:
        p.error(f"--overlap ({args.overlap}) must be smaller than --tile ({args.tile})")
    if args.official_code:
        from src.bench.official import find_root, official_network

        try:
            for model in args.models:
                find_root(official_network(model), args.official_code)
        except (ValueError, FileNotFoundError) as err:
            p.error(str(err))
    values = vars(args)
    renamed = {"models": tuple(args.models), "out": str(Path(args.out)), "device": device,
               "threads": args.threads or torch.get_num_threads(), "overrides": tuple(args.overrides),
               "latency_sizes": tuple(args.latency_sizes),
               "families": None if args.families is None else tuple(args.families),
               "ablation": args.ablation is not None, "ablation_switches": tuple(args.ablation or ()),
               "official_code": tuple(str(Path(f).expanduser()) for f in args.official_code)}
    return BenchConfig(**{**values, **renamed})


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse, run, print where the files went; returns the result (the JSON's content)."""
    from src.bench.run import JSON_NAME, MARKDOWN_NAME, run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    cfg = config_from_args(argv)
    command = shlex.join(["python", "-m", "src.bench", *(sys.argv[1:] if argv is None else argv)])
    result = run(cfg, command)
    out = Path(cfg.out)
    failed = [g for g in result["goals"] if not g["met"]]
    print(f"wrote {out / JSON_NAME} and {out / MARKDOWN_NAME}; "
          f"{len(result['goals']) - len(failed)}/{len(result['goals'])} goals met")
    for g in failed:
        print(f"  not met: {g['goal']} ({g['model']}): {g['measured']}, target {g['target']}")
    return result

