"""The one image decoder of the suite: datasets, evaluation and restore all read files through :func:`decode`.

:func:`decode` returns a file's own pixels (uint8 or uint16; gray, gray+alpha, RGB or RGBA) and what the
pixels do not hold (EXIF, ICC profile, frame count). The readers on top differ only in the conversion they
promise, each named for it:

* :func:`read_rgb8` - HxWx3 uint8 RGB, as the official codes read benchmark files (PIL's ``convert("RGB")``
  semantics: gray repeated, alpha dropped; 16-bit rounded by ``x * 255 / 65535``; no EXIF rotation);
* :func:`read_image` - HxWx3 float32 in [0, 1] at the file's own precision (16-bit kept as 16-bit), for
  clean images that synthetic degradations start from;
* ``src.inference.image_file.read_user_image`` - a user's photograph, upright, with alpha, depth and
  grayscale kept so that restore writes it back as it came.

Every failure is an :class:`~src.utils.errors.ImageReadError` naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from src.utils.errors import ImageReadError

#: file suffixes read as images (case-insensitive), by datasets and by restore
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
EXIF_ORIENTATION = 0x0112
#: modes converted to RGB on decoding, whose ICC profile then no longer describes the pixels
OTHER_COLOUR_SPACES = ("CMYK", "YCbCr", "LAB", "HSV")


@dataclass
class Decoded:
    """A file's pixels (H x W x C, C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA; uint8 or uint16) and metadata."""

    pixels: np.ndarray
    exif: Any = None  # PIL.Image.Exif
    icc_profile: bytes | None = None
    frames: int = 1

    @property
    def grayscale(self) -> bool:
        return self.pixels.shape[2] in (1, 2)

    @property
    def alpha(self) -> np.ndarray | None:
        return self.pixels[..., -1] if self.pixels.shape[2] in (2, 4) else None

    @property
    def colour(self) -> np.ndarray:
        """The pixels without alpha: H x W x 1 (gray) or H x W x 3."""
        return self.pixels[..., :1] if self.grayscale else self.pixels[..., :3]


def _is_16bit_colour(img: Any) -> bool:
    """Pillow reports 16-bit RGB(A) as mode RGB/RGBA and reduces it to 8 bits; the tile's raw mode tells."""
    if getattr(img, "mode", "") not in ("RGB", "RGBA"):
        return False
    for tile in getattr(img, "tile", []) or []:
        args = tile.args if hasattr(tile, "args") else tile[3]
        rawmode = args[0] if isinstance(args, tuple) else args
        if isinstance(rawmode, str) and ";16" in rawmode:
            return True
    return False


def orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an H x W (x C) array, as ``PIL.ImageOps.exif_transpose`` does."""
    ops = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(ops.get(orientation, ops[1])(array))


def _read_16bit_colour(path: Path, orientation: int) -> np.ndarray:
    import cv2

    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None or array.dtype != np.uint16 or array.ndim != 3:
        raise ImageReadError(f"cannot read 16-bit colour image {path}")
    order = [2, 1, 0, 3][: array.shape[2]]  # OpenCV is BGR(A)
    return orient(array[..., order], orientation)


def _pixels(img: Any, path: Path, deep_colour: bool, upright: bool) -> np.ndarray:
    """The pixels as H x W (x C) uint8/uint16: gray, gray+alpha, RGB or RGBA."""
    from PIL import ImageOps

    if deep_colour:  # Pillow would keep only the high byte
        return _read_16bit_colour(path, img.getexif().get(EXIF_ORIENTATION, 1) if upright else 1)
    if upright:
        img = ImageOps.exif_transpose(img)
    img.load()
    mode = img.mode
    if mode == "F":
        raise ImageReadError(f"image {path} holds floating-point pixels; convert it to 8 or 16 bit")
    if mode.startswith("I"):  # 16-bit (I;16*) or 32-bit integer grayscale
        values = np.asarray(img)
        if values.min() < 0 or values.max() > 65535:
            raise ImageReadError(f"image {path} has 32-bit integer pixels outside 0..65535")
        return values.astype(np.uint16)
    if mode == "1":
        img = img.convert("L")
    elif mode in ("P", "PA"):
        img = img.convert("RGBA" if "transparency" in img.info or mode == "PA" else "RGB")
    elif mode == "La":
        img = img.convert("LA")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in mode or "a" in mode else "RGB")
    return np.asarray(img)


def decode(path: str | Path, upright: bool = False) -> Decoded:
    """The pixels of ``path`` as stored (``upright``: with the EXIF orientation applied, the tag then removed)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            deep_colour = _is_16bit_colour(img)  # before anything loads the pixels and clears ``img.tile``
            exif, icc = img.getexif(), img.info.get("icc_profile")
            frames = int(getattr(img, "n_frames", 1))
            if img.mode in OTHER_COLOUR_SPACES:
                icc = None  # a CMYK/Lab profile does not describe the RGB pixels we return
            pixels = _pixels(img, path, deep_colour, upright)
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as err:
        raise ImageReadError(f"cannot read image {path}: {err}") from err
    if pixels.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(f"image {path} has unsupported pixel type {pixels.dtype}")
    if upright and EXIF_ORIENTATION in exif:
        del exif[EXIF_ORIENTATION]  # the pixels are upright now
    return Decoded(pixels if pixels.ndim == 3 else pixels[..., None], exif, icc, frames)


def scale16(array: np.ndarray) -> np.ndarray:
    """16-bit values to uint8 by ``round(x * 255 / 65535)``, the official codes' conversion."""
    return np.rint(np.clip(array.astype(np.float64), 0, 65535) * (255.0 / 65535.0)).astype(np.uint8)


def read_rgb8(path: str | Path) -> np.ndarray:
    """Decode ``path`` to an HxWx3 uint8 RGB array, as the official codes read benchmark files.

    Conversions: grayscale, palette and CMYK images become RGB (PIL's ``convert("RGB")``), an alpha channel is
    dropped, 16-bit images (grayscale or colour) are rounded to 8 bits by ``x * 255 / 65535``; no EXIF rotation.
    """
    colour = decode(path).colour
    if colour.dtype == np.uint16:
        colour = scale16(colour)
    return np.ascontiguousarray(np.repeat(colour, 3, axis=2) if colour.shape[2] == 1 else colour)


def read_image(path: str | Path) -> np.ndarray:
    """Decode ``path`` to HxWx3 float32 in [0, 1] at the file's precision (16-bit images divided by 65535).

    Conversions: grayscale is repeated to 3 channels, palette and CMYK images become RGB, alpha is dropped.
    """
    colour = decode(path).colour
    scaled = colour.astype(np.float32) / np.float32(65535.0 if colour.dtype == np.uint16 else 255.0)
    return np.ascontiguousarray(np.repeat(scaled, 3, axis=2) if scaled.shape[2] == 1 else scaled)


def image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` from the file header only (no decoding); an ImageReadError naming an unreadable file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            width, height = img.size
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ImageReadError(f"cannot read image {path}: {err}") from err
    return height, width


def as_float(image: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1]; float arrays pass through as float32."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) * np.float32(1.0 / 255.0)
    return image.astype(np.float32, copy=False)
