from __future__ import annotations

import subprocess
import sys

from src.models.summary import summarise
from tests.conftest import ROOT, compose


def test_summary_counts_match_the_built_model(tmp_path):
    cfg = compose("train", ["model=restormer_tiny"], tmp_path)
    info = summarise(cfg.model, (64, 64))
    from src.utils.instantiate import build_model

    model = build_model(cfg)
    assert info["parameters"] == sum(p.numel() for p in model.net.parameters())
    assert info["flops"] > 0 and info["channels_per_level"] == [16, 32, 64, 128]
    bigger = summarise(cfg.model, (128, 128))
    assert bigger["flops"] > 3 * info["flops"]  # convolutions scale with the pixel count


def test_summary_command_prints_the_paper_count():
    proc = subprocess.run([sys.executable, "-m", "src.models.summary", "model=restormer"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "26.13M" in proc.stdout and "FLOPs at 256x256" in proc.stdout
