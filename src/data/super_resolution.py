"""``data=sr``: super-resolution as a family: bicubic low-resolution inputs made on the fly from HR images.

Training takes random HR patches of ``lr_patch * scale`` pixels from a folder (DIV2K's ``DIV2K_train_HR``)
or, with none given, from the photographs that ship with scikit-image; the test sets are folders of HR
images under ``test_root`` (Set5, Set14, B100, Urban100, Manga109), each cropped from the top left to a multiple
of the scale (the papers' ``modcrop``) and down-sampled once with MATLAB's bicubic. Evaluate them as the
papers do with ``metrics=sr`` (Y channel, ``crop_border`` = scale).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from src.data.datamodule import RestorationDataModule
from src.data.datasets.sources import EmbeddedImages, FolderImages
from src.data.datasets.synthetic import DegradedImages, DegradedPatches
from src.data.degradations.downsample import BicubicDownsample
from src.data.io import as_float, read_image
from src.data.transforms import to_tensor
from src.utils.errors import DataError

#: sub-folders that hold a test set's HR images in the common layouts (EDSR's benchmark folders, BasicSR's
#: ``GTmod12``), tried in order; the set's folder itself when none exists
HR_FOLDERS = ("HR", "GTmod12", "GTmod4", "hr")
#: the image counts of the published test sets
PUBLISHED_COUNTS = {"Set5": 5, "Set14": 14, "B100": 100, "Urban100": 100, "Manga109": 109}


def hr_folder(root: Path, name: str) -> Path:
    """The folder of test set ``name``'s HR images under ``root``."""
    folder = root / name
    if not folder.is_dir():
        present = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise DataError(f"test set {name!r}: no folder {folder} (data.test_root holds: "
                        f"{', '.join(present) or 'nothing'}); set data.test_sets to the sets you have")
    return next((folder / sub for sub in HR_FOLDERS if (folder / sub).is_dir()), folder)


class StoredLowResolution(Dataset):
    """A test set whose low-resolution inputs are files (EDSR's benchmark layout: ``<set>/LR_bicubic/X<s>/
    <name>x<s>.png`` beside ``<set>/HR/<name>.png``), each HR image cropped from the top left to ``scale`` times
    its LR file."""

    def __init__(self, hr: FolderImages, lr_folder: Path, scale: int, benchmark: str) -> None:
        self.hr, self.scale, self.benchmark = hr, scale, benchmark
        self.lr_paths = [lr_folder / f"{path.stem}x{scale}{path.suffix}" for path in hr.paths]
        missing = [str(p) for p in self.lr_paths if not p.is_file()]
        if missing:
            raise DataError(f"test set {benchmark}: {len(missing)} low-resolution file(s) missing in {lr_folder}: "
                            f"{', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))

    def __len__(self) -> int:
        return len(self.hr)

    def __getitem__(self, index: int) -> dict[str, Any]:
        lq = as_float(read_image(self.lr_paths[index]))
        gt = as_float(self.hr[index])
        height, width = lq.shape[0] * self.scale, lq.shape[1] * self.scale
        if gt.shape[0] < height or gt.shape[1] < width:
            raise DataError(f"{self.lr_paths[index]} x{self.scale} is larger than its HR image {self.hr.paths[index]}")
        return {"lq": to_tensor(lq), "gt": to_tensor(gt[:height, :width]), "family": "sr",
                "benchmark": self.benchmark, "name": self.hr.names[index]}


def sr_datamodule(
    degradation: BicubicDownsample,
    scale: int | None = None,
    train_root: str | None = None,
    test_root: str | None = None,
    test_sets: Sequence[str] = ("Set5", "Set14", "B100", "Urban100", "Manga109"),
    lr_patch: int = 48,
    embedded_max_side: int | None = None,
    patch_size: int | None = None,
    lr_files: bool = True,
    seed: int = 0,
    **loader_options: Any,
) -> RestorationDataModule:
    """One training family (``sr``) and one benchmark per test set, named ``<set>_x<scale>`` (lower case).

    ``lr_files``: read a test set's ``LR_bicubic/X<scale>`` files where it has them (else, and for up-sampled
    inputs, they are made with the suite's MATLAB bicubic). ``patch_size`` is the network's input side in
    training, for the memory preflight: it must equal
    ``lr_patch`` (the config sets it so), or ``lr_patch * scale`` for up-sampled inputs."""
    if not isinstance(degradation, BicubicDownsample):
        raise TypeError(f"data=sr needs data.degradation to be a BicubicDownsample, got {type(degradation).__name__}")
    if scale is not None and scale != degradation.factor:
        raise ValueError(f"data.scale={scale} but data.degradation.scale={degradation.factor}: set data.scale only")
    scale = degradation.factor
    network_patch = lr_patch * scale if degradation.upsample else lr_patch
    if patch_size is not None and patch_size != network_patch:
        raise ValueError(f"data.patch_size={patch_size} is the network's input side, {network_patch} here; set "
                         "data.lr_patch instead")
    train_source = FolderImages(train_root) if train_root else EmbeddedImages("train", max_side=embedded_max_side)
    train = {"sr": DegradedPatches(train_source, degradation, patch_size=lr_patch * scale, family="sr", seed=seed)}
    if test_root:
        sources = {name: FolderImages(hr_folder(Path(test_root).expanduser(), name)) for name in test_sets}
    else:
        sources = {"synth": EmbeddedImages("test", max_side=embedded_max_side)}
    evaluation: dict[str, Dataset] = {}
    for name, source in sources.items():
        benchmark = f"{name.lower()}_x{scale}"
        stored = Path(test_root).expanduser() / name / "LR_bicubic" / f"X{scale}" if test_root else None
        if lr_files and stored is not None and stored.is_dir() and not degradation.upsample:
            evaluation[benchmark] = StoredLowResolution(source, stored, scale, benchmark)
        else:
            evaluation[benchmark] = DegradedImages(source, degradation, benchmark=benchmark, family="sr",
                                                   crop_multiple=scale, crop_anchor="top_left")
    datamodule = RestorationDataModule(train=train, val=evaluation, test=evaluation, seed=seed, **loader_options)
    # a folder named after a published set but holding another number of images is compared with nothing
    datamodule.benchmark_notes = {
        f"{name.lower()}_x{scale}": f"{len(source)} images where the published {name} has {PUBLISHED_COUNTS[name]}"
        for name, source in sources.items()
        if name in PUBLISHED_COUNTS and len(source) != PUBLISHED_COUNTS[name]
    }
    # what the network must do to the input's size (read by the run assembly): the scale, or 1 for an input
    # already up-sampled to the target's size
    datamodule.output_scale = 1 if degradation.upsample else scale
    return datamodule
