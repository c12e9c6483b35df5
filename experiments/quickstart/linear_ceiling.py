"""How much of the quickstart's blur a single fixed linear filter could undo: a learnability yardstick.

A blind network that has not yet learnt to tell blur kernels apart can at best do what one fixed
filter does for every blurred input. The least-squares optimal such filter (one KxK kernel shared by
all channels, fitted on random training patches of the blur distribution) is a closed-form solve, so
its test gain says whether a blur setting is worth learning at all, independently of any training run.
With ``--train-steps N`` the same filter (as a residual, from zero) is also trained by AdamW on batches
of 8 patches, the quickstart's batch, to show how much of the ceiling N optimiser steps reach: deblurring
is ill-conditioned (a blurred patch holds little of the detail to restore), so even this convex problem
learns slowly. The test set is the quickstart's own blur benchmark (seeded, ``DegradedImages`` with
``test_seed`` 0).

Run from the repository root, e.g. the default family and a narrow defocus::

    python experiments/quickstart/linear_ceiling.py
    python experiments/quickstart/linear_ceiling.py --motion-prob 0 --radius 2 3 --kernel 5
    python experiments/quickstart/linear_ceiling.py --motion-prob 0 --radius 2 3 --kernel 5 --train-steps 500
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch.utils.data import default_collate

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from src.data.datasets.sources import EmbeddedImages  # noqa: E402
from src.data.datasets.synthetic import DegradedImages, DegradedPatches  # noqa: E402
from src.data.degradations.blur import Blur  # noqa: E402
from src.data.io import as_float  # noqa: E402
from src.metrics.functional import psnr  # noqa: E402


def psnr_db(image: np.ndarray, clean: np.ndarray) -> float:
    """The suite's PSNR (data range 1) of two HxWxC float arrays."""
    as_batch = lambda x: torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None]  # noqa: E731
    return psnr(as_batch(image), as_batch(clean), data_range=1.0).item()


def fit_filter(blur: Blur, kernel: int, patches: int, patch_size: int, seed: int) -> np.ndarray:
    """Solve the normal equations of ``min_h sum ||h * blurred - clean||^2`` over random training patches."""
    source = EmbeddedImages("train")
    rng = np.random.default_rng(seed)
    half = kernel // 2
    gram = np.zeros((kernel * kernel, kernel * kernel))
    target = np.zeros(kernel * kernel)
    for i in range(patches):
        image = as_float(source[i % len(source)])
        top = rng.integers(0, image.shape[0] - patch_size)
        left = rng.integers(0, image.shape[1] - patch_size)
        clean = image[top : top + patch_size, left : left + patch_size]
        blurred = blur(clean, rng)
        for c in range(clean.shape[2]):
            padded = np.pad(blurred[..., c], half, mode="reflect")
            windows = sliding_window_view(padded, (kernel, kernel)).reshape(-1, kernel * kernel)
            gram += windows.T @ windows
            target += windows.T @ clean[..., c].reshape(-1)
    return np.linalg.solve(gram + 1e-6 * np.eye(len(target)), target).reshape(kernel, kernel)


def train_filter(blur: Blur, kernel: int, steps: int, lr: float, loss: str, patch_size: int, seed: int) -> np.ndarray:
    """AdamW on ``lq + h * lq`` from ``h = 0`` (the identity), batches of 8 random patches; returns the full filter."""
    torch.manual_seed(seed)
    patches = DegradedPatches(EmbeddedImages("train"), blur, patch_size=patch_size, seed=seed + 1)
    # one kernel shared by the channels, like the closed-form fit
    shared = torch.nn.Parameter(torch.zeros(1, 1, kernel, kernel))
    optimizer = torch.optim.AdamW([shared], lr)
    rng = np.random.default_rng(seed)
    for step in range(1, steps + 1):
        batch = default_collate([patches[(step, int(rng.integers(len(patches))))] for _ in range(8)])
        out = batch["lq"] + torch.nn.functional.conv2d(
            torch.nn.functional.pad(batch["lq"], [kernel // 2] * 4, mode="reflect"),
            shared.expand(3, 1, -1, -1),
            groups=3,
        )
        error = out - batch["gt"]
        value = error.abs().mean() if loss == "l1" else (error**2).mean()
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    identity = np.zeros((kernel, kernel), dtype=np.float32)
    identity[kernel // 2, kernel // 2] = 1.0
    return identity + shared.detach()[0, 0].numpy()


def filter_gains(test: DegradedImages, weights: np.ndarray) -> list[dict]:
    """Per test image: its input PSNR and the dB the filter adds."""
    rows = []
    for i, name in enumerate(test.source.names):
        blurred, clean = test.pair(i)
        filtered = np.clip(
            cv2.filter2D(blurred, -1, weights.astype(np.float32), borderType=cv2.BORDER_REFLECT_101), 0, 1
        )
        degraded = psnr_db(blurred, clean)
        rows.append(
            {"image": name, "input_psnr": round(degraded, 2), "gain_db": round(psnr_db(filtered, clean) - degraded, 2)}
        )
    return rows


def mean_gain(rows: list[dict]) -> float:
    return round(float(np.mean([r["gain_db"] for r in rows])), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--motion-prob", type=float, default=0.7)
    parser.add_argument("--motion-length", type=int, nargs=2, default=(7, 21), help="kernel_size_range")
    parser.add_argument("--radius", type=int, nargs=2, default=(2, 6), help="defocus radius_range")
    parser.add_argument("--kernel", type=int, default=15, help="side of the fitted filter")
    parser.add_argument("--patches", type=int, default=600)
    parser.add_argument("--patch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-steps", type=int, default=0, help="also train the filter for this many steps")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--loss", choices=["l1", "mse"], default="l1")
    args = parser.parse_args()

    blur = Blur(motion_prob=args.motion_prob, kernel_size_range=args.motion_length, radius_range=args.radius)
    torch.set_num_threads(1)
    test = DegradedImages(EmbeddedImages("test"), blur, benchmark="synth_blur", seed=0)
    weights = fit_filter(blur, args.kernel, args.patches, args.patch_size, args.seed)
    rows = filter_gains(test, weights)
    result = {"blur": vars(args), "images": rows, "mean_gain_db": mean_gain(rows)}
    if args.train_steps:
        trained = train_filter(blur, args.kernel, args.train_steps, args.lr, args.loss, args.patch_size, args.seed)
        result["trained_mean_gain_db"] = mean_gain(filter_gains(test, trained))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
