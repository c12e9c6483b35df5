"""The real-data DataModules (data=3deg/5deg/derain/.../cdd11) on tiny fake downloads in both layouts."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

import src.data.benchmarks as benchmarks
import src.data.sampler as sampler_module
from src.data.benchmarks import OnePerFamilySampler, benchmark_datamodule
from src.data.layouts import DataCheckError
from src.train import train
from tests.conftest import compose
from tests.data.test_layouts import CDD11_CATEGORIES, FIVE, THREE, write_image, write_layout
from tests.helpers import layout_configs

LOADER = {"batch_size": 4, "num_workers": 0}


@pytest.fixture(scope="module")
def promptir_root(tmp_path_factory) -> Path:
    return write_layout(tmp_path_factory.mktemp("promptir"), "promptir", FIVE)


@pytest.fixture(scope="module")
def moceir_root(tmp_path_factory) -> Path:
    return write_layout(tmp_path_factory.mktemp("moceir"), "moceir", FIVE)


#: the layouts data=5deg and its variants compose (cdd11 adds its own)
LAYOUTS = {k: v for k, v in layout_configs().items() if k in ("promptir", "moceir")}


def _dm(root: Path, families=THREE, setting="3deg", **kw):
    return benchmark_datamodule(setting, root, families, layouts=LAYOUTS, patch_size=32, **{**LOADER, **kw})


def tree_digest(root: Path) -> str:
    """Names, sizes, modification times and contents of every file under ``root``."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            st = p.stat()
            h.update(f"{st.st_size} {st.st_mtime_ns}".encode() + p.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("layout", ["promptir", "moceir"])
def test_official_concat_mix_counts_repeats(request, layout):
    root = request.getfixturevalue(f"{layout}_root")
    dm = _dm(root, FIVE, "5deg", test_sigmas=[25])
    noise = 2 if layout == "promptir" else 4  # moceir: BSD400 + WaterlooED
    hazy = 2 * (2 if layout == "promptir" else 4)
    expected = {"noise": noise * 3 * 3, "rain": 2 * 120, "haze": hazy, "blur": 2 * 5, "lowlight": 2 * 20}
    assert {f: len(d) for f, d in dm.train_sets.items()} == expected
    assert dm.make_sampler().family_counts(0) == list(expected.values())
    assert dm.test_benchmarks == ["cbsd68_s25", "rain100l", "sots_outdoor", "gopro", "lol"]
    text = dm.describe_mix()
    total = sum(expected.values())
    assert f"training mix (concat), {total} samples per epoch" in text
    assert f"rain: 240 ({100 * 240 / total:.1f}%; 2 pairs x120)" in text
    assert f"noise: {noise * 9} " in text and f"{noise} images x 3 sigmas (15, 25, 50) x3" in text


def test_3deg_benchmarks_and_samples_follow_the_contract(promptir_root):
    dm = _dm(promptir_root)
    assert dm.families == THREE
    assert dm.test_benchmarks == ["cbsd68_s15", "cbsd68_s25", "cbsd68_s50", "rain100l", "sots_outdoor"]
    for name, ds in dm.test_sets.items():
        sample = ds[0]
        assert sample["benchmark"] == name and sample["lq"].shape == sample["gt"].shape == (3, 32, 48)
    batch = next(iter(dm.train_dataloader()))
    assert batch["lq"].shape == (4, 3, 32, 32) and set(batch["family"]) <= set(THREE)
    again = next(iter(_dm(promptir_root).train_dataloader()))
    assert torch.equal(batch["lq"], again["lq"])


def test_single_family_and_repeat_overrides(promptir_root):
    dm = _dm(promptir_root, ["rain"], "derain", repeats={"rain": 7})
    assert list(dm.train_sets) == ["rain"] and len(dm.train_sets["rain"]) == 14
    assert dm.test_benchmarks == ["rain100l"]


def test_weighted_mix_with_weights_or_temperature(promptir_root):
    sizes = {"noise": 18, "rain": 240, "haze": 4}
    dm = _dm(promptir_root, mix="weighted", weights={"rain": 3.0}, samples_per_epoch=1000)
    assert dm.weights == {"noise": 1.0, "rain": 3.0, "haze": 1.0}
    proportional = _dm(promptir_root, mix="weighted", temperature=1.0)
    assert proportional.weights == pytest.approx({f: float(n) for f, n in sizes.items()})
    flat = _dm(promptir_root, mix="weighted", temperature=1e6, samples_per_epoch=3000)
    counts = flat.make_sampler().family_counts(0)
    assert all(abs(c - 1000) < 120 for c in counts)
    with pytest.raises(ValueError, match="not both"):
        _dm(promptir_root, mix="weighted", weights={"rain": 2}, temperature=2)
    with pytest.raises(ValueError, match="data.mix=weighted"):
        _dm(promptir_root, temperature=2)


def test_airnet_batches_hold_one_patch_of_each_family(promptir_root):
    dm = _dm(promptir_root, mix="airnet", batch_size=3, samples_per_epoch=30)
    batches = list(dm.train_dataloader())
    assert len(batches) == 10
    assert all(sorted(b["family"]) == sorted(THREE) for b in batches)
    assert "training mix (airnet), 30 samples per epoch" in dm.describe_mix()
    with pytest.raises(ValueError, match="multiple of the 3 families"):
        _dm(promptir_root, mix="airnet", batch_size=4)


def test_airnet_order_survives_rank_sharding(monkeypatch):
    sizes = [5, 40, 9]
    families = [range(0, 5), range(5, 45), range(45, 54)]
    monkeypatch.setattr(benchmarks, "_rank_world", lambda: (0, 2))
    sampler = OnePerFamilySampler(sizes, num_samples=60, seed=1)
    for rank in range(2):
        monkeypatch.setattr(sampler_module, "_rank_world", lambda r=rank: (r, 2))
        mine = [i for _, i in sampler]
        assert len(mine) == 30
        for k in range(0, 30, 3):
            assert sorted(next(f for f, r in enumerate(families) if i in r) for i in mine[k : k + 3]) == [0, 1, 2]
    assert Counter(i for i in sampler.epoch_indices(0).tolist() if i < 5).most_common(1)[0][1] <= 4


def test_validation_subset_and_test_split_only(promptir_root):
    dm = _dm(promptir_root, val_images=1)
    assert all(len(ds) == 1 for ds in dm.val_sets.values())
    assert all(len(ds) == 2 for ds in dm.test_sets.values())
    test_only = _dm(promptir_root, splits=["test"])
    assert test_only.families == [] and test_only.test_benchmarks == dm.test_benchmarks


def test_cdd11_categories_are_families_and_benchmarks(tmp_path):
    root = write_layout(tmp_path, "cdd11", list(CDD11_CATEGORIES))
    dm = benchmark_datamodule("cdd11", root, list(CDD11_CATEGORIES), layouts=layout_configs(), layout="cdd11",
                              patch_size=32, train_crop_multiple=1, **LOADER)
    assert dm.families == list(CDD11_CATEGORIES)
    assert dm.test_benchmarks == [f"cdd11_{c}" for c in CDD11_CATEGORIES]
    assert dm.test_sets["cdd11_low_haze_rain"][1]["family"] == "low_haze_rain"


def test_broken_data_stops_before_training_with_the_report(tmp_path):
    root = write_layout(tmp_path, "promptir", THREE)
    (root / "Train/Derain/gt/norain-1.png").unlink()
    with pytest.raises(DataCheckError) as err:
        _dm(root)
    message = str(err.value)
    assert "Train/Derain/rainy/rain-1.png" in message and "python -m src.data.check" in message
    from src.run.assemble import build

    cfg = compose("train", ["data=3deg", f"data.root={root}", "data.patch_size=32"], tmp_path / "run")
    with pytest.raises(DataCheckError):  # passes through build() untouched: src.train prints it and exits 2
        build(cfg.data, "data")
    write_image(root / "Train/Derain/gt/norain-1.png")
    with pytest.raises(DataCheckError, match="a correct download holds 200"):
        _dm(root, strict_counts=True)
    write_image(root / "Train/Derain/gt/norain-1.png", (40, 64))
    _dm(root)  # the cheap start-up check does not open files
    with pytest.raises(DataCheckError, match="differ in size"):
        _dm(root, check="sizes")


def test_train_one_short_epoch_on_3deg_leaves_the_data_untouched(promptir_root, tmp_path):
    before = tree_digest(promptir_root)
    cfg = compose("train", [
        "model=restormer_tiny", "model.backbone.dim=8", "trainer=cpu", "logger=none", "callbacks.progress_bar=null",
        "callbacks.model_summary=null", "trainer.max_epochs=1", "data=3deg", f"data.root={promptir_root}",
        "data.patch_size=32", "data.batch_size=2", "data.num_workers=0", "data.mix=weighted",
        "data.samples_per_epoch=4", "data.val_images=1",
    ], tmp_path)
    out = train(cfg)
    record = out["record"]
    assert sorted(record["benchmarks"]) == ["cbsd68_s15", "cbsd68_s25", "cbsd68_s50", "rain100l", "sots_outdoor"]
    assert tree_digest(promptir_root) == before


def test_test_noise_is_realised_before_loader_workers_start(promptir_root):
    dm = _dm(promptir_root)
    assert dm.test_sets["cbsd68_s25"]._states is None
    dm.test_dataloader()
    assert all(dm.test_sets[f"cbsd68_s{s}"]._states is not None for s in (15, 25, 50))


def test_folder_setting_degrades_your_own_clean_images(tmp_path):
    from src.run.assemble import build

    for i in range(3):
        write_image(tmp_path / "photos" / "sub" / f"{i}.png", (64, 64))
    cfg = compose("train", ["data=folder", f"data.root={tmp_path / 'photos'}", "data.families=[noise,jpeg]",
                            "data.patch_size=32", "data.test_source.max_side=64"], tmp_path)
    dm = build(cfg.data, "data")
    assert dm.families == ["noise", "jpeg"] and dm.test_benchmarks == ["folder_noise", "folder_jpeg"]
    assert dm.train_sets["jpeg"][(0, 1)]["lq"].shape == (3, 32, 32)


def test_an_empty_training_file_stops_the_run_at_the_cheap_start_check(tmp_path):
    root = write_layout(tmp_path, "promptir", THREE)
    (root / "Train/Derain/rainy/rain-1.png").write_bytes(b"")
    with pytest.raises(DataCheckError, match=r"1 empty file\(s\) \(0 bytes\): Train/Derain/rainy/rain-1\.png"):
        _dm(root)  # check=pairs: no file is opened, the directory entry says it is empty


def test_an_unreadable_test_image_is_refused_up_front_with_the_list(tmp_path):
    """The test sets are decoded at start (test_check=decode): eval or training stops before any step, naming
    every bad file, rather than at the first bad image mid-run."""
    root = write_layout(tmp_path, "promptir", THREE)
    for name in ("rain-0.png", "rain-1.png"):
        path = root / "test/derain/Rain100L/input" / name
        path.write_bytes(path.read_bytes()[:200])  # truncated: the header still reads
    _dm(root, test_check="sizes")  # headers alone do not find it
    with pytest.raises(DataCheckError, match=r"2 image\(s\) fail to decode: .*rain-0\.png, .*rain-1\.png"):
        _dm(root)


def test_a_size_mismatched_training_pair_is_one_line_naming_both_files(tmp_path):
    from src.utils.errors import DataError, user_message

    root = write_layout(tmp_path, "promptir", ["rain"])
    write_image(root / "Train/Derain/gt/norain-1.png", (40, 64))
    dm = _dm(root, ["rain"], "derain")  # the cheap check does not open files; the sample names the pair
    dataset = dm.train_sets["rain"]
    with pytest.raises(DataError, match="paired images differ in size: .*rain-1.png .*norain-1.png") as err:
        for i in range(len(dataset)):
            dataset[i]
    assert "\n" not in user_message(err.value)


def test_an_empty_file_among_your_own_clean_images_stops_before_training(tmp_path):
    from src.data.datasets.sources import FolderImages
    from src.utils.errors import DataError

    write_image(tmp_path / "photos" / "a.png")
    (tmp_path / "photos" / "b.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=r"1 empty image file\(s\) \(0 bytes\) under .*photos: .*b\.jpg"):
        FolderImages(tmp_path / "photos")


def test_a_set_smaller_than_the_published_one_is_marked_and_never_compared(tmp_path):
    """Two pairs in the Rain100L folder are not Rain100L: every table says so in that row, and the published
    comparison refuses the benchmark and the average over it."""
    from src.results.published import comparison_rows
    from src.results.record import to_record
    from src.results.report import render_markdown

    root = write_layout(tmp_path, "promptir", THREE)
    dm = _dm(root)
    assert dm.benchmark_notes["rain100l"] == "2 pairs, the published set has 100"
    assert set(dm.benchmark_notes) == {"cbsd68_s15", "cbsd68_s25", "cbsd68_s50", "rain100l", "sots_outdoor"}
    row = {"psnr": 30.0, "ssim": 0.9, "input_psnr": 20.0, "input_ssim": 0.5}
    record = to_record({b: dict(row) for b in dm.test_benchmarks}, "promptir", notes=dm.benchmark_notes)
    assert "rain100l: not the published set (2 pairs, the published set has 100)" in render_markdown(record)
    rows = comparison_rows("3deg", record["benchmarks"], "promptir", refused=record["notes"])
    rain = next(r for r in rows if r.benchmark == "rain100l" and r.method == "PromptIR")
    assert rain.diff_psnr is None and "not the published set" in rain.note
    average = next(r for r in rows if r.benchmark == "average" and r.method == "PromptIR")
    assert average.diff_psnr is None


def test_generalisation_benchmarks_join_a_published_setting(promptir_root, tmp_path):
    """``+data/benchmarks=generalisation`` on data=5deg: test-only benchmarks made from the denoising set's clean
    images, grouped apart, identical from run to run, the user's files untouched."""
    import hydra

    from tests.conftest import compose

    before = tree_digest(promptir_root)
    cfg = compose("eval", ["data=5deg", f"data.root={promptir_root}", "+data/benchmarks=generalisation",
                           "data.num_workers=0"], tmp_path)
    extras = hydra.utils.instantiate(cfg.data.extra_benchmarks)
    dm = _dm(promptir_root, FIVE, "5deg", test_sigmas=[25], extra_benchmarks=extras)
    added = [b for b in dm.test_sets if b.startswith("cbsd68_s25_")]
    assert len(added) == len(extras) and "cbsd68_s25_noise_s75" in added
    assert dm.benchmark_groups["cbsd68_s25_jpeg"] == "unseen family"
    assert dm.benchmark_groups["rain100l"] == "seen" and dm.benchmark_groups["cbsd68_s25_rain_haze"] == "mixed"
    again = _dm(promptir_root, FIVE, "5deg", test_sigmas=[25], extra_benchmarks=extras)
    first, second = dm.test_sets["cbsd68_s25_noise_s75"][0], again.test_sets["cbsd68_s25_noise_s75"][0]
    assert torch.equal(first["lq"], second["lq"]) and not torch.equal(first["lq"], first["gt"])
    named = _dm(promptir_root, FIVE, "5deg", test_sigmas=[25], extra_benchmarks=extras, extra_source="rain100l")
    assert "rain100l_jpeg" in named.test_sets
    with pytest.raises(ValueError, match="extra_source='nowhere' names no test benchmark"):
        _dm(promptir_root, FIVE, "5deg", test_sigmas=[25], extra_benchmarks=extras, extra_source="nowhere")
    assert tree_digest(promptir_root) == before


def test_cdd11_composites_are_averaged_apart_as_mixed(tmp_path):
    root = write_layout(tmp_path, "cdd11", list(CDD11_CATEGORIES))
    dm = benchmark_datamodule("cdd11", root, list(CDD11_CATEGORIES), layouts=layout_configs(), layout="cdd11",
                              patch_size=32, train_crop_multiple=1, **LOADER)
    assert dm.benchmark_groups["cdd11_low_haze_rain"] == "mixed" and dm.benchmark_groups["cdd11_haze"] == "single"
    assert _dm(write_layout(tmp_path / "p", "promptir", THREE)).benchmark_groups == {}  # no composite: no groups


def test_your_paired_folders_join_a_published_setting(promptir_root, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for side in ("input", "target"):
        (tmp_path / "RealRain" / side).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                tmp_path / "RealRain" / side / f"{i}.png")
    folders = [{"input": str(tmp_path / "RealRain" / "input"), "target": str(tmp_path / "RealRain" / "target")}]
    dm = _dm(promptir_root, FIVE, "5deg", test_sigmas=[25], extra_paired=folders)
    assert len(dm.test_sets["realrain"]) == 2 and dm.benchmark_groups["realrain"] == "real (your folders)"
    assert dm.benchmark_groups["rain100l"] == "seen"
    with pytest.raises(ValueError, match="named like the setting's own"):
        _dm(promptir_root, FIVE, "5deg", test_sigmas=[25], extra_paired=[{**folders[0], "name": "rain100l"}])
