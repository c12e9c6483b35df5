"""The RAW datamodule: LED's pre-training samples, fixed synthetic benchmarks, SID's real pairs."""

from __future__ import annotations

import numpy as np
import torch

from src.data.raw.datamodule import raw_datamodule, virtual_cameras
from src.data.raw.datasets import NoisyRawPatches, RawPairs, UnprocessedPhotos
from tests.data.raw.test_layouts import sid_folder


def test_pretraining_samples_are_keyed_noisy_patches_of_a_virtual_camera() -> None:
    datamodule = raw_datamodule(virtual_cameras(), patch_size=32, embedded_max_side=None, seed=3)
    train = datamodule.train_sets["raw"]
    assert isinstance(train, NoisyRawPatches)
    sample = train[(0, 1)]
    assert sample["lq"].shape == sample["gt"].shape == (4, 32, 32)
    assert 0 <= sample["camera"] < 5 and 100 <= sample["ratio"] <= 300 and float(sample["ratio"]).is_integer()
    assert float(sample["gt"].min()) >= 0 and float(sample["gt"].max()) <= 1
    again = train[(0, 1)]
    assert torch.equal(sample["lq"], again["lq"]) and sample["camera"] == again["camera"]
    cameras = {train[(epoch, i)]["camera"] for epoch in (0, 1) for i in range(len(train))}
    assert len(cameras) > 2  # each sample draws its camera
    assert list(datamodule.val_sets) == ["raw_x100", "raw_x200"]
    bench = datamodule.val_sets["raw_x100"][0]
    assert bench["camera"] == -1 and bench["lq"].shape[0] == 4  # an unseen camera
    assert torch.equal(bench["lq"], datamodule.val_sets["raw_x100"][0]["lq"])


def test_stand_in_frames_use_a_sony_sensors_levels() -> None:
    frame = UnprocessedPhotos([np.full((4, 6, 3), 255, np.uint8)])[0]
    assert frame.planes.shape == (4, 2, 3) and np.allclose(frame.normalised(), 1.0)


def test_sid_test_pairs_and_few_shot_pairs(tmp_path) -> None:
    listing = sid_folder(tmp_path)
    datamodule = raw_datamodule(virtual_cameras(), sid_root=str(tmp_path), sid_test_list=str(listing),
                                fewshot_list=str(listing), fewshot_patch_size=2)
    assert list(datamodule.val_sets) == ["sid_x100", "sid_x250", "sid_x300"]
    train = datamodule.train_sets["raw"]
    assert isinstance(train, RawPairs) and train[(0, 0)]["lq"].shape == (4, 2, 2)
    sample = datamodule.val_sets["sid_x100"][0]
    assert sample["ratio"] == 100.0 and sample["camera"] == -1
    # frames of 0 DN, under the black level: the input keeps its negative value brought up by the ratio (as
    # LED), the target is clipped to 0
    assert torch.allclose(sample["lq"], torch.tensor(-512 / 15871 * 100)) and float(sample["gt"].abs().max()) == 0
