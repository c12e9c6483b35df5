"""One decoder for every reader: the readers differ only in the conversion each promises."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from src.data.io import decode, read_image, read_rgb8
from src.inference.image_file import read_user_image
from src.utils.errors import ImageReadError


def _rgb(h: int = 6, w: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_palette_and_cmyk_files_give_their_colours_to_every_reader(tmp_path):
    """The float reader once returned palette indices and read CMYK as RGBA; it now shares the conversion."""
    rgb = _rgb()
    Image.fromarray(rgb).quantize(16).save(tmp_path / "p.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.tif")
    for name in ("p.png", "c.tif"):
        expected = np.asarray(Image.open(tmp_path / name).convert("RGB"))
        np.testing.assert_array_equal(read_rgb8(tmp_path / name), expected)
        np.testing.assert_allclose(read_image(tmp_path / name), expected / 255.0, atol=1e-7)
        np.testing.assert_allclose(read_user_image(tmp_path / name).rgb, expected / 255.0, atol=1e-7)


def test_sixteen_bit_colour_keeps_its_precision_in_float_and_rounds_for_uint8(tmp_path):
    import cv2

    deep = np.random.default_rng(1).integers(0, 65536, (4, 7, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "d.png"), deep[..., ::-1])
    np.testing.assert_allclose(read_image(tmp_path / "d.png"), deep / 65535.0, atol=1e-7)
    np.testing.assert_array_equal(read_rgb8(tmp_path / "d.png"), np.rint(deep * (255.0 / 65535.0)).astype(np.uint8))


def test_only_user_images_are_turned_upright(tmp_path):
    rgb = _rgb(4, 6)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 clockwise to display
    Image.fromarray(rgb).save(tmp_path / "o.png", exif=exif)
    assert read_rgb8(tmp_path / "o.png").shape == (4, 6, 3)  # as stored: the official codes ignore the tag
    assert read_user_image(tmp_path / "o.png").rgb.shape == (6, 4, 3)
    assert 0x0112 not in decode(tmp_path / "o.png", upright=True).exif


@pytest.mark.parametrize("content", [b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\0" * 10])
def test_unreadable_files_name_the_file_for_every_reader(tmp_path, content):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    for reader in (read_rgb8, read_image, read_user_image):
        with pytest.raises(ImageReadError, match=r"cannot read image .*bad\.png"):
            reader(path)
