"""``python -m src.analysis.compare``: runs side by side as a table, a bar chart and learning curves."""

from __future__ import annotations

import json
import math

import pytest
from PIL import Image

from src.analysis.compare import main
from src.results.plots import HISTORY_NAME, write_history


def _run(folder, values, history=None):
    folder.mkdir(parents=True)
    benchmarks = {name: {"psnr": v, "ssim": 0.5, "input_psnr": 10.0, "input_ssim": 0.1} for name, v in values.items()}
    average = {"psnr": sum(values.values()) / len(values), "ssim": 0.5, "input_psnr": 10.0, "input_ssim": 0.1}
    (folder / "metrics.json").write_text(json.dumps({"metrics": "promptir", "benchmarks": benchmarks,
                                                     "average": average}))
    if history:
        write_history(history, folder / HISTORY_NAME)
    return folder


def test_table_differences_bars_and_curves(tmp_path, capsys):
    a = _run(tmp_path / "a", {"rain100l": 30.0, "sots_outdoor": 25.0},
             [{"step": 10, "epoch": 0, "val/psnr/rain100l": 20.0}, {"step": 20, "epoch": 1, "val/psnr/rain100l": 25.0}])
    b = _run(tmp_path / "b", {"rain100l": 31.5, "cbsd68_s25": 28.0},
             [{"step": 10, "epoch": 0, "val/psnr/rain100l": 21.0}])
    out = tmp_path / "cmp"
    written = main([str(a), str(b), "--labels", "A", "B", "--published", "3deg", "--methods", "PromptIR",
                    "--out", str(out)])
    table = (out / "compare.md").read_text()
    assert "| rain100l | 30.00 | 31.50 | 1.50 |" in table
    assert "| sots_outdoor | 25.00 | - | - |" in table  # a benchmark one run lacks stays empty
    assert "| cbsd68_s25 | - | 28.00 | - |" in table
    assert "A" in capsys.readouterr().out
    for key in ("bars", "curves"):
        with Image.open(written[key]) as picture:
            assert picture.format == "PNG" and min(picture.size) > 100


def test_published_series_take_the_papers_cells():
    from src.analysis.compare import published_series

    series = published_series("3deg", ["PromptIR", "AirNet"], ["rain100l", "nowhere", "average"], "psnr")
    assert series["PromptIR (published)"][0] == 36.37 and math.isnan(series["PromptIR (published)"][1])
    assert math.isnan(series["AirNet (published)"][0]) and series["AirNet (published)"][2] == 31.20


def test_bad_input_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(tmp_path / "missing")])
    assert "no metrics.json" in capsys.readouterr().err
    run = _run(tmp_path / "r", {"x": 1.0})
    with pytest.raises(SystemExit):
        main([str(run), "--published", "nosuch", "--out", str(tmp_path / "o")])
    assert "no published table" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(run), str(run), "--labels", "one"])
