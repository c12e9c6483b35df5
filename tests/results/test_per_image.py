"""Per-image test results: every image's scores in ``per_image.csv`` and the worst and best restored images."""

from __future__ import annotations

import csv

import torch
from PIL import Image

from src.results.per_image import CSV_NAME, PerImageLog


def _batch(values):
    n = len(values)
    return ({"psnr": torch.tensor(values, dtype=torch.float64)}, {"psnr": torch.zeros(n, dtype=torch.float64)},
            torch.rand(n, 3, 8, 8), torch.rand(n, 3, 8, 8), torch.rand(n, 3, 8, 8))


def test_keeps_every_score_and_the_ends_of_the_ranking(tmp_path):
    log = PerImageLog(keep=2)
    restored, degraded, lq, pred, gt = _batch([20.0, 35.0, 10.0])
    log.add("a", ["x", "y", "z"], restored, degraded, lq, pred, gt)
    restored, degraded, lq, pred, gt = _batch([30.0, 5.0])
    log.add("a", ["u", "v"], restored, degraded, lq, pred, gt)
    assert [r.name for r in log.ends["a"]["worst"]] == ["v", "z"]
    assert [r.name for r in log.ends["a"]["best"]] == ["y", "u"]
    assert log.ends["a"]["best"][0].pred.dtype == torch.uint8
    worst, best = log.disjoint_ends("a")
    assert [r.name for r in worst] == ["v", "z"] and [r.name for r in best] == ["y", "u"]
    small = PerImageLog(keep=2)
    small.add("b", ["p", "q"], *_batch([1.0, 2.0]))  # two images: one worst, one best, none in both
    assert [[r.name for r in end] for end in small.disjoint_ends("b")] == [["p"], ["q"]]
    log.write_csv(tmp_path)
    with open(tmp_path / CSV_NAME, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["image"], float(r["psnr"]), float(r["input_psnr"])) for r in rows][:2] == [("x", 20.0, 0.0),
                                                                                        ("y", 35.0, 0.0)]


def test_unpaired_images_are_scored_but_not_ranked():
    log = PerImageLog()
    restored, degraded, lq, pred, _ = _batch([20.0])
    log.add("photos", ["p"], restored, degraded, lq, pred, None)
    assert len(log.rows) == 1 and not log.ends


def test_eval_writes_the_csv_and_the_worst_best_picture(tiny_cfg, tmp_path):
    from src.eval import evaluate

    record = evaluate(tiny_cfg("untrained=true", "data.test_source.max_side=96", name="eval"))
    with open(tmp_path / CSV_NAME, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["benchmark"] for r in rows} == set(record["benchmarks"])
    benchmark = next(iter(record["benchmarks"]))
    mean = sum(float(r["psnr"]) for r in rows if r["benchmark"] == benchmark) / sum(
        r["benchmark"] == benchmark for r in rows)
    assert abs(mean - record["benchmarks"][benchmark]["psnr"]) < 1e-6  # the table's mean is these images' mean
    with Image.open(tmp_path / "panels" / "worst_best" / f"{benchmark}.png") as picture:
        assert picture.format == "PNG" and picture.size[0] > 3 * 16
