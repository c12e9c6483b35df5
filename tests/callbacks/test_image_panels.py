"""Image panels: labelled PNG files in the run folder whatever the logger, and ``log_image`` calls with W&B."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image

from src.callbacks.image_panels import ImagePanels, make_panel
from src.train import train


def test_panel_layout_is_degraded_restored_target():
    lq, pred, gt = torch.zeros(3, 10, 12), torch.full((3, 10, 12), 0.5), torch.ones(1, 10, 12)
    panel = make_panel(lq, pred, gt, gap=2)
    assert panel.shape == (10, 3 * 12 + 2 * 2, 3) and panel.dtype == np.uint8
    assert (panel[:, :12] == 0).all() and (panel[:, 14:26] == 128).all() and (panel[:, 28:] == 255).all()
    assert make_panel(lq, pred, gt, gap=2, max_side=6).shape == (5, 3 * 6 + 4, 3)


def test_training_with_csv_logger_writes_pngs_for_every_benchmark(tiny_cfg, tmp_path):
    out = train(tiny_cfg("callbacks=panels", "callbacks.progress_bar=null", "callbacks.model_summary=null",
                         "logger=csv", "test=false", "callbacks.image_panels.num_images=2"))
    benchmarks = out["trainer"].datamodule.val_benchmarks
    assert benchmarks
    for benchmark in benchmarks:
        files = sorted((tmp_path / "panels" / benchmark).glob("epoch000_*.png"))
        assert len(files) == 2, (benchmark, files)
        with Image.open(files[0]) as img:
            assert img.mode == "RGB" and img.width > 3 * img.height / 2


class _FakeWandb:
    """Stands in for WandbLogger (isinstance is what the callback checks)."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def log_image(self, **kwargs) -> None:
        self.calls.append(kwargs)


def test_labels_add_a_title_band_above_and_a_label_band_below():
    lq, pred, gt = torch.zeros(3, 20, 30), torch.full((3, 20, 30), 0.5), torch.ones(3, 20, 30)
    plain = make_panel(lq, pred, gt, gap=2)
    labelled = make_panel(lq, pred, gt, gap=2, title="rain100l / 1", labels=("degraded", "restored 30.00 dB", "target"))
    assert labelled.shape == (20 + 2 * 14, plain.shape[1], 3)
    np.testing.assert_array_equal(labelled[14:34], plain)  # the images themselves are untouched
    assert (labelled[:14] < 128).any() and (labelled[34:] < 128).any()  # text was drawn in both bands


def test_panels_go_to_wandb_and_to_png(tmp_path, monkeypatch):
    monkeypatch.setattr("src.callbacks.image_panels.WandbLogger", _FakeWandb)
    logger = _FakeWandb()
    trainer = SimpleNamespace(is_global_zero=True, sanity_checking=False, current_epoch=0, global_step=7,
                              loggers=[logger], default_root_dir=str(tmp_path))
    callback = ImagePanels(num_images=2)
    callback.on_validation_epoch_start(trainer, None)
    batch = {"lq": torch.rand(1, 3, 8, 8), "gt": torch.rand(1, 3, 8, 8), "benchmark": ["rain100l"], "name": ["a"]}
    for index in range(3):
        callback.on_validation_batch_end(trainer, lambda x: x * 0.5, None, batch, index)
    callback.on_validation_epoch_end(trainer, None)
    (call,) = logger.calls
    assert call["key"] == "val/panels/rain100l" and call["step"] == 7 and len(call["images"]) == 2
    assert len(list((tmp_path / "panels" / "rain100l").glob("*.png"))) == 2
