"""LPIPS as an optional quantity: local weights only, a clear error without them, torchmetrics' values with them.

No test here has ImageNet weights (no internet): a randomly initialised torchvision network saved under the file
name torchvision would cache stands in for them, in a temporary ``torch.hub`` folder. torchmetrics' own
``LearnedPerceptualImagePatchSimilarity`` then reads that same file, so the two must agree exactly.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from omegaconf import OmegaConf
from PIL import Image
from torch import Tensor

from src.metrics.aggregate import PerImageMean
from src.metrics.lpips import NETS, LpipsWeightsError, weights_file
from src.results.record import read_json, to_record
from src.results.report import RESULT_COLUMNS, render_table, write_reports
from src.run.assemble import build
from src.utils.errors import ConfigError
from tests.helpers import configs, metric_protocol

CONF = Path(__file__).resolve().parents[2] / "conf" / "metrics"


@pytest.fixture(autouse=True)
def hub_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``torch.hub`` folder for every test, and any download attempt fails the test."""
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "_hub_dir", str(hub))  # what torch.hub.set_dir sets, undone after the test

    def no_download(url: str, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"a download was attempted: {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    return hub


@pytest.fixture
def alex_weights(hub_dir: Path) -> Path:
    """A random AlexNet state dict where torchvision would cache the ImageNet one (seeded, so reproducible)."""
    torch.manual_seed(0)
    path = weights_file("alex")
    assert path.parent == hub_dir / "checkpoints"
    path.parent.mkdir(parents=True)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    return path


def _pair(seed: int, batch: int = 2, size: tuple[int, int] = (64, 80)) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    target = torch.rand(batch, 3, *size, generator=gen)
    return (target + 0.1 * torch.randn(target.shape, generator=gen)).clamp(0, 1), target


# ---- without the weights -------------------------------------------------------------------------------------


@pytest.mark.parametrize("net", sorted(NETS))
def test_missing_weights_fail_fast_with_what_to_fetch(net: str, hub_dir: Path) -> None:
    url = getattr(torchvision.models, NETS[net][1]).DEFAULT.url
    name = url.rsplit("/", 1)[1]
    with pytest.raises(LpipsWeightsError) as err:
        metric_protocol("promptir", lpips=net)
    message = str(err.value)
    for part in (f"metrics.lpips={net}", str(hub_dir / "checkpoints"), name, url, "metrics.lpips=null"):
        assert part in message, part
    assert not hub_dir.exists()  # nothing written, nothing fetched


def test_missing_weights_through_the_config_are_a_config_error(hub_dir: Path) -> None:
    cfg = OmegaConf.load(CONF / "gaussian_ssim.yaml")
    cfg.lpips = "alex"
    with pytest.raises(ConfigError, match=r"metrics\.lpips=alex.*metrics\.lpips=null"):
        build(cfg, "metrics")


def test_unknown_network_is_refused() -> None:
    with pytest.raises(ValueError, match="alex, vgg, squeeze"):
        metric_protocol("promptir", lpips="resnet")


def test_unusable_weights_file_is_reported(hub_dir: Path) -> None:
    path = weights_file("alex")
    path.parent.mkdir(parents=True)
    path.write_text("not weights")
    with pytest.raises(LpipsWeightsError, match="not a readable weights file"):
        metric_protocol("promptir", lpips="alex")
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), path)
    with pytest.raises(LpipsWeightsError, match="does not fit"):
        metric_protocol("promptir", lpips="alex")


def test_off_by_default_changes_nothing() -> None:
    for name in configs("metrics"):
        protocol = metric_protocol(name)
        assert protocol.lpips is None and protocol.quantities == ("psnr", "ssim")
        assert protocol.summary == protocol.description
        assert set(protocol.per_image(*_pair(0, batch=1, size=(24, 24)))) == {"psnr", "ssim"}, name
        assert OmegaConf.load(CONF / f"{name}.yaml").lpips is None


# ---- with (stand-in) weights ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", configs("metrics"))
def test_identical_images_score_zero_and_different_ones_more(name: str, alex_weights: Path) -> None:
    if name == "raw":
        pytest.skip("metrics=raw scores packed RAW and refuses LPIPS (tests/metrics/test_raw_protocol.py)")
    protocol = metric_protocol(name, lpips="alex")
    assert protocol.quantities == ("psnr", "ssim", "lpips")
    pred, target = _pair(1)
    same = protocol.per_image(target, target.clone())["lpips"]
    assert same.dtype == torch.float64 and same.shape == (2,)
    assert same.abs().max() < 1e-6
    assert (protocol.per_image(pred, target)["lpips"] > 1e-4).all()
    assert "LPIPS (alex backbone" in protocol.summary and "lower is better" in protocol.summary


def test_gray_images_are_scored_as_rgb(alex_weights: Path) -> None:
    protocol = metric_protocol("y_channel", lpips="alex")
    pred, target = _pair(2)
    gray = protocol.per_image(pred[:, :1], target[:, :1])["lpips"]
    rgb = protocol.per_image(pred[:, :1].expand(-1, 3, -1, -1), target[:, :1].expand(-1, 3, -1, -1))["lpips"]
    torch.testing.assert_close(gray, rgb)


def _read_rgb(path: Path) -> Tensor:
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)


def test_equals_torchmetrics_on_real_images(shared_dir: Path, alex_weights: Path) -> None:
    from torchmetrics.image import LearnedPerceptualImagePatchSimilarity

    root = shared_dir / "data" / "test" / "derain" / "Rain100L_samples"
    inputs = sorted((root / "input").glob("*.png"))
    if not inputs:
        pytest.skip(f"no Rain100L sample images in {root}")
    protocol = metric_protocol("promptir", lpips="alex")
    reference = LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True)  # reads the same file
    for path in inputs:
        rainy, clean = _read_rgb(path)[None], _read_rgb(root / "target" / path.name)[None]
        ours = protocol.per_image(rainy, clean)["lpips"]
        theirs = reference(rainy, clean)
        assert ours.item() == pytest.approx(theirs.item(), rel=1e-6, abs=1e-7), path.name
        assert ours.item() > 0


def test_batches_score_per_image_and_sets_average_per_image(alex_weights: Path) -> None:
    protocol = metric_protocol("promptir", lpips="alex")
    pred, target = _pair(3, batch=3)
    batch = protocol.per_image(pred, target)["lpips"]
    singles = torch.cat([protocol.per_image(pred[i : i + 1], target[i : i + 1])["lpips"] for i in range(3)])
    torch.testing.assert_close(batch, singles, rtol=1e-5, atol=1e-7)
    meter = PerImageMean()
    meter.update(protocol.per_image(pred[:2], target[:2])["lpips"])  # a batch of two, then one
    meter.update(protocol.per_image(pred[2:], target[2:])["lpips"])
    assert meter.compute().item() == pytest.approx(singles.mean().item(), rel=1e-6)
    assert meter.compute().item() != pytest.approx((singles[:2].mean() + singles[2]).item() / 2, rel=1e-6)


# ---- tables ----------------------------------------------------------------------------------------------------


def _record(lpips: str | None) -> dict:
    results = {}
    for i, b in enumerate(("synth_noise", "synth_rain")):
        results[b] = {"psnr": 28.0 + i, "ssim": 0.9, "input_psnr": 20.0, "input_ssim": 0.6}
        if lpips:
            results[b] |= {"lpips": 0.1 + i / 10, "input_lpips": 0.5}
    return to_record(results, "promptir", lpips=lpips, data="synth5deg")


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_tables_without_lpips_are_as_before(tmp_path: Path) -> None:
    record = _record(None)
    assert "lpips" not in record and set(record["average"]) == {"input_psnr", "input_ssim", "psnr", "ssim"}
    write_reports(record, tmp_path)
    assert tuple(_csv(tmp_path / "results.csv")[0]) == RESULT_COLUMNS
    assert "LPIPS" not in (tmp_path / "results.md").read_text()


class _FakeWandb:
    def __init__(self) -> None:
        self.tables: dict[str, tuple[list, list]] = {}

    def log_table(self, key: str, columns: list, data: list) -> None:
        self.tables[key] = (columns, data)


def test_tables_with_lpips_have_its_columns_and_say_lower_is_better(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("lightning.pytorch.loggers.WandbLogger", _FakeWandb)
    wandb = _FakeWandb()
    record = _record("alex")
    assert record["lpips"] == "alex" and record["average"]["lpips"] == pytest.approx(0.15)
    write_reports(record, tmp_path, loggers=[wandb])
    columns, data = wandb.tables["test/results"]
    assert columns[-2:] == ["input_lpips", "lpips"] and data[-1][-1] == pytest.approx(0.15)
    rows = _csv(tmp_path / "results.csv")
    assert tuple(rows[0]) == (*RESULT_COLUMNS, "input_lpips", "lpips")
    assert float(rows[-1]["lpips"]) == pytest.approx(0.15) and rows[-1]["benchmark"] == "average"
    markdown = (tmp_path / "results.md").read_text()
    assert "restored LPIPS ↓" in markdown and "LPIPS (alex backbone" in markdown and "lower is better" in markdown
    assert "| average | 20.00 | 0.6000 | 28.50 | 0.9000 | +8.50 | 0.5000 | 0.1500 |" in markdown
    table = render_table(record)
    assert "LPIPS (alex backbone" in str(table.title) and [c.header for c in table.columns][-1] == "restored LPIPS ↓"


def test_eval_run_reports_and_logs_lpips(tiny_cfg, tmp_path: Path, alex_weights: Path) -> None:
    from src.eval import evaluate

    cfg = tiny_cfg("data.test_source.max_side=96", "metrics=y_channel", "metrics.lpips=alex", "logger=csv",
                   "untrained=true", name="eval")
    record = evaluate(cfg)
    assert record["metrics"] == "y_channel" and record["lpips"] == "alex"
    for name, row in record["benchmarks"].items():
        assert math.isfinite(row["lpips"]) and row["lpips"] > 0, name
        assert math.isfinite(row["input_lpips"]) and row["input_lpips"] > 0, name
    assert read_json(tmp_path / "metrics.json")["average"]["lpips"] == pytest.approx(record["average"]["lpips"])
    assert tuple(_csv(tmp_path / "results.csv")[0])[-2:] == ("input_lpips", "lpips")
    assert "restored LPIPS ↓" in (tmp_path / "results.md").read_text()
    (logged,) = _csv(next(tmp_path.rglob("metrics.csv")))
    for name, row in record["benchmarks"].items():
        assert float(logged[f"test/lpips/{name}"]) == pytest.approx(row["lpips"], rel=1e-6)
    assert "test/lpips" in logged
