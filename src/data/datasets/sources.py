"""Clean-image sources: where the ground-truth images of a synthetic family come from.

A source is a sized, indexable list of named RGB images (HxWx3): uint8 where the file is 8-bit, so a
dataset can crop before it converts (:func:`src.data.io.as_float`), else float32 in [0, 1]. The embedded default
is the set of natural photographs that ships inside scikit-image (no download), split into fixed train
and test images; :class:`FolderImages` reads a user's folder.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from src.data.io import IMAGE_SUFFIXES, read_image
from src.utils.errors import DataError

#: scikit-image's bundled natural photographs (all ship in the wheel; none needs a download).
#: Train and test share no scene (both motorcycle views are train). Left out on purpose: the near-black
#: ``hubble_deep_field`` and ``retina`` (a fundus disc on black), whose dark clean crops contradict the
#: low-light family (a dark input whose target is equally dark).
EMBEDDED_SPLITS: dict[str, tuple[str, ...]] = {
    "train": (
        "astronaut",
        "coffee",
        "immunohistochemistry",
        "camera",
        "moon",
        "brick",
        "grass",
        "gravel",
        "coins",
        "motorcycle_left",
        "motorcycle_right",
    ),
    "test": ("chelsea", "rocket"),
}
#: stereo pair files that skimage.data exposes through one function
_EMBEDDED_FILES = {"motorcycle_left": "motorcycle_left.png", "motorcycle_right": "motorcycle_right.png"}


@lru_cache(maxsize=64)
def _embedded_uint8(name: str) -> np.ndarray:
    import skimage.data

    if name in _EMBEDDED_FILES:
        from skimage import io

        image = io.imread(Path(skimage.data.data_dir) / _EMBEDDED_FILES[name])
    else:
        image = getattr(skimage.data, name)()
    if image.ndim == 2:  # grayscale photographs become 3 equal channels
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


class EmbeddedImages:
    """scikit-image's natural photographs, ``split`` = ``train`` or ``test`` (or an explicit name list)."""

    def __init__(self, split: str = "train", names: list[str] | None = None, max_side: int | None = None):
        if names is None:
            if split not in EMBEDDED_SPLITS:
                raise ValueError(f"unknown embedded split {split!r}; expected one of {sorted(EMBEDDED_SPLITS)}")
            names = list(EMBEDDED_SPLITS[split])
        self.names = list(names)
        self.max_side = max_side

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> np.ndarray:
        image = _embedded_uint8(self.names[index])
        if self.max_side is not None and max(image.shape[:2]) > self.max_side:
            step = int(np.ceil(max(image.shape[:2]) / self.max_side))
            image = image[::step, ::step]
        return image


class FolderImages:
    """Every image file under ``root`` (recursively, sorted by path), decoded on access."""

    def __init__(self, root: str | Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES):
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(f"clean-image folder {self.root} does not exist")
        self.paths = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in suffixes)
        if not self.paths:
            raise FileNotFoundError(f"no images ({', '.join(suffixes)}) found under {self.root}")
        empty = [str(p) for p in self.paths if p.stat().st_size == 0]
        if empty:  # found from the directory entries, before training starts (a corrupt file is named when read)
            raise DataError(f"{len(empty)} empty image file(s) (0 bytes) under {self.root}: {', '.join(empty[:5])}"
                            + (f" ... and {len(empty) - 5} more" if len(empty) > 5 else ""))
        self.names = [str(p.relative_to(self.root).with_suffix("")) for p in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        return read_image(self.paths[index])


class ImageFiles:
    """Given image files, decoded on access: the clean images of a benchmark's test set, reused as the source of
    further test-only benchmarks (``data.extra_benchmarks`` on a published setting)."""

    def __init__(self, paths: list[Path], root: Path | None = None) -> None:
        if not paths:
            raise ValueError("ImageFiles needs at least one image file")
        self.paths = list(paths)
        self.names = [p.stem if root is None else str(p.relative_to(root).with_suffix("")) for p in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        return read_image(self.paths[index])
