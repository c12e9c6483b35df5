"""``python -m src.data.check``: the report and exit code on good and broken fake downloads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from src.data.check import main
from tests.data.test_benchmarks import tree_digest
from tests.data.test_layouts import THREE, write_image, write_layout

ROOT = Path(__file__).resolve().parents[2]


def _check(capsys, root: Path, *extra: str, data: str = "3deg") -> tuple[int, str]:
    code = main([f"data={data}", f"data.root={root}", "data.patch_size=32", *extra])
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture
def good(tmp_path) -> Path:
    return write_layout(tmp_path / "data", "promptir", THREE)


@pytest.mark.parametrize("layout", ["promptir", "moceir"])
def test_good_set_passes_apart_from_counts(capsys, tmp_path, layout):
    root = write_layout(tmp_path, layout, THREE)
    code, out = _check(capsys, root, "--ignore-counts", "--decode")
    assert code == 0, out
    assert f"layout '{layout}'" in out and "no problems found apart from the counts above" in out
    for row in ("noise", "rain", "haze", "cbsd68_s15 cbsd68_s25 cbsd68_s50", "rain100l", "sots_outdoor"):
        assert row in out
    code, out = _check(capsys, root)
    assert code == 1 and "found 2, a correct download holds 200" in out and "COUNT" in out


def test_5deg_reports_the_published_counts(capsys, tmp_path):
    root = write_layout(tmp_path, "promptir")
    code, out = _check(capsys, root, data="5deg")
    assert code == 1
    for expected in ("5144", "200", "72135", "2103", "485", "68", "100", "500", "1111", "15"):
        assert f" {expected} " in out or f" {expected}\n" in out
    assert "cbsd68_s25" in out and "cbsd68_s15" not in out


def test_missing_partner(capsys, good):
    (good / "Train/Derain/gt/norain-0.png").unlink()
    code, out = _check(capsys, good, "--ignore-counts")
    assert code == 1 and "ERROR" in out
    assert "1 degraded file(s) with no partner in Train/Derain/gt" in out and "Train/Derain/rainy/rain-0.png" in out


def test_size_mismatch(capsys, good):
    write_image(good / "test/dehaze/target/0001.png", (50, 48))
    code, out = _check(capsys, good, "--ignore-counts")
    assert code == 1
    assert "differ in size: test/dehaze/input/0001_0.8_0.2.jpg 48x40 vs test/dehaze/target/0001.png 48x50" in out


def test_corrupt_and_truncated_files(capsys, good):
    (good / "Train/Denoise/0000.jpg").write_bytes(b"garbage")
    code, out = _check(capsys, good, "--ignore-counts")
    assert code == 1 and "unreadable image(s): Train/Denoise/0000.jpg" in out
    write_image(good / "Train/Denoise/0000.jpg")
    data = (good / "test/derain/Rain100L/target/norain-1.png").read_bytes()
    (good / "test/derain/Rain100L/target/norain-1.png").write_bytes(data[: len(data) // 2])
    code, out = _check(capsys, good, "--ignore-counts", "--level", "pairs")
    assert code == 0  # listing and pairing cannot see a truncated file...
    code, out = _check(capsys, good, "--ignore-counts", "--decode")
    assert code == 1 and "fail to decode: test/derain/Rain100L/target/norain-1.png" in out  # ...decoding does


def test_empty_folder(capsys, good):
    for p in (good / "test/denoise/bsd68").iterdir():
        p.unlink()
    code, out = _check(capsys, good, "--ignore-counts")
    assert code == 1 and f"empty folder (no images): {good / 'test/denoise/bsd68'}" in out


def test_small_training_images_are_reported_against_the_patch_size(capsys, good):
    code, out = _check(capsys, good, "--ignore-counts", "data.patch_size=128")
    assert code == 1 and "smaller than 128x128 after the centre crop to a multiple of 16" in out


def test_missing_root_and_synthetic_settings(capsys, tmp_path):
    code, out = _check(capsys, tmp_path / "nowhere")
    assert code == 2 and str(tmp_path / "nowhere") in out and "Train/Derain" in out
    assert main(["data=synth5deg"]) == 0 and "no benchmark download to check" in capsys.readouterr().out


def test_check_never_writes_and_runs_as_a_module(good):
    before = tree_digest(good)
    proc = subprocess.run(
        [sys.executable, "-m", "src.data.check", "data=3deg", f"data.root={good}", "data.patch_size=32", "--decode"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]  # the fake download is smaller than a real one
    assert "counts that differ" in proc.stdout and "problems:" not in proc.stdout
    assert tree_digest(good) == before
