"""Benchmark folder layouts: detection, explicit choice and the missing-data message.

Also holds :func:`write_layout`, the tiny fake download (real image files written with PIL) that the
other real-data tests import.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.data.layouts import (
    DataNotFoundError,
    detect_layout,
    locate,
    parse_layouts,
    required_folders,
    resolve_layout,
    sets_of,
)
from tests.helpers import layout_configs

#: the layouts of conf/data/layout, as a run parses them
LAYOUTS = parse_layouts(layout_configs())
CDD11_CATEGORIES = tuple(LAYOUTS["cdd11"])

FIVE = ["noise", "rain", "haze", "blur", "lowlight"]
THREE = ["noise", "rain", "haze"]
#: (height, width) of every fake image: small, and not a multiple of 16 in height
SIZE = (40, 48)


def write_image(path: Path, size: tuple[int, int] = SIZE, value: int | None = None) -> Path:
    """A random (or constant ``value``) RGB image; the pixels depend only on the file name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8) if value is None else np.full((*size, 3), value, np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _names(rule: str, split: str, i: int, suffix: str) -> tuple[str, str]:
    """(degraded, clean) file names of pair ``i`` as the published sets name them."""
    if rule == "rain":
        return f"rain-{i}.png", f"norain-{i}.png"
    if rule == "haze":
        return f"{i:04d}_0.8_0.2.jpg", f"{i:04d}{'.jpg' if split == 'train' else '.png'}"
    return f"{i}{suffix}", f"{i}{suffix}"


def write_layout(
    root: Path, layout: str = "promptir", families: list[str] | None = None, n_train: int = 2, n_test: int = 2,
    size: tuple[int, int] = SIZE,
) -> Path:
    """A fake download of ``families`` in ``layout``: ``n_train`` / ``n_test`` images or pairs per set.

    Hazy training images get several versions per clear image (``<id>_0.8_0.2``, ``<id>_0.9_0.08``...), one
    in each ``part`` folder, as in RESIDE.
    """
    families = families or (list(CDD11_CATEGORIES) if layout == "cdd11" else FIVE)
    for split, _, image_set in sets_of(LAYOUTS[layout], families):
        n = n_train if split == "train" else n_test
        if not image_set.paired:
            for j, folder in enumerate(image_set.clean):
                suffix = ".bmp" if "Waterloo" in folder else ".jpg" if split == "train" else ".png"
                for i in range(n):
                    write_image(root / folder / f"{j}{i:03d}{suffix}", size)
            continue
        folders = image_set.degraded
        versions = max(2, len(folders)) if image_set.rule == "haze" and split == "train" else 1
        for i in range(n):
            degraded, clean = _names(image_set.rule, split, i, ".png")
            write_image(root / image_set.clean[0] / clean, size)
            for v in range(versions):
                name = degraded if v == 0 else f"{i:04d}_{0.8 + v / 10:g}_0.08.jpg"
                sub = f"part{v + 1}/" if image_set.recursive else ""
                write_image(root / folders[v % len(folders)] / f"{sub}{name}", size)
    return root


def test_every_layout_lists_train_and_test_folders_for_its_families():
    for layout, families in LAYOUTS.items():
        folders = required_folders(families, list(families))
        assert len(folders) == len(set(folders)) or layout == "cdd11"  # cdd11 shares clear/ between categories
        assert all(not Path(f).is_absolute() for f in folders)


@pytest.mark.parametrize("layout", ["promptir", "moceir"])
def test_layout_is_detected_from_the_folders(tmp_path, layout):
    write_layout(tmp_path, layout, THREE)
    assert detect_layout(tmp_path, LAYOUTS, THREE) == layout
    assert resolve_layout(tmp_path, THREE, LAYOUTS, "auto") == layout
    assert locate(tmp_path, THREE, "3deg", LAYOUTS) == (tmp_path.resolve(), layout)


def test_named_layout_wins_and_reports_what_it_misses(tmp_path):
    write_layout(tmp_path, "promptir", THREE)
    with pytest.raises(DataNotFoundError) as err:
        locate(tmp_path, THREE, "3deg", LAYOUTS, layout="moceir")
    message = str(err.value)
    assert "deraining/RainTrainL/rainy" in message and "layout 'moceir'" in message
    with pytest.raises(ValueError, match="unknown data.layout 'nope'; expected 'auto' or one of"):
        locate(tmp_path, THREE, "3deg", LAYOUTS, layout="nope")


def test_cdd11_is_detected_for_its_categories(tmp_path):
    write_layout(tmp_path, "cdd11")
    assert detect_layout(tmp_path, LAYOUTS, list(CDD11_CATEGORIES)) == "cdd11"
    assert detect_layout(tmp_path, LAYOUTS, THREE) is None


def test_missing_data_message_names_root_folders_and_fixes(tmp_path):
    root = tmp_path / "nowhere"
    with pytest.raises(DataNotFoundError) as err:
        locate(root, FIVE, "5deg", {k: LAYOUTS[k] for k in ("promptir", "moceir")})
    message = str(err.value)
    assert str(root) in message and "Train/Derain" in message
    assert "data.root" in message and "data=synth5deg" in message and "data.layout=promptir|moceir" in message


def test_partly_present_data_marks_only_the_missing_folders(tmp_path):
    write_layout(tmp_path, "promptir", ["noise", "rain"])
    with pytest.raises(DataNotFoundError) as err:
        locate(tmp_path, THREE, "3deg", LAYOUTS)
    lines = str(err.value).splitlines()
    assert any(line.strip().startswith("MISSING") and "Train/Dehaze/synthetic" in line for line in lines)
    assert any(line.strip().startswith("found") and "Train/Derain/rainy" in line for line in lines)


def test_test_split_alone_needs_no_training_folders(tmp_path):
    for _, _, image_set in sets_of(LAYOUTS["promptir"], THREE, ["test"]):
        for folder in image_set.folders:
            (tmp_path / folder).mkdir(parents=True)
    assert locate(tmp_path, THREE, "3deg", LAYOUTS, splits=["test"])[1] == "promptir"
    with pytest.raises(DataNotFoundError):
        locate(tmp_path, THREE, "3deg", LAYOUTS)


def test_layouts_are_config_and_a_bad_entry_names_its_key():
    """conf/data/layout is the registry: a new layout is a new file; a malformed set names where it is."""
    from src.utils.errors import ConfigError

    assert set(LAYOUTS) == {p.stem for p in (Path(__file__).parents[2] / "conf" / "data" / "layout").glob("*.yaml")}
    mine = {"mine": {"rain": {"train": {"name": "rain", "degraded": ["r"]}, "test": {"name": "t", "clean": ["c"]}}}}
    with pytest.raises(ConfigError, match=r"data.layouts.mine.rain.train: an image set needs `name` and `clean`"):
        parse_layouts(mine)
    mine["mine"]["rain"]["train"]["clean"] = ["g"]
    assert parse_layouts(mine)["mine"]["rain"].train.paired
    with pytest.raises(ConfigError, match=r"data.layouts.mine.rain: expected a `train` and a `test` set"):
        parse_layouts({"mine": {"rain": {"train": mine["mine"]["rain"]["train"]}}})
