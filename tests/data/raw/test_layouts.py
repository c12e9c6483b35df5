"""SID lists and ELD's layout: pairs, ratios as LED computes them, named errors."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from src.data.raw.layouts import by_ratio, eld_pairs, nearest_reference, read_pair_list
from src.utils.errors import DataError


def sid_folder(root):
    (root / "Sony" / "short").mkdir(parents=True)
    (root / "Sony" / "long").mkdir()
    names = [("10003_00_0.1s", "10003_00_10s"), ("10006_00_0.04s", "10006_00_10s"),
             ("10011_00_0.033s", "10011_00_10s"), ("10016_00_0.1s", "10016_00_30s")]
    for short, long in names:
        for folder, name in (("short", short), ("long", long)):
            np.savez(root / "Sony" / folder / f"{name}.ARW.npz", im=np.zeros((4, 2, 2), np.uint16),
                     black_level=np.full(4, 512), white_level=np.full(4, 16383))
    lines = [f"./Sony/short/{s}.ARW ./Sony/long/{g}.ARW ISO200 F8" for s, g in names]
    (root / "Sony_test_list.txt").write_text("\n".join(lines) + "\n")
    return root / "Sony_test_list.txt"


def test_sid_lists_pair_files_at_the_ratio_of_their_exposures_capped_at_300(tmp_path) -> None:
    pairs = read_pair_list(sid_folder(tmp_path), tmp_path)
    assert [p[0].name for p in pairs][0] == "10003_00_0.1s.ARW.npz"  # LED's .npz beside the camera file
    ratios = [p[2] for p in pairs]
    assert ratios == pytest.approx([100.0, 250.0, 300.0, 300.0])  # 10 / 0.033 and 30 / 0.1 capped
    assert list(by_ratio(pairs)) == [100, 250, 300] and len(by_ratio(pairs)[300]) == 2


def test_a_missing_file_is_named_with_its_list_line(tmp_path) -> None:
    listing = sid_folder(tmp_path)
    listing.write_text(listing.read_text() + "./Sony/short/1_00_0.1s.ARW ./Sony/long/1_00_10s.ARW\n")
    with pytest.raises(DataError, match=r"Sony_test_list.txt:5: .*1_00_0.1s.ARW does not exist"):
        read_pair_list(listing, tmp_path)


def test_eld_pairs_each_shot_with_its_nearest_reference_at_the_exif_ratio(tmp_path, monkeypatch) -> None:
    assert [nearest_reference(i) for i in (2, 3, 4, 5, 7, 10, 12, 15)] == [1, 1, 6, 6, 6, 11, 11, 16]
    scene = tmp_path / "SonyA7S2" / "scene-3"
    scene.mkdir(parents=True)
    for shot in range(1, 17):  # the file's bytes stand for its ISO x time
        (scene / f"IMG_{shot:04d}.ARW").write_text("100 1" if shot in (1, 6, 11, 16) else "800 0.000625")

    def process_file(handle, details=True):
        iso, time = handle.read().decode().split()
        return {"EXIF ISOSpeedRatings": iso, "EXIF ExposureTime": time}

    monkeypatch.setitem(sys.modules, "exifread", types.SimpleNamespace(process_file=process_file))
    groups = eld_pairs(tmp_path, "SonyA7S2", scenes=[3], ratios=[100, 200])
    assert sorted(groups) == [100, 200]
    assert [p[0].name for p in groups[100]] == ["IMG_0004.ARW", "IMG_0009.ARW", "IMG_0014.ARW"]
    assert [p[1].name for p in groups[100]] == ["IMG_0006.ARW", "IMG_0011.ARW", "IMG_0016.ARW"]
    assert groups[200][0][2] == pytest.approx(200.0)
    with pytest.raises(DataError, match="scene-4"):
        eld_pairs(tmp_path, "SonyA7S2", scenes=[4])
    with pytest.raises(DataError, match="1, 10, 100 and 200"):
        eld_pairs(tmp_path, "SonyA7S2", ratios=[50])
