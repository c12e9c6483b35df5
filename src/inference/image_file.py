"""Users' image files in and out of the network without losing what the network does not touch.

The network sees RGB floats in [0, 1]. What it does not see is kept: the alpha channel (bit for bit), the
bit depth (8 or 16), grayscale-ness, EXIF orientation (applied on reading, so the pixels are upright and the
written file carries no rotation tag), EXIF and ICC metadata where the format stores them.
Pillow decodes 16-bit colour PNG/TIFF as 8-bit, so those go through OpenCV instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from src.utils.atomic import write_atomic, write_bytes_atomic
from src.utils.errors import ImageReadError

#: file suffixes read as images (case-insensitive)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
#: formats that can hold 16 bits per channel
SIXTEEN_BIT_SUFFIXES = (".png", ".tif", ".tiff")
#: formats that can hold an alpha channel
ALPHA_SUFFIXES = (".png", ".tif", ".tiff", ".webp")
#: BT.601 luma weights: how a restored RGB image goes back to grayscale (what Pillow's ``convert("L")`` uses)
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_EXIF_ORIENTATION = 0x0112
#: modes converted to RGB on reading, whose ICC profile then no longer applies
_OTHER_COLOUR_SPACES = ("CMYK", "YCbCr", "LAB", "HSV")


@dataclass
class UserImage:
    """A decoded image: ``rgb`` for the network, the rest to write the result back like the input."""

    rgb: np.ndarray  # H x W x 3 float32 in [0, 1]
    alpha: np.ndarray | None  # H x W, the file's own integer type, untouched
    grayscale: bool
    bit_depth: int  # 8 or 16
    exif: bytes | None = None
    icc_profile: bytes | None = None
    #: frames in the file (animated PNG/WebP, multi-page TIFF); only the first is read
    frames: int = 1


def _is_16bit_colour(img: object) -> bool:
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
        raise ValueError(f"cannot read 16-bit colour image {path}")
    order = [2, 1, 0, 3][: array.shape[2]]  # OpenCV is BGR(A)
    return orient(array[..., order], orientation)


def _pixels(img: object, path: Path, deep_colour: bool) -> np.ndarray:
    """The upright pixels as H x W (x C) uint8/uint16, gray, gray+alpha, RGB or RGBA."""
    from PIL import ImageOps

    if deep_colour:
        return _read_16bit_colour(path, img.getexif().get(_EXIF_ORIENTATION, 1))
    img = ImageOps.exif_transpose(img)
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(img)
        if values.min() < 0 or values.max() > 65535:
            raise ValueError(f"image {path} has 32-bit integer pixels outside 0..65535")
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


def read_user_image(path: str | Path) -> UserImage:
    """Decode ``path``; raises ``ValueError`` naming the file when it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            deep_colour = _is_16bit_colour(img)  # before anything loads the pixels and clears ``img.tile``
            exif, icc = img.getexif(), img.info.get("icc_profile")
            frames = int(getattr(img, "n_frames", 1))
            if img.mode in _OTHER_COLOUR_SPACES:
                icc = None  # a CMYK/Lab profile does not describe the RGB pixels we write
            pixels = _pixels(img, path, deep_colour)
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as err:
        raise ImageReadError(f"cannot read image {path}: {err}") from err
    if pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"image {path} has unsupported pixel type {pixels.dtype}")
    if _EXIF_ORIENTATION in exif:
        del exif[_EXIF_ORIENTATION]  # the pixels are upright now
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    colour = pixels[..., :1] if channels in (1, 2) else pixels[..., :3]
    alpha = pixels[..., -1] if channels in (2, 4) else None
    scale = 65535.0 if pixels.dtype == np.uint16 else 255.0
    rgb = colour.astype(np.float32) / np.float32(scale)
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    return UserImage(
        rgb=np.ascontiguousarray(rgb),
        alpha=None if alpha is None else np.ascontiguousarray(alpha),
        grayscale=channels in (1, 2),
        bit_depth=16 if pixels.dtype == np.uint16 else 8,
        exif=exif.tobytes() if len(exif) else None,
        icc_profile=icc,
        frames=frames,
    )


def _quantise(values: np.ndarray, bit_depth: int) -> np.ndarray:
    peak = 65535.0 if bit_depth == 16 else 255.0
    return np.round(np.clip(values, 0.0, 1.0) * peak).astype(np.uint16 if bit_depth == 16 else np.uint8)


def _alpha_at_depth(alpha: np.ndarray, bit_depth: int) -> np.ndarray:
    if alpha.dtype == np.uint16 and bit_depth == 8:
        return np.round(alpha / 257.0).astype(np.uint8)
    return alpha


def encode(restored: np.ndarray, like: UserImage, suffix: str) -> np.ndarray:
    """The pixels to write: restored RGB floats back to ``like``'s channels and bit depth (as ``suffix`` allows)."""
    bit_depth = like.bit_depth if suffix in SIXTEEN_BIT_SUFFIXES else 8
    colour = (restored @ LUMA)[..., None] if like.grayscale else restored
    pixels = _quantise(colour, bit_depth)
    if like.alpha is not None and suffix in ALPHA_SUFFIXES:
        pixels = np.concatenate([pixels, _alpha_at_depth(like.alpha, bit_depth)[..., None]], axis=2)
    return pixels[..., 0] if pixels.shape[2] == 1 else pixels


def _save_pillow(pixels: np.ndarray, file: BinaryIO, suffix: str, like: UserImage) -> None:
    from PIL import Image

    if pixels.dtype == np.uint16:  # 16-bit grayscale (16-bit colour goes through OpenCV)
        if pixels.ndim != 2:
            raise ValueError("16-bit grayscale with alpha cannot be written")
        img = Image.fromarray(pixels.astype("<u2"))  # mode I;16
    else:
        img = Image.fromarray(pixels)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP",
           ".webp": "WEBP"}[suffix]
    options: dict[str, object] = {}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = 95
    if fmt in ("JPEG", "WEBP", "PNG") and like.exif:
        options["exif"] = like.exif
    if fmt != "BMP" and like.icc_profile:
        options["icc_profile"] = like.icc_profile
    img.save(file, format=fmt, **options)


def _encode_16bit_colour(pixels: np.ndarray, suffix: str, path: Path) -> bytes:
    import cv2

    order = [2, 1, 0, 3][: pixels.shape[2]]  # OpenCV is BGR(A)
    ok, data = cv2.imencode(suffix, np.ascontiguousarray(pixels[..., order]))
    if not ok:
        raise ValueError(f"OpenCV could not encode {path} as 16-bit {suffix}")
    return data.tobytes()


def write_user_image(path: str | Path, restored: np.ndarray, like: UserImage) -> Path:
    """Write ``restored`` (H x W x 3 floats) as ``like`` was stored; atomic (:mod:`src.utils.atomic`)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(f"cannot write {path}: unknown image suffix (use one of {', '.join(IMAGE_SUFFIXES)})")
    pixels = encode(restored, like, suffix)
    if pixels.dtype == np.uint16 and pixels.ndim == 3:
        return write_bytes_atomic(path, _encode_16bit_colour(pixels, suffix, path))
    return write_atomic(path, lambda file: _save_pillow(pixels, file, suffix, like))
