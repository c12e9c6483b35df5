"""Reproduce KAIR's DnCNN-25 result on grayscale BSD68 (29.23 dB) with our DnCNN and the released weights.

"Float noise seeded 0" follows KAIR's ``main_test_dncnn.py``: each clean image (uint8 / 255, float32) gets
``np.random.seed(0)`` and then ``np.random.normal(0, 25/255, (H, W, 1))`` added in place, no clipping of the
noisy input; the output is clipped to [0, 1], rounded to uint8 and compared with the uint8 clean image
(PSNR over the whole image, no border). Because the seed is reset for every image, the result does not
depend on the image order. Run: ``python experiments/dncnn_bsd68/check.py [--torch-noise]``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from src.models.official import from_official
from src.utils.weights import load_state_dict_file

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
SIGMA = 25
KAIR_KWARGS = {"in_nc": 1, "out_nc": 1, "nc": 64, "nb": 17, "act_mode": "R"}


def kair_noisy(clean: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """KAIR's noisy input: float32 clean image plus float64 N(0, sigma/255) noise drawn right after seed 0."""
    noisy = clean.astype(np.float32)[..., None] / np.float32(255.0)
    np.random.seed(0)
    noisy += np.random.normal(0, sigma / 255.0, noisy.shape)
    return noisy[..., 0]


def torch_noisy(clean: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """Alternative reading of "seed 0": ``torch.manual_seed(0)`` per image, float32 Gaussian noise."""
    torch.manual_seed(0)
    x = torch.from_numpy(clean.astype(np.float32) / 255.0)
    return (x + torch.randn(x.shape) * (sigma / 255.0)).numpy()


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 20 * math.log10(255.0 / math.sqrt(mse))


def to_uint8(x: np.ndarray) -> np.ndarray:
    """KAIR's ``tensor2uint``: clip to [0, 1], scale, round."""
    return np.uint8((np.clip(x, 0, 1) * 255.0).round())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-noise", action="store_true", help="use torch.manual_seed(0) noise instead")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images (sorted)")
    args = parser.parse_args()

    model = from_official("dncnn", KAIR_KWARGS, load_state_dict_file(DATA / "weights" / "dncnn_25.pth"))
    paths = sorted((DATA / "test" / "denoise" / "BSD68_gray").glob("*.png"))[: args.limit]
    make_noisy = torch_noisy if args.torch_noise else kair_noisy
    restored, noisy_psnr = [], []
    for path in paths:
        clean = np.asarray(Image.open(path).convert("L"))
        noisy = make_noisy(clean)
        with torch.no_grad():
            out = model(torch.from_numpy(noisy)[None, None])[0, 0].numpy()
        restored.append(psnr_uint8(to_uint8(out), clean))
        noisy_psnr.append(psnr_uint8(to_uint8(noisy), clean))
    noise = "torch.manual_seed(0) per image" if args.torch_noise else "KAIR np.random.seed(0) per image"
    print(f"{len(paths)} images, sigma {SIGMA}, {noise}")
    print(f"noisy input PSNR {np.mean(noisy_psnr):.2f} dB; DnCNN-25 PSNR {np.mean(restored):.4f} dB (KAIR: 29.23)")


if __name__ == "__main__":
    main()
