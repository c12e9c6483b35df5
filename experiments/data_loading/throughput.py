"""Training patches per second per loader worker, for each family of the real-data pipeline.

Runs the datasets in this one process (one process = one DataLoader worker), so the figure is what a
single worker delivers; multiply by ``data.num_workers`` for the loader's ceiling. Without ``--root`` it
measures on a throw-away fake download whose images have the published sizes and formats (BSD 481x321
jpg, WED 512x384 bmp, Rain100L 481x321 png, OTS 550x413 jpg, GoPro 1280x720 png, LOL 600x400 png) cut
from scikit-image's photographs, written to a temporary folder and deleted afterwards.

    python experiments/data_loading/throughput.py [--root /path/to/data] [--samples 200] [--patch-size 128]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from src.data.benchmarks import benchmark_datamodule
from src.data.layouts import LAYOUTS

FAMILIES = ["noise", "rain", "haze", "blur", "lowlight"]
#: (height, width, suffix) of each family's published training images
SHAPES = {"noise": (321, 481, ".jpg"), "rain": (321, 481, ".png"), "haze": (413, 550, ".jpg"),
          "blur": (720, 1280, ".png"), "lowlight": (400, 600, ".png")}


def _photo(height: int, width: int, k: int) -> np.ndarray:
    import skimage.data

    source = [skimage.data.astronaut, skimage.data.coffee, skimage.data.chelsea][k % 3]()
    return np.asarray(Image.fromarray(source).resize((width, height), Image.BICUBIC))


def _save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)


def _train_names(family: str, i: int, suffix: str) -> tuple[str, str]:
    """(degraded, clean) file names as the published training sets name them."""
    if family == "rain":
        return f"rain-{i}.png", f"norain-{i}.png"
    if family == "haze":
        return f"part1/{i:04d}_0.8_0.2.jpg", f"{i:04d}.jpg"
    return f"{i}{suffix}", f"{i}{suffix}"


def write_fake(root: Path, per_family: int = 4) -> Path:
    """A PromptIR-layout download of ``per_family`` training images/pairs per family at the published sizes.

    The test folders get one small pair each (the DataModule needs them; they are not timed).
    """
    for family in FAMILIES:
        height, width, suffix = SHAPES[family]
        train, test = LAYOUTS["promptir"][family].train, LAYOUTS["promptir"][family].test
        for i in range(per_family):
            pixels = _photo(height, width, i)
            if not train.paired:
                _save(root / train.clean[0] / f"{i:04d}{suffix}", pixels)
                continue
            degraded, clean = _train_names(family, i, suffix)
            _save(root / train.degraded[0] / degraded, pixels // 2 + 60)
            _save(root / train.clean[0] / clean, pixels)
        small = _photo(64, 64, 0)
        _save(root / test.clean[0] / "0001.png", small)
        if test.paired:
            _save(root / test.degraded[0] / ("0001_1_1.png" if family == "haze" else "0001.png"), small)
    return root


def measure(root: Path, samples: int, patch_size: int) -> dict[str, float]:
    """Patches per second of each family's training dataset, one process, keys ``(0, i)`` spread over the set."""
    dm = benchmark_datamodule("5deg", root, FAMILIES, patch_size=patch_size, num_workers=0, test_sigmas=[25])
    rates = {}
    for family, ds in dm.train_sets.items():
        keys = [(0, int(i)) for i in np.linspace(0, len(ds) - 1, samples)]
        ds[keys[0]]  # warm the file cache
        start = time.perf_counter()
        for key in keys:
            ds[key]
        rates[family] = samples / (time.perf_counter() - start)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="a real download (default: a temporary fake one)")
    parser.add_argument("--samples", type=int, default=100, help="patches timed per family")
    parser.add_argument("--patch-size", type=int, default=128)
    parser.add_argument("--json", type=Path, default=None, help="also write the rates here")
    args = parser.parse_args()
    tmp = None if args.root else Path(tempfile.mkdtemp(prefix="aioir_fake_"))
    try:
        root = args.root or write_fake(tmp)
        rates = measure(root, args.samples, args.patch_size)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp)
    source = args.root or "fake download at the published image sizes"
    print(f"patches/s per worker ({args.patch_size}x{args.patch_size}, {source}):")
    for family, rate in rates.items():
        print(f"  {family:9s} {rate:8.1f}")
    if args.json:
        args.json.write_text(json.dumps(rates, indent=2))


if __name__ == "__main__":
    main()
