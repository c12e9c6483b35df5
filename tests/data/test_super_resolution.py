"""``data=sr``: HR folders in the common layouts, the papers' top-left crop, bicubic inputs, the scale check."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from src.data.degradations import BicubicDownsample
from src.data.super_resolution import sr_datamodule
from src.run.assemble import check_scales
from src.utils.errors import ConfigError, DataError
from src.utils.imresize import imresize


def _png(path: Path, height: int, width: int, seed: int) -> np.ndarray:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return pixels


def test_test_sets_in_their_layouts_are_cropped_from_the_top_left_and_down_sampled(tmp_path: Path) -> None:
    baby = _png(tmp_path / "bench" / "Set5" / "HR" / "baby.png", 50, 47, seed=0)  # EDSR's benchmark layout
    _png(tmp_path / "bench" / "Set14" / "GTmod12" / "lenna.png", 36, 36, seed=1)  # BasicSR's
    _png(tmp_path / "bench" / "B100" / "3096.png", 33, 30, seed=2)  # the images themselves
    _png(tmp_path / "train" / "0001.png", 64, 64, seed=3)
    dm = sr_datamodule(BicubicDownsample(scale=3), train_root=str(tmp_path / "train"),
                       test_root=str(tmp_path / "bench"), test_sets=["Set5", "Set14", "B100"], lr_patch=8)
    assert set(dm.test_sets) == {"set5_x3", "set14_x3", "b100_x3"} and dm.output_scale == 3
    assert dm.benchmark_notes["set5_x3"] == "1 images where the published Set5 has 5"  # compared with nothing
    sample = dm.test_sets["set5_x3"][0]
    assert tuple(sample["gt"].shape) == (3, 48, 45) and tuple(sample["lq"].shape) == (3, 16, 15)
    expected_gt = baby[:48, :45].astype(np.float32) / 255  # modcrop: the top-left 48 x 45 pixels
    assert np.allclose(sample["gt"].permute(1, 2, 0).numpy(), expected_gt)
    lr_levels = np.rint(np.clip(imresize(expected_gt.astype(np.float64), 1 / 3), 0, 1) * 255)
    assert np.array_equal(np.rint(sample["lq"].permute(1, 2, 0).numpy() * 255), lr_levels)
    patch = dm.train_sets["sr"][0]
    assert tuple(patch["gt"].shape) == (3, 24, 24) and tuple(patch["lq"].shape) == (3, 8, 8)


def test_a_missing_test_set_names_what_is_there(tmp_path: Path) -> None:
    _png(tmp_path / "Set5" / "baby.png", 12, 12, seed=0)
    with pytest.raises(DataError, match=r"test set 'Urban100'.*holds: Set5"):
        sr_datamodule(BicubicDownsample(scale=2), test_root=str(tmp_path), test_sets=["Set5", "Urban100"])


def test_upsampled_inputs_ask_for_a_same_size_network() -> None:
    dm = sr_datamodule(BicubicDownsample(scale=2, upsample=True))
    assert dm.output_scale == 1
    sample = dm.test_sets["synth_x2"][0]
    assert sample["lq"].shape == sample["gt"].shape


def test_the_run_refuses_a_network_of_another_scale() -> None:
    def model(scale: int) -> SimpleNamespace:
        return SimpleNamespace(net=SimpleNamespace(scale=scale))

    check_scales(SimpleNamespace(output_scale=2), model(2))
    check_scales(SimpleNamespace(), model(1))  # every other data setting keeps the size
    with pytest.raises(ConfigError, match=r"model.backbone.scale=2 but the data is x4: set data.scale=2"):
        check_scales(SimpleNamespace(output_scale=4), model(2))
    with pytest.raises(ConfigError, match="data.degradation.upsample=true"):
        check_scales(SimpleNamespace(output_scale=2), model(1))
    with pytest.raises(ConfigError, match="model.backbone.scale=4 but the data is x1.*data=sr data.scale=4"):
        check_scales(SimpleNamespace(), model(4))


def test_stored_low_resolution_files_are_read_where_a_set_has_them(tmp_path: Path) -> None:
    hr = _png(tmp_path / "Set5" / "HR" / "bird.png", 50, 47, seed=4)
    lr = _png(tmp_path / "Set5" / "LR_bicubic" / "X2" / "birdx2.png", 25, 23, seed=5)  # EDSR's layout
    _png(tmp_path / "Set14" / "HR" / "lenna.png", 40, 40, seed=6)  # no LR files: made on the fly
    dm = sr_datamodule(BicubicDownsample(scale=2), test_root=str(tmp_path), test_sets=["Set5", "Set14"])
    sample = dm.test_sets["set5_x2"][0]
    assert np.array_equal(np.rint(sample["lq"].permute(1, 2, 0).numpy() * 255), lr)
    assert np.array_equal(np.rint(sample["gt"].permute(1, 2, 0).numpy() * 255), hr[:50, :46])
    assert tuple(dm.test_sets["set14_x2"][0]["lq"].shape) == (3, 20, 20)
    made = sr_datamodule(BicubicDownsample(scale=2), test_root=str(tmp_path), test_sets=["Set5"], lr_files=False)
    assert not np.array_equal(np.rint(made.test_sets["set5_x2"][0]["lq"].permute(1, 2, 0).numpy() * 255), lr)
    (tmp_path / "Set5" / "LR_bicubic" / "X2" / "birdx2.png").unlink()
    with pytest.raises(DataError, match=r"1 low-resolution file\(s\) missing.*birdx2.png"):
        sr_datamodule(BicubicDownsample(scale=2), test_root=str(tmp_path), test_sets=["Set5"])
