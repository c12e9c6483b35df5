"""Datasets over the published benchmark files, sampled the way the official all-in-one codes sample them.

* :class:`PairedPatches` - training pairs (rain, haze, blur, low light): aligned random crop of both images,
  one of the 7 non-identity dihedral transforms.
* :class:`NoisyPatches` - training noise: clean crop, dihedral transform, then Gaussian noise added to the
  uint8 crop with truncation; one list of the clean images per sigma, each repeated.
* :class:`PairedImages` / :class:`NoisyImages` - fixed test pairs, centre-cropped to a multiple of 16.

Files are decoded (:func:`src.data.io.read_rgb8`) to uint8 once per sample and every crop is a view, so only
``patch_size``^2 pixels are ever converted to float. Training randomness comes from
``rng_for(seed, epoch, index, family)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from src.data.degradations.base import rng_for
from src.data.io import IMAGE_SUFFIXES, image_size, read_rgb8
from src.data.transforms import NON_IDENTITY_DIHEDRAL, center_crop_to_multiple, dihedral, random_crop_box, to_tensor
from src.utils.errors import DataError


def to_unit(image: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1] by division, exactly as torchvision's ``ToTensor`` in the official codes."""
    return image.astype(np.float32) / np.float32(255.0)


# ----------------------------------------------------------------------------------------------- listing


def list_images(root: Path, folders: Sequence[str], recursive: bool = False) -> list[Path]:
    """Image files of ``folders`` (relative to ``root``), each folder sorted by relative path, in folder order."""
    out: list[Path] = []
    for folder in folders:
        base = root / folder
        files = base.rglob("*") if recursive else base.iterdir()
        found = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        out += sorted(found, key=lambda p: p.relative_to(base).as_posix())
    return out


def _same(stem: str) -> list[str]:
    return [stem]


def _rain(stem: str) -> list[str]:
    """Rain100L: ``rain-N`` pairs with ``norain-N``; copies that kept the same name on both sides also pair."""
    return [f"no{stem}", stem] if stem.startswith("rain-") else [stem]


def _haze(stem: str) -> list[str]:
    """RESIDE: hazy ``<id>_<A>_<beta>`` pairs with clear ``<id>`` (the id before the first underscore)."""
    return [stem.split("_", 1)[0]]


#: rule name -> the clean file stems (in order of preference) a degraded file's stem may pair with
PAIRING_RULES: dict[str, Callable[[str], list[str]]] = {"same": _same, "rain": _rain, "haze": _haze}
#: rules under which one clean image serves several degraded ones (unused clean images are no error)
MANY_TO_ONE = {"haze"}


@dataclass
class Pairing:
    """Degraded/clean pairs and what could not be paired."""

    pairs: list[tuple[Path, Path]] = field(default_factory=list)
    #: degraded files with no clean partner
    unpaired: list[Path] = field(default_factory=list)
    #: clean files that no degraded file pairs with
    unused: list[Path] = field(default_factory=list)
    #: clean stems present more than once (e.g. ``a.png`` and ``a.jpg``): pairing would be a guess
    ambiguous: list[Path] = field(default_factory=list)


def pair_files(degraded: Sequence[Path], clean: Sequence[Path], rule: str) -> Pairing:
    """Match each degraded file to a clean file by stem under ``rule`` (any image extension on either side)."""
    if rule not in PAIRING_RULES:
        raise ValueError(f"unknown pairing rule {rule!r}; expected one of {sorted(PAIRING_RULES)}")
    by_stem: dict[str, Path] = {}
    result = Pairing()
    for path in clean:
        if path.stem in by_stem:
            result.ambiguous.append(path)
        by_stem.setdefault(path.stem, path)
    used: set[str] = set()
    for path in degraded:
        stem = next((s for s in PAIRING_RULES[rule](path.stem) if s in by_stem), None)
        if stem is None:
            result.unpaired.append(path)
        else:
            used.add(stem)
            result.pairs.append((path, by_stem[stem]))
    result.unused = [p for s, p in by_stem.items() if s not in used]
    return result


# ----------------------------------------------------------------------------------------------- training


def _aligned_patch(
    images: list[np.ndarray], files: Sequence[Path], size: int, multiple: int, rng: np.random.Generator, augment: bool
) -> list[np.ndarray]:
    """The same random crop (and dihedral transform) of each image, after the official centre crop to ``multiple``."""
    images = [center_crop_to_multiple(im, multiple) for im in images]
    shapes = {im.shape[:2] for im in images}
    if len(shapes) > 1:
        sizes = ", ".join(f"{f} ({im.shape[1]}x{im.shape[0]})" for f, im in zip(files, images))
        raise DataError(f"paired images differ in size: {sizes}")
    height, width = images[0].shape[:2]
    try:
        top, left = random_crop_box(height, width, size, rng)
    except ValueError as err:
        raise DataError(f"{files[0]}: {err}") from err
    patches = [im[top : top + size, left : left + size] for im in images]
    if augment:
        k = int(rng.choice(NON_IDENTITY_DIHEDRAL))
        patches = [dihedral(p, k) for p in patches]
    return patches


def _sample(lq: np.ndarray, gt: np.ndarray, family: str, benchmark: str, name: str) -> dict[str, Any]:
    return {"lq": to_tensor(lq), "gt": to_tensor(gt), "family": family, "benchmark": benchmark, "name": name}


class PairedPatches(Dataset):
    """Training patches of a paired set, each pair listed ``repeats`` times an epoch.

    Indexed by ``(epoch, index)`` keys (a bare ``index`` means epoch 0); image ``index % len(pairs)``.
    """

    def __init__(
        self,
        pairs: Sequence[tuple[Path, Path]],
        family: str,
        patch_size: int = 128,
        repeats: int = 1,
        seed: int = 0,
        crop_multiple: int = 16,
        augment: bool = True,
    ) -> None:
        if not pairs:
            raise ValueError(f"the training set of family {family!r} has no pairs")
        self.pairs = list(pairs)
        self.family = family
        self.patch_size = int(patch_size)
        self.repeats = int(repeats)
        self.seed = int(seed)
        self.crop_multiple = int(crop_multiple)
        self.augment = augment

    @property
    def distinct(self) -> int:
        return len(self.pairs)

    def __len__(self) -> int:
        return len(self.pairs) * self.repeats

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        files = self.pairs[index % len(self.pairs)]
        rng = rng_for(self.seed, epoch, index, self.family)
        lq, gt = _aligned_patch([read_rgb8(f) for f in files], files, self.patch_size, self.crop_multiple, rng,
                                self.augment)
        return _sample(to_unit(lq), to_unit(gt), self.family, "", files[0].stem)


def add_noise_uint8(clean: np.ndarray, noise: np.ndarray, sigma: float) -> np.ndarray:
    """The official codes' noise: ``clip(clean + noise * sigma, 0, 255)`` cast to uint8 by truncation."""
    return np.clip(clean + noise * sigma, 0, 255).astype(np.uint8)


class NoisyPatches(Dataset):
    """Training patches of clean images with Gaussian noise, one list per sigma, each list ``repeats`` times.

    This is "x3 per sigma (three lists)" of the official code: with sigmas (15, 25, 50) and ``repeats=3``
    an epoch holds ``3 * 3 * len(paths)`` samples; index ``i`` uses sigma ``sigmas[i // (repeats * n)]`` and
    image ``i % n``. Noise is added on the uint8 crop after the crop and the dihedral transform.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        sigmas: Sequence[float] = (15, 25, 50),
        family: str = "noise",
        patch_size: int = 128,
        repeats: int = 3,
        seed: int = 0,
        crop_multiple: int = 16,
        augment: bool = True,
    ) -> None:
        if not paths:
            raise ValueError(f"the training set of family {family!r} has no clean images")
        if not sigmas:
            raise ValueError("NoisyPatches needs at least one sigma")
        self.paths = list(paths)
        self.sigmas = tuple(float(s) for s in sigmas)
        self.family = family
        self.patch_size = int(patch_size)
        self.repeats = int(repeats)
        self.seed = int(seed)
        self.crop_multiple = int(crop_multiple)
        self.augment = augment

    @property
    def distinct(self) -> int:
        return len(self.paths)

    def __len__(self) -> int:
        return len(self.paths) * self.repeats * len(self.sigmas)

    def sigma_of(self, index: int) -> float:
        return self.sigmas[index // (len(self.paths) * self.repeats)]

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        path = self.paths[index % len(self.paths)]
        rng = rng_for(self.seed, epoch, index, self.family)
        (gt,) = _aligned_patch([read_rgb8(path)], [path], self.patch_size, self.crop_multiple, rng, self.augment)
        lq = add_noise_uint8(gt, rng.standard_normal(gt.shape), self.sigma_of(index))
        return _sample(to_unit(lq), to_unit(gt), self.family, "", path.stem)


# ----------------------------------------------------------------------------------------------- test sets


def _cropped(image: np.ndarray, multiple: int, path: Path) -> np.ndarray:
    try:
        return center_crop_to_multiple(image, multiple)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err


class PairedImages(Dataset):
    """A fixed test benchmark of (degraded, clean) pairs, each image centre-cropped to ``crop_multiple``."""

    def __init__(self, pairs: Sequence[tuple[Path, Path]], benchmark: str, family: str, crop_multiple: int = 16):
        if not pairs:
            raise ValueError(f"benchmark {benchmark!r} has no pairs")
        self.pairs = list(pairs)
        self.benchmark = benchmark
        self.family = family
        self.crop_multiple = int(crop_multiple)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        lq_path, gt_path = self.pairs[index]
        lq = _cropped(read_rgb8(lq_path), self.crop_multiple, lq_path)
        gt = _cropped(read_rgb8(gt_path), self.crop_multiple, gt_path)
        if lq.shape != gt.shape:
            raise DataError(f"benchmark {self.benchmark}: {lq_path} ({lq.shape[1]}x{lq.shape[0]}) and {gt_path} "
                             f"({gt.shape[1]}x{gt.shape[0]}) differ in size after the centre crop")
        return _sample(to_unit(lq), to_unit(gt), self.family, self.benchmark, lq_path.stem)


#: test-noise protocols: how the noisy test images are realised
NOISE_PROTOCOLS = ("promptir", "kair")


@lru_cache(maxsize=8)
def _promptir_states(shapes: tuple[tuple[int, ...], ...], order: tuple[float, ...], seed: int) -> dict:
    """The legacy numpy RNG state before each (sigma, image) draw of PromptIR's test run.

    PromptIR seeds numpy once (``np.random.seed(0)``) and then draws ``randn`` of each (cropped) image's
    shape for sigma 15 over all images, then 25, then 50. The state is recorded before every draw, so any
    image of any sigma can be realised alone, in any worker, with the official pixels.
    """
    rs = np.random.RandomState(seed)
    states = {}
    for sigma in order:
        for i, shape in enumerate(shapes):
            states[(sigma, i)] = rs.get_state()
            rs.standard_normal(shape)
    return states


class NoisyImages(Dataset):
    """Clean test images with Gaussian noise of ``sigma`` realised by a named protocol.

    * ``promptir``: the official PromptIR/AdaIR/MoCE-IR test run. Centre crop first, then
      ``clip(clean + randn * sigma, 0, 255)`` truncated to uint8, from one numpy stream seeded once with
      ``seed`` and consumed for the sigmas of ``order`` in sequence (15, 25, 50) over the sorted images. The
      sigma-25 images are therefore the same whether or not sigma 15 is evaluated.
    * ``kair``: KAIR/DnCNN (``main_test_dncnn.py``): numpy reseeded with ``seed`` for every image,
      ``float32(clean / 255) + normal(0, sigma / 255)`` over the whole image, no clipping or quantisation
      (values may leave [0, 1]); the centre crop comes after the noise.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        sigma: float,
        benchmark: str,
        family: str = "noise",
        protocol: str = "promptir",
        seed: int = 0,
        order: Sequence[float] = (15, 25, 50),
        crop_multiple: int = 16,
    ) -> None:
        if not paths:
            raise ValueError(f"benchmark {benchmark!r} has no clean images")
        if protocol not in NOISE_PROTOCOLS:
            raise ValueError(f"unknown noise protocol {protocol!r}; expected one of {NOISE_PROTOCOLS}")
        self.order = tuple(float(s) for s in order)
        if protocol == "promptir" and float(sigma) not in self.order:
            raise ValueError(f"sigma {sigma} of benchmark {benchmark!r} is not in the noise order {self.order}")
        self.paths = list(paths)
        self.sigma = float(sigma)
        self.benchmark = benchmark
        self.family = family
        self.protocol = protocol
        self.seed = int(seed)
        self.crop_multiple = int(crop_multiple)
        self._states: dict | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def prepare(self) -> None:
        """Realise the PromptIR noise stream's states now (about 2 s for CBSD68), e.g. before loader workers start.

        The three sigma benchmarks of one image list share the work (cached); workers inherit the result.
        """
        if self.protocol == "promptir" and self._states is None:
            m = max(self.crop_multiple, 1)
            shapes = tuple((h - h % m, w - w % m, 3) for h, w in (image_size(p) for p in self.paths))
            self._states = _promptir_states(shapes, self.order, self.seed)

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The (noisy, clean) float32 HxWx3 arrays of image ``index``."""
        path = self.paths[index]
        clean = read_rgb8(path)
        if self.protocol == "kair":
            rs = np.random.RandomState(self.seed)
            noisy = to_unit(clean)
            noisy += rs.normal(0, self.sigma / 255.0, noisy.shape)  # in place: stays float32, as in KAIR
            return _cropped(noisy, self.crop_multiple, path), _cropped(to_unit(clean), self.crop_multiple, path)
        clean = _cropped(clean, self.crop_multiple, path)
        self.prepare()
        assert self._states is not None
        rs = np.random.RandomState()
        rs.set_state(self._states[(self.sigma, index)])
        noisy = add_noise_uint8(clean, rs.standard_normal(clean.shape), self.sigma)
        return to_unit(noisy), to_unit(clean)

    def __getitem__(self, index: int) -> dict[str, Any]:
        lq, gt = self.pair(index)
        return _sample(lq, gt, self.family, self.benchmark, self.paths[index].stem)
