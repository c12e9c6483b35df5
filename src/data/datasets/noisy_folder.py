"""A Gaussian-denoising benchmark from a folder of clean images, noised as KAIR's test scripts do.

KAIR (``main_test_dncnn.py``, ``main_test_swinir.py``) reads each clean image as grayscale (``n_channels=1``)
or RGB, divides the uint8 pixels by 255 in float32, calls ``np.random.seed(0)`` and adds
``np.random.normal(0, sigma / 255, shape)`` in place: float noise, no clipping, no quantisation, the same seed
for every image (so the result does not depend on the order). Images are not cropped. With the
``y_channel`` metric protocol (restored output clipped and rounded to uint8, PSNR at peak 255 over the whole
image, a 1-channel image taken as luma) the suite reproduces KAIR's reported PSNR.

``noisy_folder_datamodule`` (``data=kair_denoise``) builds a test-only DataModule: one benchmark per sigma,
named ``<name>_s<sigma>`` (``bsd68_gray_s25``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from src.data.check import undecodable
from src.data.datamodule import RestorationDataModule
from src.data.datasets.paired import list_images, to_unit
from src.data.io import decode, read_rgb8, scale16
from src.data.layouts import DataCheckError
from src.data.transforms import center_crop_to_multiple, to_tensor

CHANNELS = (1, 3)


def read_gray8(path: str | Path) -> np.ndarray:
    """Decode ``path`` to an HxWx1 uint8 array: 8-bit grayscale as stored, 16-bit scaled, colour to BT.601 luma.

    Colour files go through OpenCV's ``cvtColor`` (KAIR reads with ``cv2.imread(path, 0)``, whose libpng path
    may round differently by one level); the grayscale test sets are stored as grayscale, so this never applies
    to them.
    """
    decoded = decode(path)
    if decoded.grayscale:
        gray = decoded.colour
        return scale16(gray) if gray.dtype == np.uint16 else gray
    import cv2

    return cv2.cvtColor(read_rgb8(path), cv2.COLOR_RGB2GRAY)[..., None]


def kair_noisy(clean: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """``float32(clean / 255) + normal(0, sigma / 255)`` drawn right after ``np.random.seed(seed)``, in place."""
    noisy = to_unit(clean)
    noisy += np.random.RandomState(seed).normal(0, sigma / 255.0, noisy.shape)  # stays float32, as in KAIR
    return noisy


class NoisyFolder(Dataset):
    """Clean images of a folder (sorted) with KAIR-style Gaussian noise of ``sigma`` (0-255 scale).

    Args:
        paths: the clean images.
        sigma: noise standard deviation on the 0-255 scale.
        benchmark: the name reported for this set (``bsd68_gray_s25``).
        channels: 1 reads grayscale, 3 RGB.
        seed: numpy seed set before each image's noise (KAIR: 0).
        crop_multiple: centre-crop both images to this multiple after the noise (KAIR: 1, no crop).
    """

    def __init__(
        self, paths: Sequence[Path], sigma: float, benchmark: str, channels: int = 3, seed: int = 0,
        crop_multiple: int = 1, family: str = "noise",
    ) -> None:
        if not paths:
            raise ValueError(f"benchmark {benchmark!r} has no clean images")
        if channels not in CHANNELS:
            raise ValueError(f"channels must be one of {CHANNELS}, got {channels}")
        self.paths = list(paths)
        self.sigma = float(sigma)
        self.benchmark = benchmark
        self.channels = channels
        self.seed = int(seed)
        self.crop_multiple = int(crop_multiple)
        self.family = family

    def __len__(self) -> int:
        return len(self.paths)

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The (noisy, clean) float32 HxWxC arrays of image ``index``."""
        path = self.paths[index]
        clean = read_gray8(path) if self.channels == 1 else read_rgb8(path)
        noisy = kair_noisy(clean, self.sigma, self.seed)
        clean = to_unit(clean)
        if self.crop_multiple > 1:
            noisy, clean = (center_crop_to_multiple(a, self.crop_multiple) for a in (noisy, clean))
        return noisy, clean

    def __getitem__(self, index: int) -> dict[str, Any]:
        lq, gt = self.pair(index)
        return {"lq": to_tensor(lq), "gt": to_tensor(gt), "family": self.family, "benchmark": self.benchmark,
                "name": self.paths[index].stem}


def benchmark_name(name: str, sigma: float) -> str:
    """``bsd68_gray`` and 25 -> ``bsd68_gray_s25``."""
    return f"{name}_s{sigma:g}"


def noisy_folder_sets(
    root: str | Path, sigmas: Sequence[float], name: str, channels: int = 3, seed: int = 0, crop_multiple: int = 1,
    limit: int | None = None, recursive: bool = False,
) -> dict[str, NoisyFolder]:
    """One :class:`NoisyFolder` per sigma over the images of ``root`` (sorted; the first ``limit`` when given)."""
    root = Path(str(root)).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data.root={root}: no such folder of clean images")
    paths = list_images(root, ["."], recursive=recursive)[:limit]
    if not paths:
        raise FileNotFoundError(f"data.root={root} holds no images")
    bad = undecodable(paths)
    if bad:  # refused up front, listed, rather than stopping at the first one mid-evaluation
        listed = "\n".join(f"  {p}: {err}" for p, err in bad.items())
        raise DataCheckError(f"data.root={root}: {len(bad)} of {len(paths)} image(s) cannot be read:\n{listed}")
    return {
        benchmark_name(name, s): NoisyFolder(paths, s, benchmark_name(name, s), channels, seed, crop_multiple)
        for s in sigmas
    }


def folder_benchmark_name(root: str | Path) -> str:
    """The benchmark name a folder gives its images: its own name, lower case (``BSD68_gray`` -> ``bsd68_gray``).

    Named after the data actually read, so another folder's results never come out under a published set's name.
    """
    name = re.sub(r"[^0-9a-z]+", "_", Path(str(root)).expanduser().resolve().name.lower()).strip("_")
    return name or "folder"


def noisy_folder_datamodule(
    root: str | Path, sigmas: Sequence[float], benchmark: str | None = None, channels: int = 3, seed: int = 0,
    crop_multiple: int = 1, limit: int | None = None, recursive: bool = False, name: str = "",
    **loader_options: Any,
) -> RestorationDataModule:
    """A test-only DataModule (evaluation, or validation when given to ``trainer.validate``) of a noisy folder.

    ``benchmark`` (``data.benchmark``) names the results; by default the folder's own name.
    """
    benchmark = benchmark or folder_benchmark_name(root)
    sets = noisy_folder_sets(root, sigmas, benchmark, channels, seed, crop_multiple, limit, recursive)
    return RestorationDataModule(val=sets, test=sets, name=name, **loader_options)
