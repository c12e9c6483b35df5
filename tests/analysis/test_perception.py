"""The perception-distortion plot: one point per evaluated run, runs without the quantity named and left out."""

from __future__ import annotations

import json

import pytest

from src.analysis.perception import main, read_point


def _run(folder, psnr, niqe=None):
    folder.mkdir(parents=True)
    average = {"psnr": psnr, "input_psnr": 20.0, **({"niqe": niqe, "input_niqe": 9.0} if niqe is not None else {})}
    (folder / "metrics.json").write_text(json.dumps({"checkpoint": f"/x/{folder.name}/checkpoints/last.ckpt",
                                                     "average": average}))
    return folder


def test_points_and_picture(tmp_path, capsys) -> None:
    a, b = _run(tmp_path / "a", 28.0, 4.0), _run(tmp_path / "b", 30.0, 6.0)
    bare = _run(tmp_path / "c", 29.0)
    assert read_point(a, "niqe")["label"] == "a" and read_point(bare, "niqe") is None
    out = tmp_path / "pd.png"
    main([str(a), str(b), str(bare), "--out", str(out)])
    printed = capsys.readouterr().out
    assert out.stat().st_size > 1000 and "| a | 28.00 | 4.0000 |" in printed and "left out" in printed
    with pytest.raises(SystemExit):
        main([str(tmp_path / "missing")])
