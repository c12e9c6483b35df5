"""Datasets that synthesise a degradation family online from clean images.

Both yield the sample contract: ``{"lq", "gt"}`` float32 CxHxW tensors in [0, 1] plus ``family``,
``benchmark`` and ``name``. Every random choice comes from a generator keyed by the sample, so the
same key gives the same pixels in any worker, process or machine.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch.utils.data import Dataset

from src.data.degradations.base import Degradation, rng_for
from src.data.io import as_float
from src.data.transforms import (
    NON_IDENTITY_DIHEDRAL,
    center_crop_to_multiple,
    crop,
    dihedral,
    random_crop_box,
    to_tensor,
)


def _name(source: Any, index: int) -> str:
    names = getattr(source, "names", None)
    return str(names[index]) if names is not None else f"{index:05d}"


class DegradedPatches(Dataset):
    """Training patches: random aligned crop, one non-identity dihedral transform, then the degradation.

    The crop comes first so the (possibly costly) degradation only touches ``patch_size``^2 pixels.
    Indexed by ``(epoch, index)`` keys from :class:`~src.data.sampler.MixSampler` (a bare ``index`` means
    epoch 0). ``repeats`` lists each clean image that many times an epoch, as the official recipes do.
    """

    def __init__(
        self,
        source: Any,
        degradation: Degradation,
        patch_size: int = 128,
        family: str | None = None,
        repeats: int = 1,
        seed: int = 0,
        augment: bool = True,
    ) -> None:
        if len(source) == 0:
            raise ValueError(f"the clean-image source of family {family or degradation.family!r} is empty")
        self.source = source
        self.degradation = degradation
        self.patch_size = int(patch_size)
        self.family = family or degradation.family
        self.repeats = int(repeats)
        self.seed = int(seed)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.source) * self.repeats

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        rng = rng_for(self.seed, epoch, index, self.family)
        image_index = index % len(self.source)
        image = self.source[image_index]
        try:
            top, left = random_crop_box(image.shape[0], image.shape[1], self.patch_size, rng)
        except ValueError as err:
            raise ValueError(f"{self.family} image {_name(self.source, image_index)!r}: {err}") from err
        gt = as_float(crop(image, top, left, self.patch_size))
        if self.augment:
            gt = dihedral(gt, int(rng.choice(NON_IDENTITY_DIHEDRAL)))
        lq = self.degradation(gt, rng)
        return {
            "lq": to_tensor(lq),
            "gt": to_tensor(gt),
            "family": self.family,
            "benchmark": "",
            "name": _name(self.source, image_index),
        }


#: where a benchmark image is cropped to ``crop_multiple``: its centre (PromptIR's protocol) or from the top
#: left (the super-resolution papers' ``modcrop``)
CROP_ANCHORS = ("center", "top_left")


class DegradedImages(Dataset):
    """A fixed synthetic benchmark: whole images, cropped to ``crop_multiple`` (centre, or from the top left
    with ``crop_anchor="top_left"``), degraded once.

    The degradation of image ``i`` is keyed by ``(seed, i, benchmark)`` only, so the test pixels are the
    same on every run, in any order and any worker; degraded pairs are cached after the first access.
    """

    def __init__(
        self,
        source: Any,
        degradation: Degradation,
        benchmark: str,
        family: str | None = None,
        seed: int = 0,
        crop_multiple: int = 16,
        crop_anchor: str = "center",
    ) -> None:
        if len(source) == 0:
            raise ValueError(f"the clean-image source of benchmark {benchmark!r} is empty")
        if crop_anchor not in CROP_ANCHORS:
            raise ValueError(f"crop_anchor must be one of {CROP_ANCHORS}, got {crop_anchor!r}")
        self.crop_anchor = crop_anchor
        self.source = source
        self.degradation = degradation
        self.benchmark = benchmark
        self.family = family or degradation.family
        self.seed = int(seed)
        self.crop_multiple = int(crop_multiple)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.source)

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The (degraded, clean) float32 HxWxC arrays of image ``index``."""
        if index not in self._cache:
            image = self.source[index]
            if self.crop_anchor == "top_left":
                image = image[: image.shape[0] // self.crop_multiple * self.crop_multiple,
                              : image.shape[1] // self.crop_multiple * self.crop_multiple]
            gt = as_float(center_crop_to_multiple(image, self.crop_multiple))
            lq = self.degradation(gt, rng_for(self.seed, index, self.benchmark))
            self._cache[index] = (lq, gt)
        return self._cache[index]

    def __getitem__(self, index: int) -> dict[str, Any]:
        lq, gt = self.pair(index)
        return {
            "lq": to_tensor(lq),
            "gt": to_tensor(gt),
            "family": self.family,
            "benchmark": self.benchmark,
            "name": _name(self.source, index),
        }
