"""``src.eval`` on imperfect test sets: unreadable files refused up front, images too small for SSIM left out."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from src.data.layouts import DataCheckError
from src.eval import evaluate
from src.results.record import read_json
from tests.conftest import compose

TINY = ["model=restormer_tiny", "model.backbone.dim=8", "trainer=cpu", "logger=none", "data=kair_denoise",
        "data.channels=3", "untrained=true"]


def _photos(folder, sizes):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"img{i}.png")


def test_unreadable_images_are_refused_before_evaluating_with_every_name(tmp_path):
    _photos(tmp_path / "clean", [(24, 24)] * 3)
    (tmp_path / "clean" / "img1.png").write_bytes(b"")
    (tmp_path / "clean" / "img2.png").write_bytes(b"not an image")
    cfg = compose("eval", [*TINY, f"data.root={tmp_path / 'clean'}"], tmp_path / "run")
    with pytest.raises(DataCheckError, match=r"2 of 3 image\(s\) cannot be read:\n.*img1\.png: .*\n.*img2\.png"):
        evaluate(cfg)
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.parametrize("protocol, window", [("promptir", 7), ("y_channel", 11)])
def test_an_image_smaller_than_the_ssim_window_is_left_out_and_named(tmp_path, protocol, window):
    _photos(tmp_path / "clean", [(24, 24), (window - 1, 30), (20, 28)])
    cfg = compose("eval", [*TINY, f"data.root={tmp_path / 'clean'}", f"metrics={protocol}"], tmp_path / "run")
    record = evaluate(cfg)
    (benchmark,) = record["benchmarks"]
    assert list(record["skipped"][benchmark]) == ["img1"]
    assert f"smaller than the {window}-pixel SSIM window of metrics={protocol}" in record["skipped"][benchmark]["img1"]
    assert np.isfinite(record["benchmarks"][benchmark]["ssim"])
    assert read_json(tmp_path / "run" / "metrics.json")["skipped"] == record["skipped"]


def test_a_model_without_weights_is_refused_unless_asked_for_and_then_labelled(tmp_path):
    from src.utils.errors import ConfigError

    _photos(tmp_path / "clean", [(24, 24)])
    plain = [o for o in TINY if o != "untrained=true"] + [f"data.root={tmp_path / 'clean'}"]
    with pytest.raises(ConfigError, match=r"no weights: set ckpt_path=.* or untrained=true"):
        evaluate(compose("eval", plain, tmp_path / "refused"))
    assert not (tmp_path / "refused" / "metrics.json").exists()
    record = evaluate(compose("eval", [*plain, "untrained=true"], tmp_path / "run"))
    assert record["untrained"] is True
    assert read_json(tmp_path / "run" / "metrics.json")["untrained"] is True
    assert "**Untrained weights** (untrained=true)" in (tmp_path / "run" / "results.md").read_text()
