"""Reading RAW captures: camera files through rawpy, or LED's prepared ``.npz`` frames, as packed planes.

A :class:`RawFrame` keeps the packed digital numbers with the black and white levels of each plane, so that
normalising (``(im - black) / (white - black)``) and the noise model's DN units are both at hand. rawpy (LibRaw)
is an optional dependency (``pip install 'aioir[raw]'``); ``.npz`` files (LED's ``bayer_to_npy.py`` and
sub-image outputs: ``im`` packed, ``black_level``, ``white_level``) need nothing and are read without pickle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from src.data.raw.bayer import pack_bayer
from src.utils.errors import DataError

#: the camera RAW formats of SID and ELD (Sony .ARW, Nikon .NEF, Canon .CR2) and DNG, read through rawpy
CAMERA_SUFFIXES = (".arw", ".nef", ".cr2", ".dng", ".raf", ".orf", ".rw2")
#: every suffix a RAW folder may hold
RAW_SUFFIXES = CAMERA_SUFFIXES + (".npz",)
#: SID's exposure time in a file name (``10003_00_0.04s.ARW``), as LED reads it
EXPOSURE = re.compile(r"_(\d+(?:\.\d+)?)s\.")


@dataclass
class RawFrame:
    """A packed capture: ``planes`` 4 x h x w in DN (R, G1, B, G2), the per-plane ``black`` and ``white`` levels."""

    planes: np.ndarray
    black: np.ndarray
    white: np.ndarray
    name: str

    @property
    def span(self) -> np.ndarray:
        """``white - black`` per plane (the DN of a full-scale signal)."""
        return (self.white - self.black).astype(np.float64)

    def normalised(self) -> np.ndarray:
        """4 x h x w float32: ``(planes - black) / (white - black)``, not clipped."""
        return ((self.planes - self.black[:, None, None]) / self.span[:, None, None]).astype(np.float32)


def require_rawpy(path: Path | None = None) -> ModuleType:
    """rawpy, or an error naming the file that needs it and how to install it."""
    try:
        import rawpy
    except ImportError:
        where = f" to read {path}" if path is not None else ""
        raise ImportError(f"rawpy is needed{where} (camera RAW files): pip install 'aioir[raw]' (or pip install "
                          "rawpy); LED's prepared .npz frames are read without it") from None
    return rawpy


def _levels(values: object, path: Path, what: str) -> np.ndarray:
    levels = np.asarray(values, dtype=np.float64).reshape(-1)
    if levels.size == 1:
        levels = np.repeat(levels, 4)
    if levels.size != 4:
        raise DataError(f"{path}: {what} has {levels.size} values, expected 1 or 4 (one per Bayer plane)")
    return levels


def read_camera_file(path: Path) -> RawFrame:
    """A camera RAW file through rawpy: the visible mosaic packed by its ``raw_pattern``, per-plane levels."""
    rawpy = require_rawpy(path)
    try:
        with rawpy.imread(str(path)) as raw:
            mosaic = np.asarray(raw.raw_image_visible, dtype=np.float32).copy()
            pattern = np.asarray(raw.raw_pattern).copy()
            black = _levels(raw.black_level_per_channel, path, "black_level_per_channel")
            white_values = raw.camera_white_level_per_channel
            white = _levels(white_values if white_values is not None else raw.white_level, path, "white level")
    except (OSError, ValueError) as err:  # LibRaw's errors derive from these
        raise DataError(f"{path}: rawpy could not read it as a camera RAW file ({err})") from None
    try:
        planes = pack_bayer(mosaic, pattern)
    except ValueError as err:
        raise DataError(f"{path}: {err} (not a Bayer sensor?)") from None
    return RawFrame(planes, black, white, path.stem)


def read_npz(path: Path) -> RawFrame:
    """LED's prepared frame: ``im`` (4 x h x w packed DN, or an h x w mosaic with ``raw_pattern``), levels."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [key for key in ("im", "black_level", "white_level") if key not in data]
            if missing:
                raise DataError(f"{path}: an LED RAW .npz holds im, black_level and white_level; missing {missing}")
            image = np.asarray(data["im"], dtype=np.float32)
            pattern = np.asarray(data["raw_pattern"]) if "raw_pattern" in data else None
            black = _levels(data["black_level"], path, "black_level")
            white = _levels(data["white_level"], path, "white_level")
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not a readable .npz of arrays ({err})") from None
    if image.ndim == 2:
        image = pack_bayer(image, pattern) if pattern is not None else pack_bayer(image)
    if image.ndim != 3 or image.shape[0] != 4:
        raise DataError(f"{path}: im has shape {image.shape}, expected 4 x h x w packed RAW or an h x w mosaic")
    name = path.name[: -len(".npz")]
    return RawFrame(image, black, white, Path(name).stem)


def read_raw(path: str | Path) -> RawFrame:
    """A RAW capture from ``path`` (a camera file, or LED's ``.npz``), packed."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"RAW file {file} does not exist")
    suffix = file.suffix.lower()
    if suffix == ".npz":
        return read_npz(file)
    if suffix in CAMERA_SUFFIXES:
        return read_camera_file(file)
    raise DataError(f"{file}: not a RAW file this suite reads (suffixes: {', '.join(RAW_SUFFIXES)})")


def exposure_seconds(path: str | Path) -> float:
    """The exposure time SID writes into its file names (``..._0.1s.ARW`` -> 0.1)."""
    match = EXPOSURE.search(Path(path).name + ("." if not Path(path).suffix else ""))
    if match is None:
        raise DataError(f"{path}: no exposure time in its name (SID names files <scene>_<shot>_<seconds>s.<ext>)")
    return float(match.group(1))


def raw_files(folder: str | Path) -> list[Path]:
    """The RAW files of ``folder`` (sorted), or an error naming the folder and what it holds."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataError(f"RAW folder {root} does not exist")
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in RAW_SUFFIXES)
    if not files:
        kinds = sorted({p.suffix for p in root.iterdir() if p.is_file()})
        raise DataError(f"RAW folder {root} holds no RAW files ({', '.join(RAW_SUFFIXES)}); it has "
                        f"{', '.join(kinds) or 'no files'}")
    return files
