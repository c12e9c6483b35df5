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

from src.data.io import IMAGE_SUFFIXES, decode
from src.utils.atomic import write_atomic, write_bytes_atomic

#: formats that can hold 16 bits per channel
SIXTEEN_BIT_SUFFIXES = (".png", ".tif", ".tiff")
#: formats that can hold an alpha channel
ALPHA_SUFFIXES = (".png", ".tif", ".tiff", ".webp")
#: BT.601 luma weights: how a restored RGB image goes back to grayscale (what Pillow's ``convert("L")`` uses)
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


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


def read_user_image(path: str | Path) -> UserImage:
    """Decode ``path`` upright (:func:`src.data.io.decode`); raises ImageReadError naming the file."""
    decoded = decode(path, upright=True)
    colour = decoded.colour
    scale = 65535.0 if colour.dtype == np.uint16 else 255.0
    rgb = colour.astype(np.float32) / np.float32(scale)
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    alpha = decoded.alpha
    return UserImage(
        rgb=np.ascontiguousarray(rgb),
        alpha=None if alpha is None else np.ascontiguousarray(alpha),
        grayscale=decoded.grayscale,
        bit_depth=16 if colour.dtype == np.uint16 else 8,
        exif=decoded.exif.tobytes() if len(decoded.exif) else None,
        icc_profile=decoded.icc_profile,
        frames=decoded.frames,
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
