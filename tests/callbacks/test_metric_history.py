"""Learning curves: every validation's metrics in ``val_history.csv`` and a readable ``learning_curves.png``."""

from __future__ import annotations

from types import SimpleNamespace

from PIL import Image

from src.callbacks.metric_history import PICTURE_NAME, MetricHistory
from src.results.plots import HISTORY_NAME, curves_by_benchmark, read_history, write_history
from src.train import train


def test_history_round_trips_and_splits_into_curves(tmp_path):
    rows = [{"step": 10, "epoch": 0, "val/psnr/a": 20.0, "val/psnr/b": 18.0},
            {"step": 20, "epoch": 1, "val/psnr/a": 21.0, "val/ssim/a": 0.5}]
    write_history(rows, tmp_path / "h.csv")
    back = read_history(tmp_path / "h.csv")
    assert back == [{k: float(v) for k, v in row.items()} for row in rows]
    assert curves_by_benchmark(back) == {"a": [(10, 20.0), (20, 21.0)], "b": [(10, 18.0)]}


def _trainer(step: int) -> SimpleNamespace:
    return SimpleNamespace(global_step=step, current_epoch=0, sanity_checking=False, is_global_zero=True,
                           callback_metrics={"val/psnr/a": 20.0 + step / 100, "val/psnr": 20.0, "train/loss": 1.0})


def test_a_resumed_run_drops_the_rows_past_its_step(tmp_path):
    first = MetricHistory(str(tmp_path))
    for step in (100, 200, 300):
        first.on_validation_end(_trainer(step), None)
    assert [r["step"] for r in read_history(tmp_path / HISTORY_NAME)] == [100, 200, 300]
    resumed = MetricHistory(str(tmp_path))  # killed after step 300's validation, resumed from step 200
    resumed.on_train_start(_trainer(200), None)
    resumed.on_validation_end(_trainer(250), None)
    assert [r["step"] for r in read_history(tmp_path / HISTORY_NAME)] == [100, 200, 250]
    assert "train/loss" not in read_history(tmp_path / HISTORY_NAME)[0]


def test_training_writes_the_history_and_a_readable_picture(tiny_cfg, tmp_path):
    epochs = 2
    train(tiny_cfg(f"trainer.max_epochs={epochs}", "trainer.check_val_every_n_epoch=1"))
    rows = read_history(tmp_path / HISTORY_NAME)
    assert len(rows) == epochs and rows[0]["step"] < rows[1]["step"]
    assert any(k.startswith("val/psnr/") for k in rows[0]) and "val/psnr" in rows[0]
    with Image.open(tmp_path / PICTURE_NAME) as picture:
        assert picture.format == "PNG" and min(picture.size) > 100
