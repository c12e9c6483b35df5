"""``data=allweather``: TransWeather's list files, its test resize and its training crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.data.allweather import allweather_datamodule, official_test_size, read_list
from src.utils.errors import DataError


def _pair(folder: Path, name: str, width: int, height: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    for side in ("input", "gt"):
        path = folder / "allweather" / side / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
    return f"allweather/input/{name}"


def _layout(root: Path) -> None:
    train = [_pair(root / "train", f"im_{i}.png", 300, 200, i) for i in range(3)]
    train.append(_pair(root / "train", "small.png", 120, 90, 9))  # smaller than the crop: resized up
    (root / "train" / "allweather.txt").write_text("\n".join(train) + "\n")
    (root / "test" / "test1.txt").parent.mkdir(parents=True)
    (root / "test" / "test1.txt").write_text(_pair(root / "test", "a.png", 1100, 700, 5) + "\n")
    (root / "test" / "snowtest100k_L.txt").write_text(_pair(root / "test", "b.png", 70, 50, 6) + "\n")


def test_the_official_test_size_caps_at_1024_and_rounds_up_to_16() -> None:
    assert official_test_size(1100, 700) == (1024, 656)  # 700 * 1024 / 1100 = 651.6 -> 652 -> 656
    assert official_test_size(480, 720) == (480, 720)
    assert official_test_size(70, 50) == (80, 64)
    assert official_test_size(600, 2000) == (320, 1024)  # 307.2 -> 308 -> 320


def test_lists_pair_by_replacing_input_with_gt_and_name_missing_files(tmp_path: Path) -> None:
    _layout(tmp_path)
    pairs = read_list(tmp_path / "train", "allweather.txt")
    assert pairs[0] == (tmp_path / "train/allweather/input/im_0.png", tmp_path / "train/allweather/gt/im_0.png")
    (tmp_path / "train/allweather/gt/im_1.png").unlink()
    with pytest.raises(DataError, match=r"1 listed file\(s\) missing: .*gt/im_1.png"):
        read_list(tmp_path / "train", "allweather.txt")
    with pytest.raises(DataError, match="no list file"):
        read_list(tmp_path / "test", "raindroptesta.txt")


def test_the_datamodule_crops_training_patches_and_resizes_test_pairs(tmp_path: Path) -> None:
    _layout(tmp_path)
    dm = allweather_datamodule(str(tmp_path), test_sets=["test1", "snow100k_l"], patch_size=128)
    patches = [dm.train_sets["weather"][(0, i)] for i in range(4)]
    assert all(tuple(p["lq"].shape) == (3, 128, 128) == tuple(p["gt"].shape) for p in patches)
    big = dm.test_sets["test1"][0]
    assert tuple(big["lq"].shape) == (3, 656, 1024) == tuple(big["gt"].shape) and big["family"] == "rain_fog"
    cropped = allweather_datamodule(str(tmp_path), test_sets=["snow100k_l"], splits=["test"], test_geometry="crop")
    assert tuple(cropped.test_sets["snow100k_l"][0]["gt"].shape) == (3, 48, 64)  # its own pixels, cut to 16s
    with pytest.raises(ValueError, match="official lists are"):
        allweather_datamodule(str(tmp_path), test_sets=["rain100l"])
