"""CSV, Markdown, rich and W&B output of the test table and the published comparison."""

from __future__ import annotations

import csv
import io

import pytest
from rich.console import Console

from src.results.published import comparison_rows
from src.results.record import to_record
from src.results.report import protocol_caption, render_comparison, write_csv, write_reports
from tests.helpers import metric_protocol

FIVE = ("sots_outdoor", "rain100l", "cbsd68_s25", "gopro", "lol")


def record(data: str = "5deg") -> dict:
    results = {b: {"psnr": 28.0 + i, "ssim": 0.9, "input_psnr": 20.0, "input_ssim": 0.6} for i, b in enumerate(FIVE)}
    return to_record(results, "promptir", data=data)


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_write_reports_for_a_published_setting(tmp_path):
    console = Console(file=io.StringIO(), width=200)
    written = write_reports(record(), tmp_path, console=console, description=metric_protocol("promptir").description)
    assert set(written) == {"results_csv", "results_md", "comparison_csv", "comparison_png"}
    from PIL import Image

    with Image.open(written["comparison_png"]) as chart:  # ours beside the published numbers, readable
        assert chart.format == "PNG" and min(chart.size) > 100
    results = read_csv(tmp_path / "results.csv")
    assert [r["benchmark"] for r in results] == [*FIVE, "average"]
    assert float(results[0]["gain_psnr"]) == pytest.approx(8.0)
    comparison = read_csv(tmp_path / "comparison.csv")
    promptir_avg = next(r for r in comparison if r["method"] == "PromptIR" and r["benchmark"] == "average")
    assert float(promptir_avg["published_psnr"]) == 29.15 and float(promptir_avg["diff_psnr"]) == pytest.approx(0.85)
    moce = next(r for r in comparison if r["method"] == "MoCE-IR")
    assert moce["diff_ssim"] == "" and moce["diff_psnr"] != ""
    markdown = (tmp_path / "results.md").read_text()
    assert markdown.count(metric_protocol("promptir").description) == 2  # above both tables
    assert "| PromptIR | LOL | 32.00 | 22.68 | +9.32 |" in markdown
    printed = console.file.getvalue()
    assert "metric protocol: promptir" in printed and "ours vs published" in printed


def test_synthetic_data_has_no_comparison(tmp_path):
    written = write_reports(record("synth5deg"), tmp_path)
    assert set(written) == {"results_csv", "results_md"}
    assert not (tmp_path / "comparison.csv").exists()
    assert "Compared with published" not in (tmp_path / "results.md").read_text()


def test_csv_writes_none_as_empty_and_round_trips_floats(tmp_path):
    path = write_csv([{"a": 0.1 + 0.2, "b": None}], tmp_path / "x.csv")
    (row,) = read_csv(path)
    assert float(row["a"]) == 0.1 + 0.2 and row["b"] == ""


def test_captions_name_the_protocol_and_describe_it():
    described = metric_protocol("y_channel").description
    assert protocol_caption("y_channel", described) == f"metric protocol: y_channel ({described})"
    assert protocol_caption("y_channel") == "metric protocol: y_channel"  # a record read back alone
    assert "LPIPS (alex" in protocol_caption("y_channel", lpips="alex")
    assert protocol_caption("custom", "my own") == "metric protocol: custom (my own)"
    promptir = metric_protocol("promptir").description
    table = render_comparison(comparison_rows("5deg", {}, "promptir", methods=["PromptIR"]), "promptir", promptir)
    assert "gaussian" not in str(table.title) and promptir in str(table.title)


class _FakeWandb:
    def __init__(self) -> None:
        self.tables: dict[str, tuple[list, list]] = {}
        self.images: dict[str, list] = {}

    def log_table(self, key: str, columns: list, data: list) -> None:
        self.tables[key] = (columns, data)

    def log_image(self, key: str, images: list) -> None:
        self.images[key] = images


def test_tables_are_logged_to_wandb(tmp_path, monkeypatch):
    monkeypatch.setattr("lightning.pytorch.loggers.WandbLogger", _FakeWandb)
    logger = _FakeWandb()
    write_reports(record(), tmp_path, loggers=[logger, object()], console=Console(file=io.StringIO()))
    columns, data = logger.tables["test/published_comparison"]
    assert "diff_psnr" in columns and len(data) == 5 * 8 + 8
    assert len(logger.tables["test/results"][1]) == 6
    assert logger.images["comparison"][0].endswith("comparison.png")  # the chart beside the tables


def test_groups_of_benchmarks_are_averaged_apart(tmp_path):
    row = {"psnr": 30.0, "ssim": 0.9, "input_psnr": 20.0, "input_ssim": 0.5}
    results = {"synth_noise": row, "synth_rain": {**row, "psnr": 24.0}, "synth_haze": {**row, "psnr": 26.0}}
    groups = {"synth_noise": "seen", "synth_rain": "unseen family", "synth_haze": "seen"}
    record = to_record(results, "promptir", groups=groups)
    assert record["group_averages"]["seen"]["psnr"] == pytest.approx(28.0)
    assert record["group_averages"]["unseen family"]["psnr"] == pytest.approx(24.0)
    assert list(record["group_averages"]) == ["seen", "unseen family"]
    assert "group_averages" not in to_record(results, "promptir")  # other records stay as they were
    write_reports(record, tmp_path)
    text = (tmp_path / "results.md").read_text()
    assert "average (seen)" in text and "average (unseen family)" in text
    with (tmp_path / "results.csv").open() as f:
        names = [r["benchmark"] for r in csv.DictReader(f)]
    assert names == ["synth_noise", "synth_rain", "synth_haze", "average (seen)", "average (unseen family)", "average"]
