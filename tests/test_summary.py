from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from src.summary import summarise
from tests.conftest import ROOT, compose


def test_summary_counts_match_the_built_model(tmp_path):
    cfg = compose("train", ["model=restormer_tiny"], tmp_path)
    info = summarise(cfg, (64, 64))
    from src.run.assemble import build_model

    model = build_model(cfg)
    assert info["parameters"] == sum(p.numel() for p in model.net.parameters())
    assert info["flops"] > 0 and info["channels_per_level"] == [16, 32, 64, 128]
    bigger = summarise(cfg, (128, 128))
    assert bigger["flops"] > 3 * info["flops"]  # convolutions scale with the pixel count


@pytest.mark.slow  # a fresh Python process: ~7 s on 2 cores
def test_summary_command_prints_the_paper_count():
    proc = subprocess.run([sys.executable, "-m", "src.summary", "model=restormer"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "26.13M" in proc.stdout and "FLOPs at 256x256" in proc.stdout


@pytest.mark.parametrize("value", ["abc", [64, "x"], -3, [0, 64], [64, 64, 64], True])
def test_a_resolution_that_is_not_two_positive_numbers_is_one_clear_line(value):
    from src.summary import parse_resolution
    from src.utils.errors import ConfigError

    with pytest.raises(ConfigError, match=r"resolution=.*: expected \[H,W\], two whole numbers >= 1"):
        parse_resolution(value)


def test_one_number_is_a_square_resolution():
    from src.summary import parse_resolution

    assert parse_resolution(48) == (48, 48) and parse_resolution([32, 40]) == (32, 40)


@pytest.mark.slow  # a fresh Python process: ~5-10 s on 2 cores
def test_the_console_script_runs_like_the_module():
    script = Path(sys.executable).parent / "aioir-summary"
    if not script.exists():
        pytest.skip(f"{script} is not installed (pip install -e . creates it)")
    proc = subprocess.run([str(script), "model=restormer_tiny"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "0.80M" in proc.stdout
