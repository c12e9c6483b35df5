"""``python -m src.analysis.route``: GRIDS's router read back from grids.json routes as the analysis did, and the
command restores every test image with the network of the group it is routed to."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from src.analysis.grids import analyse
from src.inference.routing import Router, route
from src.train import train
from src.utils.errors import ConfigError
from tests.conftest import TINY_RUN, compose


def test_the_router_read_back_routes_as_the_analysis_fitted_it():
    rng = np.random.default_rng(0)
    features = {"a": rng.normal(0, 1, (40, 6)), "b": rng.normal(0, 1, (40, 6)) + 0.2,
                "c": rng.normal(8, 1, (40, 6))}
    record = json.loads(json.dumps(analyse(features, components=3, bound=1.0, held=0.3, seed=0)))
    router = Router.from_record(record)
    assert router.groups == [["a", "b"], ["c"]] or router.groups == [["c"], ["a", "b"]]
    points = rng.normal(8, 1, (5, 6))
    home = next(k for k, g in enumerate(router.groups) if g == ["c"])
    assert list(router(points)) == [home] * 5
    assert list(router(points)) == list(route(router.projection(points), router.fits))
    with pytest.raises(ConfigError, match="not a grids.json"):
        Router.from_record({"groups": []}, "x.json")


def test_every_test_image_goes_to_a_group_network(tmp_path):
    from src.analysis.grids import run_grids
    from src.analysis.route import run_route

    train(compose("train", [*TINY_RUN, "test=false"], tmp_path / "net"))
    checkpoint = str(tmp_path / "net" / "checkpoints" / "last.ckpt")
    small = ["data.patch_size=32", "data.test_source.max_side=96"]
    run_grids(compose("grids", [f"ckpt_path={checkpoint}", *small, "grids.per_family=9", "grids.components=3",
                                "grids.bound=0", "grids.pictures=false"], tmp_path / "grids"))
    groups = json.loads((tmp_path / "grids" / "grids.json").read_text())["groups"]
    assert len(groups) == 5  # a bound of 0: every family alone
    args = [f"route.grids={tmp_path / 'grids' / 'grids.json'}", *small]
    with pytest.raises(ConfigError, match="one per group"):
        run_route(compose("route", [*args, f"route.checkpoints=[{checkpoint}]"], tmp_path / "bad"))
    result = run_route(compose("route", [*args, "route.checkpoints=[" + ",".join([checkpoint] * 5) + "]"],
                               tmp_path / "route"))
    for row in result["benchmarks"].values():  # one network behind every group: routing cannot change the output
        assert row["images"] == 2 and 0.0 <= row["routed_to_family_group"] <= 1.0
        assert row["routed_psnr"] == pytest.approx(row["family_group_psnr"])
    assert "| synth_noise | 2 |" in (tmp_path / "route" / "route.md").read_text()

    # src.restore routes your own images the same way: each to its group's network, recorded in routing.csv
    import csv

    from PIL import Image

    from src.inference.routing import image_group
    from src.restore import restore
    from src.run.assemble import load_weights

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(photos / f"{name}.png")
    routed = compose("restore", [f"route.grids={tmp_path / 'grids' / 'grids.json'}",
                                 "route.checkpoints=[" + ",".join([checkpoint] * 5) + "]", f"input={photos}",
                                 f"output={tmp_path / 'restored'}"], tmp_path / "restore")
    with pytest.raises(ConfigError, match="one per group"):
        restore(compose("restore", [f"route.grids={tmp_path / 'grids' / 'grids.json'}",
                                    f"route.checkpoints=[{checkpoint}]", f"input={photos}",
                                    f"output={tmp_path / 'bad_restore'}"], tmp_path / "bad_restore_run"))
    report = restore(routed)
    assert len(report.restored) == 2 and set(report.groups) == {photos / "a.png", photos / "b.png"}
    rows = list(csv.DictReader((tmp_path / "restore" / "routing.csv").open()))
    _, analysis = load_weights(compose("restore", [f"ckpt_path={checkpoint}"], tmp_path / "direct"))
    router = Router.from_record(json.loads((tmp_path / "grids" / "grids.json").read_text()))
    for row in rows:
        image = torch.from_numpy(np.asarray(Image.open(row["image"]), dtype=np.float32) / 255).permute(2, 0, 1)
        group = image_group(router, analysis.eval(), image, torch.device("cpu"))
        assert int(row["group"]) == group and row["families"] == " ".join(router.groups[group])
