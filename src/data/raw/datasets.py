"""RAW denoising datasets: clean frames made noisy by LED's physics model, and real (short, long) pairs.

Samples follow the suite's contract (``lq``, ``gt``: float32 4 x h x w packed RAW, normalised by the white
level; ``family``, ``benchmark``, ``name``) plus ``camera`` (the virtual camera whose noise the input has; -1
for a real or unseen camera) and ``ratio`` (the exposure ratio the input was brought up by). Every random
choice comes from a generator keyed by the sample, as in :mod:`src.data.datasets.synthetic`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from src.data.degradations.base import rng_for
from src.data.raw.bayer import mosaic_rgb, pack_bayer
from src.data.raw.files import RawFrame, raw_files, read_raw
from src.data.raw.noise import VirtualCameras, draw_capture, synthesise
from src.utils.errors import DataError

#: a Sony A7S2's levels (SID's camera), used for frames made from photographs
SONY_BLACK, SONY_WHITE = 512.0, 16383.0


class FrameSource(Protocol):
    """Clean RAW frames by index."""

    names: list[str]

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> RawFrame: ...


class RawFolder:
    """The RAW files of a folder (or a given list of files) as clean frames, read when asked."""

    def __init__(self, folder: str | Path | None = None, files: Sequence[str | Path] | None = None) -> None:
        if (folder is None) == (files is None):
            raise ValueError("RawFolder takes a folder or a list of files")
        self.paths = raw_files(folder) if folder is not None else [Path(f).expanduser() for f in files or []]
        if not self.paths:
            raise DataError("no RAW files given")
        self.names = [p.stem for p in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> RawFrame:
        return read_raw(self.paths[index])


def srgb_to_linear(image: np.ndarray) -> np.ndarray:
    """The sRGB transfer function undone (IEC 61966-2-1), values in [0, 1]."""
    image = np.clip(image, 0.0, 1.0)
    return np.where(image <= 0.04045, image / 12.92, ((image + 0.055) / 1.055) ** 2.4)


class UnprocessedPhotos:
    """Stand-in RAW frames made from photographs (no camera files needed): the sRGB curve undone, the result
    mosaicked as an RGGB sensor records it and scaled to a Sony A7S2's levels. No white balance or colour
    matrix is undone, so the statistics are not a real sensor's; they let a RAW pipeline run end to end."""

    def __init__(self, images: Any) -> None:
        if len(images) == 0:
            raise DataError("the photographs to make stand-in RAW frames from are empty")
        self.images = images
        self.names = [str(n) for n in getattr(images, "names", [f"{i:05d}" for i in range(len(images))])]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> RawFrame:
        image = np.asarray(self.images[index])
        image = image.astype(np.float64) / (255.0 if image.dtype == np.uint8 else 1.0)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        mosaic = srgb_to_linear(image[..., :3])
        planes = pack_bayer(mosaic_rgb(mosaic)) * (SONY_WHITE - SONY_BLACK) + SONY_BLACK
        levels = np.full(4, SONY_BLACK), np.full(4, SONY_WHITE)
        return RawFrame(planes.astype(np.float32), levels[0], levels[1], self.names[index])


def _crop_box(height: int, width: int, size: int, rng: np.random.Generator, name: str) -> tuple[int, int]:
    if height < size or width < size:
        raise DataError(f"RAW frame {name!r} packs to {height} x {width}, smaller than the patch of {size}")
    return int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))


def _flip_transpose(arrays: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """LED's fine-tuning augmentation: a horizontal flip, a vertical flip and a transpose, each with p = 0.5
    (on packed planes, so the Bayer order is kept as LED keeps it)."""
    flips = rng.random(3) < 0.5
    out = []
    for array in arrays:
        if flips[0]:
            array = array[:, :, ::-1]
        if flips[1]:
            array = array[:, ::-1, :]
        if flips[2]:
            array = array.transpose(0, 2, 1)
        out.append(np.ascontiguousarray(array))
    return out


def _sample(lq: np.ndarray, gt: np.ndarray, family: str, benchmark: str, name: str, camera: int,
            ratio: float) -> dict[str, Any]:
    return {"lq": torch.from_numpy(np.ascontiguousarray(lq, np.float32)),
            "gt": torch.from_numpy(np.ascontiguousarray(gt, np.float32)), "family": family,
            "benchmark": benchmark, "name": name, "camera": camera, "ratio": float(ratio)}


class NoisyRawPatches(Dataset):
    """LED's pre-training pairs: a random packed patch of a clean frame, a virtual camera, an integer exposure
    ratio in ``ratio_range`` (inclusive), the camera's noise at that ratio (:func:`~src.data.raw.noise.synthesise`).

    Each sample draws its own camera; the strategy runs each camera's samples through that camera's branch
    (LED draws one camera per batch of one)."""

    def __init__(self, source: FrameSource, cameras: VirtualCameras, patch_size: int = 512,
                 ratio_range: Sequence[float] = (100, 300), family: str = "raw", repeats: int = 1, seed: int = 0,
                 augment: bool = False) -> None:
        if len(source) == 0:
            raise DataError("the clean RAW frames of the training set are empty")
        low, high = ratio_range
        if not 0 < low <= high:
            raise ValueError(f"ratio_range {list(ratio_range)} must be 0 < low <= high")
        self.source, self.cameras, self.patch_size = source, cameras, int(patch_size)
        self.ratio_range = (float(low), float(high))
        self.family, self.repeats, self.seed, self.augment = family, int(repeats), int(seed), augment

    def __len__(self) -> int:
        return len(self.source) * self.repeats

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        rng = rng_for(self.seed, epoch, index, self.family)
        frame = self.source[index % len(self.source)]
        gt = frame.normalised()
        top, left = _crop_box(gt.shape[1], gt.shape[2], self.patch_size, rng, frame.name)
        gt = gt[:, top : top + self.patch_size, left : left + self.patch_size]
        if self.augment:
            (gt,) = _flip_transpose([gt], rng)
        low, high = self.ratio_range
        ratio = float(rng.integers(int(low), int(high) + 1)) if low.is_integer() and high.is_integer() \
            else float(rng.uniform(low, high))
        camera = int(rng.integers(len(self.cameras)))
        capture = draw_capture(self.cameras, camera, rng)
        lq, clean = synthesise(gt, frame.span, ratio, capture, self.cameras.noise_type, rng)
        return _sample(lq, clean, self.family, "", frame.name, camera, ratio)


class SyntheticRawImages(Dataset):
    """A fixed benchmark: whole clean frames (cropped to even sides) with one camera's noise at ``ratio``, keyed
    by ``(seed, index, benchmark)``; the camera counts as unseen (``camera`` -1) unless ``seen``."""

    def __init__(self, source: FrameSource, cameras: VirtualCameras, ratio: float, benchmark: str,
                 camera: int = 0, family: str = "raw", seed: int = 0, seen: bool = False,
                 max_side: int | None = None) -> None:
        self.source, self.cameras, self.ratio, self.benchmark = source, cameras, float(ratio), benchmark
        self.camera, self.family, self.seed, self.seen, self.max_side = camera, family, seed, seen, max_side
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index not in self._cache:
            frame = self.source[index]
            rng = rng_for(self.seed, index, self.benchmark)
            gt = frame.normalised()
            side = self.max_side or max(gt.shape[1:])
            gt = gt[:, : min(gt.shape[1], side) // 2 * 2, : min(gt.shape[2], side) // 2 * 2]
            capture = draw_capture(self.cameras, self.camera, rng)
            self._cache[index] = synthesise(gt, frame.span, self.ratio, capture, self.cameras.noise_type, rng)
        lq, gt = self._cache[index]
        return _sample(lq, gt, self.family, self.benchmark, self.source.names[index],
                       self.camera if self.seen else -1, self.ratio)


class RawPairs(Dataset):
    """Real (short, long) exposure pairs: ``lq = min(short * ratio, 1)`` (negatives kept, as LED),
    ``gt = clip(long, 0, 1)``, both normalised by their own levels.

    Evaluation takes whole frames; with ``patch_size`` (LED's few-shot fine-tuning) each sample is a random
    aligned crop with flips and a transpose, indexed by ``(epoch, index)`` keys."""

    def __init__(self, pairs: Sequence[tuple[Path, Path, float]], benchmark: str = "", family: str = "raw",
                 patch_size: int | None = None, seed: int = 0, repeats: int = 1, cache: bool = False) -> None:
        """``cache``: keep the decoded frames (a few-shot training set; a test set of whole SID frames, 48 MB a
        frame in float32, is read each time)."""
        if not pairs:
            raise DataError(f"RAW pair set {benchmark or family!r} is empty")
        self.pairs, self.benchmark, self.family = list(pairs), benchmark, family
        self.patch_size, self.seed, self.repeats, self.cache = patch_size, seed, int(repeats), cache
        self._frames: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.pairs) * self.repeats

    def frames(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The pair's (lq, gt) whole frames."""
        if index in self._frames:
            return self._frames[index]
        short, long, ratio = self.pairs[index]
        lq_frame, gt_frame = read_raw(short), read_raw(long)
        if lq_frame.planes.shape != gt_frame.planes.shape:
            raise DataError(f"{short} packs to {lq_frame.planes.shape[1:]} but its reference {long} to "
                            f"{gt_frame.planes.shape[1:]}")
        lq = np.minimum(lq_frame.normalised() * ratio, 1.0).astype(np.float32)
        gt = np.clip(gt_frame.normalised(), 0.0, 1.0).astype(np.float32)
        if self.cache:
            self._frames[index] = (lq, gt)
        return lq, gt

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        pair = index % len(self.pairs)
        lq, gt = self.frames(pair)
        name = Path(self.pairs[pair][0]).stem
        if self.patch_size is not None:
            rng = rng_for(self.seed, epoch, index, self.family)
            top, left = _crop_box(lq.shape[1], lq.shape[2], self.patch_size, rng, name)
            window = (slice(None), slice(top, top + self.patch_size), slice(left, left + self.patch_size))
            lq, gt = _flip_transpose([lq[window], gt[window]], rng)
        return _sample(lq, gt, self.family, self.benchmark, name, -1, self.pairs[pair][2])
