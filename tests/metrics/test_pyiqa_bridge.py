"""``metrics.pyiqa=[...]``: the pyiqa bridge, with a stand-in ``pyiqa`` package (the real one is a user's extra).

The stand-in has pyiqa's surface the bridge uses: ``list_models``, ``create_metric`` returning a callable with
``metric_mode`` and ``lower_better``, and ``pyiqa.utils.download_util.download_url_to_file``, through which its
metrics fetch weights they lack (as pyiqa's ``load_file_from_url`` does).
"""

from __future__ import annotations

import math
import os
import sys
import types

import pytest
import torch

from src.metrics.pyiqa_bridge import PyiqaScorer, WeightsMissingError
from src.utils.errors import ConfigError


class _Brightness(torch.nn.Module):
    """A no-reference stand-in: the mean of each image."""

    metric_mode, lower_better = "NR", False

    def forward(self, x):
        return x.mean(dim=(1, 2, 3)).unsqueeze(1)


class _Distance(torch.nn.Module):
    """A full-reference stand-in: the mean absolute difference."""

    metric_mode, lower_better = "FR", True

    def forward(self, x, y):
        return (x - y).abs().mean(dim=(1, 2, 3))


@pytest.fixture
def fake_pyiqa(monkeypatch, tmp_path):
    package = types.ModuleType("pyiqa")
    utils = types.ModuleType("pyiqa.utils")
    download_util = types.ModuleType("pyiqa.utils.download_util")
    download_util.download_url_to_file = lambda url, dst, *a, **k: pytest.fail("the bridge let a download through")

    def create_metric(name, device=None):
        if name == "heavy":  # a metric whose weights are not in the cache: it tries to fetch them
            download_util.download_url_to_file("https://example.org/heavy.pth", str(tmp_path / "pyiqa" / "heavy.pth"))
        if name == "hub":  # one that loads its model through Hugging Face, which is offline
            assert os.environ["HF_HUB_OFFLINE"] == "1"
            raise OSError("offline: model not in the local cache")
        return {"bright": _Brightness, "dist": _Distance}[name]()

    package.list_models = lambda: ["bright", "dist", "heavy", "hub"]
    package.create_metric = create_metric
    package.utils = utils
    utils.download_util = download_util
    for name, module in (("pyiqa", package), ("pyiqa.utils", utils), ("pyiqa.utils.download_util", download_util)):
        monkeypatch.setitem(sys.modules, name, module)
    return download_util


def test_absent_pyiqa_names_the_package_and_its_licence(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyiqa", None)  # import fails
    with pytest.raises(ConfigError, match=r"needs the pyiqa package.*PolyForm Noncommercial.*pip install pyiqa"):
        PyiqaScorer.load("musiq")


def test_unknown_metric_lists_pyiqas(fake_pyiqa):
    with pytest.raises(ConfigError, match=r"unknown pyiqa metric 'musiq'; pyiqa has bright, dist"):
        PyiqaScorer.load("musiq")


def test_nothing_is_downloaded_and_the_missing_file_is_named(fake_pyiqa, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    original = fake_pyiqa.download_url_to_file
    with pytest.raises(WeightsMissingError, match=r"heavy needs heavy.pth .*put the file at .*pyiqa/heavy.pth"):
        PyiqaScorer.load("heavy")
    assert fake_pyiqa.download_url_to_file is original  # restored after building
    with pytest.raises(ConfigError, match=r"hub could not be built offline"):
        PyiqaScorer.load("hub")
    assert "HF_HUB_OFFLINE" not in os.environ  # offline only while building


def test_scores_per_image_and_reference_kinds(fake_pyiqa):
    bright, dist = PyiqaScorer.load("bright"), PyiqaScorer.load("dist")
    assert bright.no_reference and not bright.lower_better and bright.column == "pyiqa_bright"
    assert not dist.no_reference and dist.lower_better
    x = torch.stack([torch.full((1, 8, 8), 0.25), torch.full((1, 8, 8), 0.75)])  # grey images: made RGB
    assert bright(x).tolist() == [0.25, 0.75] and bright(x).dtype == torch.float64
    assert dist(x, torch.zeros_like(x)).tolist() == [0.25, 0.75]
    with pytest.raises(ValueError, match="full-reference"):
        dist(x)


def test_protocol_columns_from_pyiqa(fake_pyiqa):
    from src.metrics.protocols import FloatProtocol

    protocol = FloatProtocol("promptir", "test", pyiqa=["bright", "dist"])
    assert protocol.quantities == ("psnr", "ssim", "pyiqa_bright", "pyiqa_dist")
    assert protocol.no_reference_quantities == ("pyiqa_bright",)
    pred, target = torch.full((1, 3, 16, 16), 0.5), torch.full((1, 3, 16, 16), 0.25)
    scores = protocol.per_image(pred, target)
    assert scores["pyiqa_bright"].item() == 0.5 and scores["pyiqa_dist"].item() == 0.25
    assert set(protocol.per_image_no_reference(pred)) == {"pyiqa_bright"}
    assert "pyiqa dist (full reference; lower is better)" in protocol.summary
    assert math.isfinite(scores["psnr"].item())


def test_tables_grow_pyiqa_columns():
    from src.results.record import optional_columns
    from src.results.report import optional_header

    rows = {"a": {"psnr": 20.0, "pyiqa_musiq": 50.0, "input_pyiqa_musiq": 40.0}}
    assert optional_columns(rows) == ("input_pyiqa_musiq", "pyiqa_musiq")
    assert optional_header("pyiqa_musiq") == "restored pyiqa musiq"
    assert optional_header("input_pyiqa_musiq") == "input pyiqa musiq"
