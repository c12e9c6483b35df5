"""Learning curves of quickstart variants: per-family PSNR gain of the raw and EMA weights every few steps.

``src.train`` reports one table at the end; diagnosing why a family fails needs the whole trajectory and
both weight sets. This loop drives the suite's own objects (the composed datamodule, the module's
``training_loss``, its optimiser and schedule) step by step, so a variant is any Hydra override on top of
``experiment=quickstart``. The EMA here is the same update as Lightning's ``EMAWeightAveraging`` (a lerp
towards the live weights after every optimiser step); ``--ema-start S`` adds a second average whose first
update copies the step-S weights (the callback's ``update_starting_at_step``).

Gain = restored minus input PSNR (dB, RGB in [0, 1], whole image), the mean over the test photographs.
One JSON line per evaluation on stdout. Example (run from the repository root)::

    python experiments/quickstart/learning_curve.py --steps 500 --every 125 --ema-start 250 --threads 1 \
        data.weights.blur=3.0 data.weights.rain=1.0
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from hydra import compose, initialize_config_dir
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from src.metrics.functional import psnr  # noqa: E402
from src.run.assemble import build, build_model  # noqa: E402


def mean_gains(net: nn.Module, head: nn.Module | None, tests: dict[str, list[dict]]) -> dict[str, float]:
    """Per-benchmark mean over images of restored-minus-input PSNR; leaves ``net`` in train mode.

    A benchmark whose inputs equal their targets (a training-only identity family) has no gain and is skipped.
    """
    net.eval()
    gains = {}
    with torch.no_grad():
        for bench, items in tests.items():
            per_image = []
            for item in items:
                lq, gt = item["lq"][None], item["gt"][None]
                degraded = psnr(lq, gt, data_range=1.0).item()
                if degraded == float("inf"):
                    continue
                pred, _ = net(lq, head=head)
                per_image.append(psnr(pred.clamp(0, 1), gt, data_range=1.0).item() - degraded)
            if per_image:
                gains[bench.replace("synth_", "")] = round(float(np.mean(per_image)), 2)
    net.train()
    return gains


def ema_update(average: nn.Module, live: nn.Module, decay: float) -> None:
    with torch.no_grad():
        for p_avg, p in zip(average.parameters(), live.parameters(), strict=True):
            p_avg.lerp_(p, 1 - decay)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides on top of experiment=quickstart")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--every", type=int, default=125, help="evaluate every this many steps")
    parser.add_argument("--ema-start", type=int, default=0, help="also report an EMA started at this step")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the result depends on it)")
    parser.add_argument("--save", type=Path, default=None, help="write the final raw and EMA weights here")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=quickstart", "logger=none", *args.overrides])
    L.seed_everything(cfg.seed, workers=True)
    datamodule = build(cfg.data, "data")
    module = build_model(cfg)
    datamodule.setup("fit")
    optim = module.configure_optimizers()
    optimizer = optim["optimizer"] if isinstance(optim, dict) else optim
    scheduler = optim["lr_scheduler"]["scheduler"] if isinstance(optim, dict) else None
    decay = float(cfg.callbacks.ema.decay) if "ema" in cfg.callbacks else None
    ema = copy.deepcopy(module.net) if decay else None
    late_ema = None  # copied from the live weights at step ema_start, like the callback's first update
    tests = {bench: [ds[i] for i in range(len(ds))] for bench, ds in datamodule.test_sets.items()}

    step, epoch, losses, start = 0, 0, [], time.time()
    while step < args.steps:
        loader = datamodule.train_dataloader()
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            total, _ = module.training_loss(batch)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            if scheduler is not None and cfg.model.scheduler_interval == "step":
                scheduler.step()
            if ema is not None:
                ema_update(ema, module.net, decay)
            if late_ema is not None:
                ema_update(late_ema, module.net, decay)
            elif decay and step + 1 == args.ema_start:
                late_ema = copy.deepcopy(module.net)
            losses.append(total.item())
            step += 1
            if step % args.every == 0 or step == args.steps:
                record = {
                    "step": step,
                    "loss": round(float(np.mean(losses[-args.every :])), 4),
                    "raw": mean_gains(module.net, module.head, tests),
                    "seconds": round(time.time() - start),
                }
                if ema is not None:
                    record["ema"] = mean_gains(ema, module.head, tests)
                if late_ema is not None:
                    record[f"ema_from_{args.ema_start}"] = mean_gains(late_ema, module.head, tests)
                print(json.dumps(record), flush=True)
            if step >= args.steps:
                break
        epoch += 1
        if scheduler is not None and cfg.model.scheduler_interval == "epoch":
            scheduler.step()
    if args.save is not None:
        state = {"raw": module.net.state_dict(), "ema": ema.state_dict() if ema is not None else None}
        torch.save(state, args.save)


if __name__ == "__main__":
    main()
