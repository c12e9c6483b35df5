"""``data=allweather``: TransWeather's All-Weather setting, read from its published list-file layout.

Under ``data.root``: ``train/allweather.txt`` lists the training inputs (Outdoor-Rain, Snow100K and RainDrop
images, 18,069 in the published mix) relative to ``train/``; ``test/<list>.txt`` lists each test set's inputs
relative to ``test/`` (``test1.txt``: Test1, rain + fog; ``snowtest100k_L.txt``: Snow100K-L; ``raindroptesta.txt``:
RainDrop test A). A target is its input's path with ``input`` replaced by ``gt`` (every occurrence, as the
official loaders do). Training: random 256x256 crops, no flips or rotations, images smaller than the crop
resized up to it (Lanczos), as the official ``TrainData``. Test geometry, two ways named:

* ``official_resize`` (default; TransWeather's ``ValData``): input and target resized with Lanczos so the longer
  side is at most 1024, then up to multiples of 16: the published numbers are on these resized pairs;
* ``crop``: each image centre-cropped to a multiple of 16 at its own resolution (the other settings' geometry).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from src.data.datamodule import RestorationDataModule
from src.data.datasets.paired import PairedImages, PairedPatches, _aligned_patch, _sample, to_unit
from src.data.degradations.base import rng_for
from src.data.io import read_rgb8
from src.utils.errors import DataError

#: the official test lists: benchmark name -> (list file under test/, family)
TEST_LISTS: dict[str, tuple[str, str]] = {
    "test1": ("test1.txt", "rain_fog"),
    "snow100k_l": ("snowtest100k_L.txt", "snow"),
    "raindrop_a": ("raindroptesta.txt", "raindrop"),
}
GEOMETRIES = ("official_resize", "crop")
#: the official test resize: the longer side at most this, then up to a multiple of ``MULTIPLE``
MAX_SIDE, MULTIPLE = 1024, 16


def read_list(folder: Path, list_file: str) -> list[tuple[Path, Path]]:
    """(input, target) paths of a list file under ``folder``; missing files are listed in one DataError."""
    path = folder / list_file
    if not path.is_file():
        raise DataError(f"no list file {path} (TransWeather's layout: data.root/train/allweather.txt and "
                        f"data.root/test/<list>.txt)")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    pairs = [(folder / name, folder / name.replace("input", "gt")) for name in names]
    missing = [str(p) for pair in pairs for p in pair if not p.is_file()]
    if not pairs or missing:
        raise DataError(f"{path}: {'lists nothing' if not pairs else f'{len(missing)} listed file(s) missing'}"
                        + (f": {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else "") if missing else ""))
    return pairs


def official_test_size(width: int, height: int) -> tuple[int, int]:
    """TransWeather's test size: the longer side capped at 1024 (aspect kept, rounded up), then both sides up to
    multiples of 16."""
    if height > width and height > MAX_SIDE:
        width, height = math.ceil(width * MAX_SIDE / height), MAX_SIDE
    elif height <= width and width > MAX_SIDE:
        width, height = MAX_SIDE, math.ceil(height * MAX_SIDE / width)
    return MULTIPLE * math.ceil(width / MULTIPLE), MULTIPLE * math.ceil(height / MULTIPLE)


def _resized(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (image.shape[1], image.shape[0]) == size:
        return image
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


class ResizedPairs(Dataset):
    """Test pairs under the official geometry: both images resized (Lanczos) to :func:`official_test_size` of
    the input."""

    def __init__(self, pairs: Sequence[tuple[Path, Path]], benchmark: str, family: str) -> None:
        self.pairs, self.benchmark, self.family = list(pairs), benchmark, family

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        lq_path, gt_path = self.pairs[index]
        lq, gt = read_rgb8(lq_path), read_rgb8(gt_path)
        size = official_test_size(lq.shape[1], lq.shape[0])
        return _sample(to_unit(_resized(lq, size)), to_unit(_resized(gt, size)), self.family, self.benchmark,
                       lq_path.stem)


class UpsizedPatches(PairedPatches):
    """PairedPatches without augmentation whose too-small images are first resized up to the crop (Lanczos), as
    TransWeather's ``TrainData``."""

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        files = self.pairs[index % len(self.pairs)]
        images = [read_rgb8(f) for f in files]
        height, width = images[0].shape[:2]
        size = (max(width, self.patch_size), max(height, self.patch_size))
        images = [_resized(im, size) for im in images]
        rng = rng_for(self.seed, epoch, index, self.family)
        lq, gt = _aligned_patch(images, files, self.patch_size, 1, rng, False)
        return _sample(to_unit(lq), to_unit(gt), self.family, "", files[0].stem)


def allweather_datamodule(
    root: str,
    train_list: str = "allweather.txt",
    test_sets: Mapping[str, str] | Sequence[str] = tuple(TEST_LISTS),
    splits: Sequence[str] = ("train", "test"),
    patch_size: int = 256,
    test_geometry: str = "official_resize",
    seed: int = 0,
    **loader_options: Any,
) -> RestorationDataModule:
    """The All-Weather training list (family ``weather``) and the official test lists as benchmarks."""
    if test_geometry not in GEOMETRIES:
        raise ValueError(f"data.test_geometry must be one of {GEOMETRIES}, got {test_geometry!r}")
    base = Path(root).expanduser()
    unknown = sorted(set(test_sets) - set(TEST_LISTS))
    if unknown:
        raise ValueError(f"data.test_sets names {unknown}; the official lists are {sorted(TEST_LISTS)}")
    train = {}
    if "train" in splits:
        pairs = read_list(base / "train", train_list)
        train["weather"] = UpsizedPatches(pairs, "weather", patch_size=patch_size, seed=seed, crop_multiple=1,
                                          augment=False)
    tests: dict[str, Dataset] = {}
    if "test" in splits:
        for name in test_sets:
            list_file, family = TEST_LISTS[name]
            pairs = read_list(base / "test", list_file)
            tests[name] = (ResizedPairs(pairs, name, family) if test_geometry == "official_resize"
                           else PairedImages(pairs, name, family, crop_multiple=MULTIPLE))
    return RestorationDataModule(train=train, val=tests, test=tests, seed=seed, **loader_options)
