"""``data=unpaired``: folders of degraded photographs without targets, scored by no-reference metrics only."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from src.data.layouts import DataNotFoundError
from src.data.unpaired import unpaired_datamodule
from src.utils.errors import ConfigError, DataError, UserError
from tests.conftest import compose

TINY = ["model=restormer_tiny", "model.backbone.dim=8", "trainer=cpu", "logger=none", "data=unpaired",
        "untrained=true"]


def _photos(folder, count=2, size=(96, 112)):
    """Noisy crops of a real photograph (NIQE needs natural statistics), ``size`` = (height, width)."""
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    image = data.astronaut().astype(np.float64)
    for i in range(count):
        crop = image[40 * i : 40 * i + size[0], 60 : 60 + size[1]]
        noisy = np.clip(crop + rng.normal(0, 20, crop.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(folder / f"photo{i}.png")
    return folder


def test_samples_carry_no_target_and_each_folder_is_a_benchmark(tmp_path):
    _photos(tmp_path / "RealRain" / "input", 3)
    _photos(tmp_path / "night", 2)
    dm = unpaired_datamodule(test=[{"input": str(tmp_path / "RealRain" / "input")}, {"input": str(tmp_path / "night"),
                                                                                       "name": "dark"}])
    assert dm.test_benchmarks == ["realrain", "dark"] and dm.unpaired_benchmarks == {"realrain", "dark"}
    sample = dm.test_sets["realrain"][0]
    assert "gt" not in sample and sample["lq"].shape == (3, 96, 112) and sample["name"] == "photo0"
    assert not dm.train_sets


def test_bad_folders_are_named(tmp_path):
    with pytest.raises(ConfigError, match="data=unpaired has no folder"):
        unpaired_datamodule()
    with pytest.raises(DataNotFoundError, match="nowhere"):
        unpaired_datamodule(input=str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="holds no images"):
        unpaired_datamodule(input=str(tmp_path / "empty"))
    folder = _photos(tmp_path / "a", 2)
    (folder / "broken.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="broken.png cannot be read"):
        unpaired_datamodule(input=str(folder))
    with pytest.raises(ConfigError, match=r"both named \['a'\]"):
        unpaired_datamodule(test=[{"input": str(folder)}, {"input": str(folder)}], check=False)


def _niqe_available() -> None:
    from src.metrics.niqe import pristine_model

    try:
        pristine_model()
    except UserError as err:
        pytest.skip(f"NIQE's pristine model is absent (make install downloads it): {err}")


def test_eval_reports_the_no_reference_columns_only(tmp_path):
    from src.eval import evaluate

    _niqe_available()
    folder = _photos(tmp_path / "photos", 2, size=(192, 208))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    record = evaluate(compose("eval", [*TINY, f"data.input={folder}", "metrics.niqe=true"], tmp_path / "run"))
    row = record["benchmarks"]["photos"]
    assert 0 < row["niqe"] < 100 and 0 < row["input_niqe"] < 100
    assert all(math.isnan(row[k]) for k in ("psnr", "ssim", "input_psnr", "input_ssim"))
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["average"]["niqe"] == pytest.approx(row["niqe"])
    table = (tmp_path / "run" / "results.md").read_text()
    assert "| photos | - | - | - | - | - |" in table and "restored NIQE" in table
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # the user's photographs are untouched


def test_eval_without_a_no_reference_metric_says_which_to_add(tmp_path):
    from src.eval import evaluate

    folder = _photos(tmp_path / "photos", 1)
    with pytest.raises(ConfigError, match=r"photos has no target images.*metrics.niqe=true"):
        evaluate(compose("eval", [*TINY, f"data.input={folder}"], tmp_path / "run"))
