"""``data=unpaired``: folders of degraded photographs with no clean partner (real rain, real low light, ...).

Such a set can only be scored by no-reference metrics (NIQE, ``metrics.niqe=true``, or a pyiqa one, see
:mod:`src.metrics.pyiqa_bridge`): its samples carry no ``gt``, and the evaluation fills the no-reference
columns of the restored image and of the input, leaving PSNR/SSIM/LPIPS empty. Each folder is a benchmark
named as paired folders are (:func:`src.data.paired_folders.benchmark_name`). The files are listed and
decoded when the datamodule is built, so an unreadable one stops the run in seconds, named.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from src.data.datamodule import RestorationDataModule
from src.data.datasets.paired import _cropped, list_images, to_unit
from src.data.io import IMAGE_SUFFIXES, read_rgb8
from src.data.layouts import DataNotFoundError
from src.data.paired_folders import benchmark_name
from src.data.transforms import to_tensor
from src.utils.errors import ConfigError, DataError

log = logging.getLogger(__name__)
#: keys of one set in ``data.test``
SET_KEYS = {"input", "name", "family", "recursive"}


class UnpairedImages(Dataset):
    """Degraded images with no target: samples of ``lq``, ``family``, ``benchmark`` and ``name`` (no ``gt``)."""

    def __init__(self, paths: Sequence[Path], benchmark: str, family: str, crop_multiple: int = 16) -> None:
        if not paths:
            raise ValueError(f"benchmark {benchmark!r} has no images")
        self.paths = list(paths)
        self.benchmark = benchmark
        self.family = family
        self.crop_multiple = int(crop_multiple)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        lq = _cropped(read_rgb8(path), self.crop_multiple, path)
        return {"lq": to_tensor(to_unit(lq)), "family": self.family, "benchmark": self.benchmark, "name": path.stem}


def _sets(input: str | None, test: Sequence[Mapping[str, Any]] | None, family: str,
          recursive: bool) -> list[dict[str, Any]]:
    items = ([{"input": input}] if input else []) + list(test or [])
    if not items:
        raise ConfigError("data=unpaired has no folder: give data.input=/path/to/photos or "
                          "data.test='[{input: /a}, {input: /b, name: b}]'")
    sets = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or "input" not in item or set(item) - SET_KEYS:
            raise ConfigError(f"data.test[{i}]: a set is {{input: folder, name?, family?, recursive?}}, got {item!r}")
        folder = Path(str(item["input"])).expanduser().resolve()
        if not folder.is_dir():
            raise DataNotFoundError(f"data=unpaired: folder {folder} not found (data.test[{i}].input); give a folder "
                                    "of degraded images")
        sets.append({"folder": folder, "name": str(item.get("name") or benchmark_name(folder)),
                     "family": str(item.get("family") or family), "recursive": bool(item.get("recursive", recursive))})
    names = [s["name"] for s in sets]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"data=unpaired: two folders are both named {twice}: give each a `name`")
    return sets


def _check_decodes(dataset: UnpairedImages) -> None:
    """Open every image once (the paired sets' ``decode`` check): a broken file is named now, not mid-run."""
    for index, path in enumerate(dataset.paths):
        try:
            dataset[index]
        except (OSError, ValueError, DataError) as err:
            raise DataError(f"benchmark {dataset.benchmark}: {path} cannot be read: {err}") from err


def unpaired_datamodule(
    input: str | None = None,
    test: Sequence[Mapping[str, Any]] | None = None,
    family: str = "unpaired",
    recursive: bool = False,
    crop_multiple: int = 16,
    check: bool = True,
    name: str = "unpaired",
    seed: int = 0,
    **loader_options: Any,
) -> RestorationDataModule:
    """One test-only benchmark per folder of degraded images (evaluation and restore only: nothing to train on)."""
    tests: dict[str, UnpairedImages] = {}
    for s in _sets(input, test, family, recursive):
        paths = list_images(s["folder"], ["."], s["recursive"])
        if not paths:
            raise DataNotFoundError(f"data=unpaired: {s['folder']} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        dataset = UnpairedImages(paths, s["name"], s["family"], crop_multiple)
        if check:
            _check_decodes(dataset)
        tests[s["name"]] = dataset
        log.info("unpaired benchmark %s: %d images from %s (no targets: no-reference metrics only)", s["name"],
                 len(paths), s["folder"])
    datamodule = RestorationDataModule(train={}, val=tests, test=tests, seed=seed, name=name, **loader_options)
    datamodule.unpaired_benchmarks = set(tests)
    return datamodule
