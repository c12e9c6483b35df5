"""``src.eval`` on a folder reproduces KAIR's DnCNN protocol: same PSNR as ``experiments/dncnn_bsd68/check.py``.

The full command (68 images, 29.23 dB) is in ``experiments/dncnn_bsd68/README.md``; here the first two images.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.eval import evaluate
from tests.conftest import ROOT, compose

IMAGES = 2


def _check_script():
    spec = importlib.util.spec_from_file_location("dncnn_check", ROOT / "experiments" / "dncnn_bsd68" / "check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # a fresh Python process on real weights and images: ~8 s
def test_eval_command_gives_the_check_script_psnr(shared_dir: Path, tmp_path: Path) -> None:
    data = shared_dir / "data"
    weights, root = data / "weights" / "dncnn_25.pth", data / "test" / "denoise" / "BSD68_gray"
    if not weights.is_file() or not root.is_dir():
        pytest.skip(f"{weights} or {root} absent")
    cfg = compose("eval", [
        "model=dncnn", f"model.pretrained={weights}", "model.backbone.batch_norm=false", "data=kair_denoise",
        f"data.root={root}", f"data.limit={IMAGES}", "metrics=y_channel", "trainer=cpu", "logger=none",
    ], tmp_path)
    row = evaluate(cfg)["benchmarks"]["bsd68_gray_s25"]

    check = _check_script()
    model = check.from_official("dncnn", check.KAIR_KWARGS, check.load_state_dict_file(weights))
    restored, noisy_psnr = [], []
    for path in sorted(root.glob("*.png"))[:IMAGES]:
        clean = np.asarray(Image.open(path).convert("L"))
        noisy = check.kair_noisy(clean)
        with torch.no_grad():
            out = model(torch.from_numpy(noisy)[None, None])[0, 0].numpy()
        restored.append(check.psnr_uint8(check.to_uint8(out), clean))
        noisy_psnr.append(check.psnr_uint8(check.to_uint8(noisy), clean))
    assert row["psnr"] == pytest.approx(np.mean(restored), abs=1e-9)
    assert row["input_psnr"] == pytest.approx(np.mean(noisy_psnr), abs=1e-9)


@pytest.mark.slow
def test_whole_bsd68_gives_the_dncnn_paper_figure(shared_dir: Path, tmp_path: Path) -> None:
    """All 68 images: 29.23 dB, Table 2 of the DnCNN paper for sigma 25 (the released KAIR weights)."""
    data = shared_dir / "data"
    weights, root = data / "weights" / "dncnn_25.pth", data / "test" / "denoise" / "BSD68_gray"
    if not weights.is_file() or not root.is_dir():
        pytest.skip(f"{weights} or {root} absent")
    cfg = compose("eval", [
        "model=dncnn", f"model.pretrained={weights}", "model.backbone.batch_norm=false", "data=kair_denoise",
        f"data.root={root}", "metrics=y_channel", "trainer=cpu", "logger=none",
    ], tmp_path)
    record = evaluate(cfg)
    assert len(list(root.glob("*.png"))) == 68
    assert round(record["benchmarks"]["bsd68_gray_s25"]["psnr"], 2) == 29.23
