"""``data=paired``: the user's own (degraded, clean) folders, read from the real sample pairs of ``../shared/data``."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from src.data.layouts import DataCheckError, DataNotFoundError
from src.data.paired_folders import benchmark_name, paired_datamodule
from src.utils.errors import ConfigError
from tests.conftest import compose


@pytest.fixture
def rain(shared_dir: Path) -> Path:
    folder = shared_dir / "data" / "test" / "derain" / "Rain100L_samples"
    if not (folder / "input").is_dir():
        pytest.skip(f"no real rain pairs at {folder}")
    return folder


@pytest.fixture
def haze(shared_dir: Path) -> Path:
    folder = shared_dir / "data" / "test" / "dehaze" / "SOTS_outdoor_samples"
    if not (folder / "input").is_dir():
        pytest.skip(f"no real haze pairs at {folder}")
    return folder


def test_benchmark_names_come_from_the_folder_given() -> None:
    assert benchmark_name(Path("/data/Rain100L_samples/input")) == "rain100l_samples"
    assert benchmark_name(Path("/data/Real Rain (2024)/lq")) == "real_rain_2024"
    assert benchmark_name(Path("/data/SIDD/test/noisy")) == "sidd"


def test_eval_config_reads_real_pairs_under_both_rules(rain: Path, haze: Path, tmp_path: Path) -> None:
    cfg = compose("eval", ["data=paired", f"data.input={rain / 'input'}", f"data.target={rain / 'target'}",
                           f"data.test=[{{input: {haze / 'input'}, target: {haze / 'target'}, rule: haze}}]",
                           "untrained=true"], tmp_path)  # fmt: skip
    datamodule = instantiate(cfg.data)
    assert datamodule.test_benchmarks == ["rain100l_samples", "sots_outdoor_samples"]
    assert datamodule.benchmark_notes == {}  # no name claims a published set
    hazy = datamodule.test_sets["sots_outdoor_samples"]
    assert [(lq.name, gt.name) for lq, gt in hazy.pairs] == [("0001_0.8_0.2.jpg", "0001.png"),
                                                             ("0002_0.8_0.08.jpg", "0002.png")]
    sample = datamodule.test_sets["rain100l_samples"][0]
    assert sample["lq"].shape == sample["gt"].shape and sample["lq"].shape[1] % 16 == 0
    assert sample["benchmark"] == "rain100l_samples" and not torch.equal(sample["lq"], sample["gt"])
    with pytest.raises(ConfigError, match="has no training sets"):
        datamodule.train_dataloader()


def test_a_published_name_with_another_count_is_marked(rain: Path) -> None:
    from tests.helpers import layout_configs

    datamodule = paired_datamodule(test=[{"input": rain / "input", "target": rain / "target", "name": "rain100l"}],
                                   layouts=layout_configs())
    assert "2 pairs" in datamodule.benchmark_notes["rain100l"]
    assert "has 100" in datamodule.benchmark_notes["rain100l"]


def test_missing_folders_are_named_and_eval_needs_only_test_sets(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match=r"(?s)not found:.*target: .*nowhere.*src\.eval needs only test sets"):
        paired_datamodule(input=str(tmp_path), target=str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="no test set"):
        paired_datamodule()
    with pytest.raises(ConfigError, match="go together"):
        paired_datamodule(input=str(tmp_path))


def test_unpaired_files_stop_the_run_with_the_report(rain: Path, tmp_path: Path) -> None:
    shutil.copytree(rain, tmp_path / "set")
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "set" / "input" / "extra.png")
    with pytest.raises(DataCheckError, match=r"1 degraded file\(s\) with no partner.*extra\.png"):
        paired_datamodule(input=str(tmp_path / "set" / "input"), target=str(tmp_path / "set" / "target"))
    assert (tmp_path / "set" / "input" / "extra.png").exists()  # user data never touched


def test_training_sets_give_aligned_patches(rain: Path) -> None:
    datamodule = paired_datamodule(
        input=str(rain / "input"), target=str(rain / "target"),
        train=[{"input": str(rain / "input"), "target": str(rain / "target"), "family": "rain", "repeats": 4}],
        patch_size=32, batch_size=2, samples_per_epoch=4,
    )  # fmt: skip
    assert datamodule.families == ["rain"] and len(datamodule.train_sets["rain"]) == 8
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["lq"].shape == (2, 3, 32, 32) and batch["family"] == ["rain", "rain"]


def test_daclip_reads_the_universal_layout_and_its_captions_file(tmp_path: Path) -> None:
    """``data=daclip``: <root>/{train,val}/<degradation>/{LQ,GT} for DA-CLIP's ten names, and its daclip_train.csv
    (``filepath`` / ``"caption: degradation"``) captions each training image with the caption alone."""
    from src.models.layers.clip_text import DACLIP_DEGRADATIONS

    rng = np.random.default_rng(0)
    rows = ["filepath\ttitle"]
    for split in ("train", "val"):
        for degradation in DACLIP_DEGRADATIONS:
            for kind in ("LQ", "GT"):
                folder = tmp_path / "universal" / split / degradation / kind
                folder.mkdir(parents=True)
                Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / f"{degradation}1.png")
            lq = tmp_path / "universal" / split / degradation / "LQ" / f"{degradation}1.png"
            rows.append(f"{lq}\ta photo of a {degradation} street: {degradation}")
    captions = tmp_path / "universal" / "daclip_train.csv"
    captions.write_text("\n".join(rows) + "\n")
    cfg = compose("train", ["model=daclip_irsde_tiny", "data=daclip", f"data.root={tmp_path / 'universal'}",
                            f"data.captions={captions}", "data.patch_size=32", "data.batch_size=4",
                            "data.samples_per_epoch=8"], tmp_path / "run")
    dm = instantiate(cfg.data)
    assert dm.families == list(DACLIP_DEGRADATIONS)
    assert sorted(dm.test_sets) == sorted(f"daclip_{d}" for d in DACLIP_DEGRADATIONS)
    batch = next(iter(dm.train_dataloader()))
    assert batch["lq"].shape == (4, 3, 32, 32)
    assert batch["caption"] == [f"a photo of a {family} street" for family in batch["family"]]
