"""``python -m src.bench`` on a tiny model with tiny sizes: it runs, writes every field, and its ratios are honest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from src.bench.cli import main
from src.bench.run import JSON_NAME, MARKDOWN_NAME

TINY_ARGS = [
    "--models", "restormer_tiny", "--override", "model.backbone.dim=8",
    "--train-size", "32", "--steps", "3", "--warmup", "2", "--run-steps", "100",
    "--latency-sizes", "32x32", "40x24", "--latency-repeats", "2",
    "--families", "noise", "haze", "--loader-batches", "2", "--loader-warmup", "1",
    "--tiled-size", "100x72", "--tile", "48", "--overlap", "8", "--tiled-in-process",
    "--baseline-ddp", "on",
]  # fmt: skip

RECORD_FIELDS = {"setting", "describe", "device", "threads", "warmup_times_s", "warmup_s", "times_s", "median_s",
                 "iqr_s", "min_s", "memory"}


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("bench")
    main([*TINY_ARGS, "--out", str(out)])
    return json.loads((out / JSON_NAME).read_text()), out


def test_json_has_every_field(bench: tuple[dict[str, Any], Path]) -> None:
    result, _ = bench
    assert {"created", "command", "machine", "versions", "config", "settings", "models", "loader", "goals",
            "load_average"} <= set(result)
    assert {"cpu", "cores", "torch_threads", "gpu", "memory_gib"} <= set(result["machine"])
    assert {"python", "torch", "torchvision", "lightning", "git_commit"} <= set(result["versions"])
    assert set(result["settings"]) == {"baseline", "ours"}
    assert result["settings"]["baseline"]["ddp_find_unused"] is True
    figures = result["models"]["restormer_tiny"]
    for name, run in figures["training"].items():
        assert RECORD_FIELDS | {"images_per_s", "batch", "size", "parameters"} <= set(run), name
        assert len(run["times_s"]) == 3 and run["size"] == [32, 32] and run["batch"] == 8
        assert run["memory"]["kind"] == "process_peak_rss" and run["memory"]["peak_mib"] > 0
    assert set(figures["latency"]) == {"32x32", "40x24"}
    for runs in figures["latency"].values():
        assert set(runs) == {"baseline", "ours"}
        for run in runs.values():
            assert set(run) >= RECORD_FIELDS and len(run["times_s"]) == 2
            assert run["setting"]["ddp_find_unused"] is None  # no DDP at inference
    assert figures["latency"]["40x24"]["ours"]["size"] == [24, 40]
    tiled = figures["tiled"]
    assert tiled["tiles"] == 2 * 3 and tiled["size"] == [72, 100]
    assert tiled["bound"]["bound_mib"] >= tiled["bound"]["tile_peak_mib"]
    assert tiled["within_bound"] == (tiled["peak_mib"] <= tiled["bound"]["bound_mib"])
    fidelity = figures["fidelity"]
    assert set(fidelity["inference"]) == {"baseline", "ours"} and set(fidelity["training"]) == {"ours"}
    assert fidelity["training"]["ours"]["first_loss"] == figures["training"]["baseline"]["first_loss"]
    assert any(g["goal"] == "fidelity ours" for g in result["goals"])
    assert set(result["loader"]) == {"noise", "haze"}
    for record in result["loader"].values():
        assert record["batches"] == 2 and record["workers"] == 1 and record["patches_per_s_per_worker"] > 0
    for goal in result["goals"]:
        assert {"goal", "model", "target", "measured", "met", "why"} <= set(goal) and goal["why"]


def test_ratios_come_from_the_stored_medians(bench: tuple[dict[str, Any], Path]) -> None:
    figures = bench[0]["models"]["restormer_tiny"]
    training = figures["training"]
    ratio = figures["speedup"]["training"]["ours"]
    assert ratio == pytest.approx(training["baseline"]["median_s"] / training["ours"]["median_s"])
    assert ratio == pytest.approx(training["ours"]["images_per_s"] / training["baseline"]["images_per_s"])
    for size, runs in figures["latency"].items():
        assert figures["speedup"]["latency"][size]["ours"] == pytest.approx(
            runs["baseline"]["median_s"] / runs["ours"]["median_s"])
    goal = next(g for g in bench[0]["goals"] if g["goal"] == "training speed-up")
    assert goal["measured"] == f"{ratio:.2f}x"


def test_markdown_names_the_goals(bench: tuple[dict[str, Any], Path]) -> None:
    result, out = bench
    text = (out / MARKDOWN_NAME).read_text()
    for heading in ("## Training throughput", "## Inference latency", "## Data loading", "## Tiled inference",
                    "## Goals"):
        assert heading in text
    assert result["machine"]["cpu"] in text
    for goal in result["goals"]:
        assert goal["goal"] in text
    assert "training speed-up" in text and "loader noise" in text and "within tile bound" in text


def test_unknown_model_lists_the_available_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--models", "no_such_model", "--out", "unused"])
    err = capsys.readouterr().err
    assert "no_such_model" in err and "available models" in err and "promptir_tiny" in err


@pytest.mark.parametrize("args", [["--steps", "0"], ["--tile", "32", "--overlap", "32"], ["--ours", "speed=1"],
                                  ["--latency-sizes", "12xab"]])
def test_bad_arguments_are_usage_errors(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--models", "restormer_tiny", *args])
    assert "error" in capsys.readouterr().err
