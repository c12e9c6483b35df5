"""Reading images as float32 RGB in [0, 1], with documented conversions and errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from src.utils.errors import ImageReadError


def read_image(path: str | Path) -> np.ndarray:
    """Decode ``path`` to HxWx3 float32 in [0, 1].

    Conversions: grayscale is repeated to 3 channels, an alpha channel is dropped, 16-bit images are
    scaled by 1/65535. Anything unreadable raises ``ValueError`` naming the file.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            array = np.asarray(img)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ImageReadError(f"cannot read image {path}: {err}") from err
    if array.dtype == np.uint16 or array.dtype == np.int32:
        scaled = array.astype(np.float32) / 65535.0
    elif array.dtype == bool:
        scaled = array.astype(np.float32)
    elif array.dtype == np.uint8:
        scaled = array.astype(np.float32) / 255.0
    else:
        raise ValueError(f"image {path} has unsupported pixel type {array.dtype}")
    if scaled.ndim == 2:
        scaled = np.repeat(scaled[..., None], 3, axis=2)
    elif scaled.shape[2] == 4:
        scaled = scaled[..., :3]
    elif scaled.shape[2] == 2:  # grayscale + alpha
        scaled = np.repeat(scaled[..., :1], 3, axis=2)
    return np.ascontiguousarray(np.clip(scaled, 0.0, 1.0))


def as_float(image: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1]; float arrays pass through as float32."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) * np.float32(1.0 / 255.0)
    return image.astype(np.float32, copy=False)
