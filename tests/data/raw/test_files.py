"""Reading RAW captures: LED's .npz frames, camera files through rawpy (a stand-in module here), named errors."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from src.data.raw.files import exposure_seconds, raw_files, read_raw
from src.utils.errors import DataError


def write_npz(path, planes, black=512, white=16383):
    np.savez(path, im=planes.astype(np.uint16), black_level=np.full((4, 1, 1), black),
             white_level=np.full((4, 1, 1), white), wb=np.ones(4), ccm=np.eye(3))


def test_an_led_npz_frame_normalises_by_its_levels(tmp_path) -> None:
    planes = np.full((4, 6, 8), 512 + 0.25 * (16383 - 512))
    write_npz(tmp_path / "10003_00_10s.ARW.npz", planes)
    frame = read_raw(tmp_path / "10003_00_10s.ARW.npz")
    assert frame.name == "10003_00_10s" and frame.planes.shape == (4, 6, 8)
    assert np.allclose(frame.normalised(), 0.25, atol=1e-4)
    np.savez(tmp_path / "bad.npz", im=np.zeros((4, 2, 2)))
    with pytest.raises(DataError, match="black_level"):
        read_raw(tmp_path / "bad.npz")


class _StandInRaw:
    """What rawpy.imread returns, for a 4 x 6 RGGB mosaic with per-channel levels."""

    raw_image_visible = np.arange(24, dtype=np.uint16).reshape(4, 6) + 600
    raw_pattern = np.array([[0, 1], [3, 2]])
    black_level_per_channel = [512, 512, 512, 512]
    camera_white_level_per_channel = None
    white_level = 16383

    def __enter__(self):
        return self

    def __exit__(self, *args):
        return False


def test_a_camera_file_is_read_through_rawpy_and_its_absence_is_named(tmp_path, monkeypatch) -> None:
    path = tmp_path / "shot_0.1s.ARW"
    path.write_bytes(b"not really a raw file")
    monkeypatch.setitem(sys.modules, "rawpy", types.SimpleNamespace(imread=lambda _: _StandInRaw()))
    frame = read_raw(path)
    assert np.array_equal(frame.planes[0], _StandInRaw.raw_image_visible[::2, ::2])  # R
    assert np.array_equal(frame.planes[3], _StandInRaw.raw_image_visible[1::2, ::2])  # G2
    assert np.array_equal(frame.white, np.full(4, 16383.0))  # no per-channel white level: the global one
    monkeypatch.setitem(sys.modules, "rawpy", None)
    with pytest.raises(ImportError, match=r"aioir\[raw\].*shot_0.1s.ARW|shot_0.1s.ARW.*aioir\[raw\]"):
        read_raw(path)


def test_exposures_folders_and_suffixes_are_checked(tmp_path) -> None:
    assert exposure_seconds("Sony/short/10003_00_0.04s.ARW") == 0.04
    assert exposure_seconds("long/10003_00_10s.ARW.npz") == 10.0
    with pytest.raises(DataError, match="exposure"):
        exposure_seconds("IMG_0001.ARW")
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(DataError, match="no RAW files"):
        raw_files(tmp_path)
    with pytest.raises(DataError, match="not a RAW file"):
        read_raw(tmp_path / "a.png")
