"""The KAIR-style noisy-folder benchmark: noise realisation, reading, naming, the DataModule and its config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.data.datasets.noisy_folder import (
    NoisyFolder,
    kair_noisy,
    noisy_folder_datamodule,
    noisy_folder_sets,
    read_gray8,
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "clean"
    root.mkdir()
    Image.fromarray(rng.integers(0, 256, (12, 10), dtype=np.uint8), mode="L").save(root / "b.png")
    Image.fromarray(rng.integers(0, 256, (12, 10), dtype=np.uint8), mode="L").save(root / "a.png")
    Image.fromarray(rng.integers(0, 256, (7, 9, 3), dtype=np.uint8), mode="RGB").save(root / "c.png")
    (root / "notes.txt").write_text("not an image")
    return root


def _kair_reference(clean_u8: np.ndarray, sigma: float) -> np.ndarray:
    """KAIR's main_test_dncnn.py, literally: uint2single, np.random.seed(0), add normal in place."""
    img = np.float32(clean_u8 / 255.0)
    np.random.seed(seed=0)
    img += np.random.normal(0, sigma / 255.0, img.shape)
    return img


def test_noise_is_kairs_float_noise_seeded_per_image(folder: Path) -> None:
    sets = noisy_folder_sets(folder, [25], "toy", channels=1)
    ds = sets["toy_s25"]
    assert [p.name for p in ds.paths] == ["a.png", "b.png", "c.png"]
    clean = np.asarray(Image.open(folder / "a.png"))[..., None]
    sample = ds[0]
    np.testing.assert_array_equal(sample["lq"].numpy().transpose(1, 2, 0), _kair_reference(clean, 25))
    np.testing.assert_array_equal(sample["gt"].numpy(), clean.transpose(2, 0, 1) / np.float32(255))
    assert sample["lq"].dtype == torch.float32 and sample["lq"].shape == (1, 12, 10)
    assert sample["lq"].min() < 0 or sample["lq"].max() > 1  # no clipping
    assert (sample["benchmark"], sample["family"], sample["name"]) == ("toy_s25", "noise", "a")
    # the seed is reset for every image: images of one shape get the same noise
    other = ds[1]
    torch.testing.assert_close(other["lq"] - other["gt"], sample["lq"] - sample["gt"], rtol=0, atol=1e-6)


def test_rgb_and_grayscale_reading(folder: Path) -> None:
    rgb = NoisyFolder(sorted(folder.glob("*.png")), 15, "rgb", channels=3)
    assert rgb[0]["lq"].shape == (3, 12, 10) and rgb[2]["gt"].shape == (3, 7, 9)
    import cv2

    colour = np.asarray(Image.open(folder / "c.png"))
    np.testing.assert_array_equal(read_gray8(folder / "c.png")[..., 0], cv2.cvtColor(colour, cv2.COLOR_RGB2GRAY))
    sixteen = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000).astype(np.uint16)
    Image.fromarray(sixteen).save(folder / "d16.png")
    assert read_gray8(folder / "d16.png").dtype == np.uint8
    assert read_gray8(folder / "d16.png")[-1, -1, 0] == round(55000 * 255 / 65535)


def test_kair_noisy_stays_float32_and_adds_in_place_order() -> None:
    clean = np.full((4, 5, 1), 128, dtype=np.uint8)
    noisy = kair_noisy(clean, 50)
    assert noisy.dtype == np.float32
    np.testing.assert_array_equal(noisy, _kair_reference(clean, 50))


def test_names_limit_crop_and_errors(folder: Path, tmp_path: Path) -> None:
    sets = noisy_folder_sets(folder, [15, 25, 50], "bsd68_gray", channels=1, limit=2, crop_multiple=4)
    assert list(sets) == ["bsd68_gray_s15", "bsd68_gray_s25", "bsd68_gray_s50"]
    assert len(sets["bsd68_gray_s50"]) == 2 and sets["bsd68_gray_s50"].sigma == 50.0
    assert sets["bsd68_gray_s15"][0]["lq"].shape == (1, 12, 8)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        noisy_folder_sets(tmp_path / "missing", [25], "x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no images"):
        noisy_folder_sets(tmp_path / "empty", [25], "x")
    with pytest.raises(ValueError, match="channels"):
        NoisyFolder([folder / "a.png"], 25, "x", channels=2)


def test_datamodule_is_test_only_and_loads(folder: Path) -> None:
    dm = noisy_folder_datamodule(folder, [25], "toy", channels=1, limit=2, name="kair_denoise")
    dm.setup("test")
    assert dm.test_benchmarks == dm.val_benchmarks == ["toy_s25"]
    with pytest.raises(ValueError, match="data.train is empty"):
        dm.setup("fit")
    (loader,) = dm.test_dataloader()
    batch = next(iter(loader))
    assert batch["lq"].shape == (1, 1, 12, 10) and batch["benchmark"] == ["toy_s25"]


def test_config_composes_and_builds(folder: Path, tmp_path: Path) -> None:
    from src.run.assemble import build
    from tests.conftest import compose

    cfg = compose("eval", ["data=kair_denoise", f"data.root={folder}", "data.sigmas=[15,50]"], tmp_path)
    dm = build(cfg.data, "data")
    name = folder.name.lower()  # named after the folder read
    assert dm.test_benchmarks == [f"{name}_s15", f"{name}_s50"]
    assert dm.test_sets[f"{name}_s15"].channels == 1


def test_first_bsd68_image_matches_the_dncnn_check_script(shared_dir: Path) -> None:
    """The same noisy input as ``experiments/dncnn_bsd68/check.py`` (which follows KAIR)."""
    root = shared_dir / "data" / "test" / "denoise" / "BSD68_gray"
    if not root.is_dir():
        pytest.skip(f"{root} absent")
    ds = noisy_folder_sets(root, [25], "bsd68_gray", channels=1, limit=1)["bsd68_gray_s25"]
    clean = np.asarray(Image.open(ds.paths[0]).convert("L"))
    np.testing.assert_array_equal(ds[0]["lq"][0].numpy(), _kair_reference(clean[..., None], 25)[..., 0])


def test_the_benchmark_is_named_after_the_folder_read(tmp_path: Path) -> None:
    """data=kair_denoise on another folder no longer reports under BSD68's name."""
    from src.data.datasets.noisy_folder import folder_benchmark_name, noisy_folder_datamodule

    folder = tmp_path / "My Noisy-Photos"
    folder.mkdir()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(folder / "a.png")
    assert folder_benchmark_name(folder) == "my_noisy_photos"
    assert noisy_folder_datamodule(folder, [25], num_workers=0).test_benchmarks == ["my_noisy_photos_s25"]
    assert noisy_folder_datamodule(folder, [25], benchmark="mine", num_workers=0).test_benchmarks == ["mine_s25"]
