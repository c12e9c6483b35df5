"""Reading, pairing and sampling the published benchmark files (tiny real files written with PIL)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from src.data.datasets.paired import (
    NoisyImages,
    NoisyPatches,
    PairedImages,
    PairedPatches,
    list_images,
    pair_files,
    read_rgb8,
)
from src.data.transforms import dihedral
from tests.data.test_layouts import write_image

# ----------------------------------------------------------------------------------------------- pairing


def _paths(*names: str) -> list[Path]:
    return [Path(n) for n in names]


def test_rain_pairs_rain_n_with_norain_n_and_same_names():
    result = pair_files(_paths("rainy/rain-1.png", "rainy/rain-12.png", "rainy/7.png"),
                        _paths("gt/norain-1.png", "gt/norain-12.png", "gt/7.png"), "rain")
    assert [(a.name, b.name) for a, b in result.pairs] == [
        ("rain-1.png", "norain-1.png"), ("rain-12.png", "norain-12.png"), ("7.png", "7.png")]
    assert not result.unpaired and not result.unused


def test_haze_pairs_by_the_id_before_the_first_underscore_across_extensions():
    result = pair_files(_paths("p1/0001_0.8_0.2.jpg", "p2/0001_1_0.08.jpg", "p1/0002_0.9_0.1.jpg", "p1/0003_1_1.jpg"),
                        _paths("clear/0001.png", "clear/0002.jpg", "clear/0004.jpg"), "haze")
    assert [(a.name, b.name) for a, b in result.pairs] == [
        ("0001_0.8_0.2.jpg", "0001.png"), ("0001_1_0.08.jpg", "0001.png"), ("0002_0.9_0.1.jpg", "0002.jpg")]
    assert [p.name for p in result.unpaired] == ["0003_1_1.jpg"]
    assert [p.name for p in result.unused] == ["0004.jpg"]


def test_same_name_pairing_reports_missing_partners_and_ambiguous_names():
    result = pair_files(_paths("in/a.png", "in/b.png"), _paths("gt/a.png", "gt/a.jpg", "gt/c.png"), "same")
    assert [p.name for p in result.unpaired] == ["b.png"]
    assert [p.name for p in result.ambiguous] == ["a.jpg"]
    assert [p.name for p in result.unused] == ["c.png"]
    with pytest.raises(ValueError, match="unknown pairing rule"):
        pair_files([], [], "fuzzy")


def test_real_sots_and_rain100l_names_pair(shared_dir):
    sots = shared_dir / "data/test/dehaze/SOTS_outdoor_samples"
    rain = shared_dir / "data/test/derain/Rain100L_samples"
    if not sots.is_dir() or not rain.is_dir():
        pytest.skip(f"real samples absent under {shared_dir / 'data/test'}")
    haze = pair_files(list_images(sots, ["input"]), list_images(sots, ["target"]), "haze")
    expected = [("0001_0.8_0.2.jpg", "0001.png"), ("0002_0.8_0.08.jpg", "0002.png")]
    assert [(a.name, b.name) for a, b in haze.pairs] == expected
    derain = pair_files(list_images(rain, ["input"]), list_images(rain, ["target"]), "rain")
    assert [(a.name, b.name) for a, b in derain.pairs] == [("1.png", "1.png"), ("2.png", "2.png")]
    sample = PairedImages(haze.pairs, "sots_outdoor", "haze")[0]
    assert sample["lq"].shape == sample["gt"].shape and sample["lq"].shape[-1] % 16 == 0


# ----------------------------------------------------------------------------------------------- reading


def test_conversions_to_rgb_uint8(tmp_path):
    gray = np.arange(40 * 48, dtype=np.uint16).reshape(40, 48) * 30
    rgba = np.random.default_rng(0).integers(0, 256, (40, 48, 4), dtype=np.uint8)
    Image.fromarray((gray // 256).astype(np.uint8)).save(tmp_path / "gray.png")
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    cv2.imwrite(str(tmp_path / "gray16.png"), gray)
    colour16 = np.stack([gray, gray // 2, gray // 3], axis=2)
    cv2.imwrite(str(tmp_path / "rgb16.png"), colour16[..., ::-1])  # OpenCV writes BGR
    Image.fromarray(rgba[..., :3]).convert("P").save(tmp_path / "palette.png")

    g = read_rgb8(tmp_path / "gray.png")
    assert g.shape == (40, 48, 3) and g.dtype == np.uint8 and (g[..., 0] == g[..., 2]).all()
    assert (read_rgb8(tmp_path / "rgba.png") == rgba[..., :3]).all()  # alpha dropped, colours untouched
    expected16 = np.rint(gray * (255 / 65535)).astype(np.uint8)
    assert (read_rgb8(tmp_path / "gray16.png") == expected16[..., None]).all()
    c16 = read_rgb8(tmp_path / "rgb16.png")
    assert (c16 == np.rint(colour16 * (255 / 65535)).astype(np.uint8)).all()  # rounded, not Pillow's high byte
    assert read_rgb8(tmp_path / "palette.png").shape == (40, 48, 3)


def test_corrupt_and_truncated_files_raise_naming_the_file(tmp_path):
    (tmp_path / "corrupt.png").write_bytes(b"not an image at all")
    good = write_image(tmp_path / "good.png")
    data = good.read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    for name in ("corrupt.png", "truncated.png", "absent.png"):
        with pytest.raises(ValueError, match=name):
            read_rgb8(tmp_path / name)


# ----------------------------------------------------------------------------------------------- training


def _pair_files(tmp_path: Path, size: tuple[int, int] = (40, 48)) -> tuple[Path, Path]:
    gt = write_image(tmp_path / "gt" / "a.png", size)
    lq = tmp_path / "lq" / "a.png"
    lq.parent.mkdir()
    Image.fromarray(255 - np.asarray(Image.open(gt))).save(lq)  # the negative: alignment is checkable
    return lq, gt


def test_paired_patches_are_aligned_deterministic_and_repeated(tmp_path):
    ds = PairedPatches([_pair_files(tmp_path)], "rain", patch_size=32, repeats=120, seed=3)
    assert len(ds) == 120 and ds.distinct == 1
    a = ds[(0, 5)]
    assert a["lq"].shape == a["gt"].shape == (3, 32, 32) and a["lq"].dtype == torch.float32
    assert torch.allclose(a["lq"], 1 - a["gt"], atol=1e-6)
    assert a["family"] == "rain" and a["benchmark"] == "" and a["name"] == "a"
    assert torch.equal(ds[(0, 5)]["gt"], a["gt"])
    assert not torch.equal(ds[(1, 5)]["gt"], a["gt"]) or not torch.equal(ds[(0, 6)]["gt"], a["gt"])


def test_augmentation_is_always_one_of_the_seven_non_identity_transforms(tmp_path):
    path = write_image(tmp_path / "a.png", (32, 32))  # the patch is the whole image, transformed
    image = np.asarray(Image.open(path))
    ds = PairedPatches([(path, path)], "blur", patch_size=32, repeats=60)
    seen = set()
    for i in range(len(ds)):
        patch = np.rint(ds[i]["gt"].numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
        seen |= {k for k in range(8) if np.array_equal(dihedral(image, k), patch)}
    assert seen == set(range(1, 8))


def test_size_mismatch_and_small_images_name_the_files(tmp_path):
    gt = write_image(tmp_path / "gt" / "a.png", (40, 48))
    lq = write_image(tmp_path / "lq" / "a.png", (40, 64))
    with pytest.raises(ValueError, match="differ in size") as err:
        PairedPatches([(lq, gt)], "rain", patch_size=32)[0]
    assert str(lq) in str(err.value) and str(gt) in str(err.value)
    with pytest.raises(ValueError, match=r"a\.png.*smaller than the 64x64"):
        PairedPatches([(gt, gt)], "rain", patch_size=64)[0]
    with pytest.raises(ValueError, match="differ in size"):
        PairedImages([(lq, gt)], "x", "rain")[0]


def test_noise_lists_one_per_sigma_each_repeated(tmp_path):
    paths = [write_image(tmp_path / f"{i}.png") for i in range(4)]
    ds = NoisyPatches(paths, sigmas=(15, 25, 50), patch_size=32, repeats=3)
    assert len(ds) == 4 * 3 * 3 and ds.distinct == 4
    assert [ds.sigma_of(i) for i in (0, 11, 12, 23, 24, 35)] == [15, 15, 25, 25, 50, 50]
    sample = ds[(2, 30)]
    lq = sample["lq"].numpy() * 255
    assert np.allclose(lq, np.round(lq), atol=1e-3)  # uint8 levels
    assert sample["name"] == paths[30 % 4].stem


def test_training_noise_truncates_on_the_uint8_crop(tmp_path):
    grey = write_image(tmp_path / "grey.png", (128, 128), value=128)
    ds = NoisyPatches([grey], sigmas=(15,), patch_size=128, repeats=4)
    diffs = [(ds[i]["lq"] - ds[i]["gt"]).double().mul(255).round() for i in range(4)]
    mean = float(torch.stack(diffs).mean())
    assert -0.65 < mean < -0.35  # truncation: E[floor(128 + n)] - 128 = -0.5; rounding would give 0
    assert float(torch.stack(diffs).std()) == pytest.approx(15, rel=0.05)


# ----------------------------------------------------------------------------------------------- test sets


def test_test_pairs_are_centre_cropped_to_the_multiple(tmp_path):
    lq, gt = _pair_files(tmp_path, (40, 56))
    assert PairedImages([(lq, gt)], "b", "rain")[0]["lq"].shape == (3, 32, 48)
    sample = PairedImages([(lq, gt)], "b", "rain", crop_multiple=32)[0]
    assert sample["gt"].shape == (3, 32, 32) and sample["benchmark"] == "b"
    full = np.asarray(Image.open(gt)).astype(np.float32) / 255
    assert np.array_equal(sample["gt"].numpy().transpose(1, 2, 0), full[4:36, 12:44])


def _official_promptir(paths: list[Path], order=(15, 25, 50), multiple: int = 16) -> dict[float, list[np.ndarray]]:
    """PromptIR's test.py: np.random.seed(0) once, then each sigma over the images, randn per cropped image."""
    np.random.seed(0)
    out: dict[float, list[np.ndarray]] = {}
    for sigma in order:
        out[sigma] = []
        for p in paths:
            clean = np.array(Image.open(p).convert("RGB"))
            h, w = clean.shape[:2]
            ch, cw = h % multiple, w % multiple
            clean = clean[ch // 2 : h - ch + ch // 2, cw // 2 : w - cw + cw // 2, :]
            noise = np.random.randn(*clean.shape)
            out[sigma].append(np.clip(clean + noise * sigma, 0, 255).astype(np.uint8))
    return out


@pytest.fixture
def clean_set(tmp_path) -> list[Path]:
    return [write_image(tmp_path / f"{i:02d}.png", (40 + 3 * i, 48)) for i in range(3)]


def test_promptir_test_noise_equals_the_official_sequence(clean_set):
    official = _official_promptir(clean_set)
    for sigma in (50, 15, 25):  # any construction and access order gives the same pixels
        ds = NoisyImages(clean_set, sigma, f"cbsd68_s{sigma}")
        for i in reversed(range(len(clean_set))):
            noisy = np.rint(ds[i]["lq"].numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
            assert np.array_equal(noisy, official[sigma][i]), (sigma, i)
    again = NoisyImages(clean_set, 25, "cbsd68_s25")
    assert torch.equal(again[1]["lq"], NoisyImages(clean_set, 25, "cbsd68_s25")[1]["lq"])


def test_promptir_order_matters_and_sigma25_alone_is_the_same(clean_set):
    s25 = NoisyImages(clean_set, 25, "cbsd68_s25")[0]["lq"]
    reordered = NoisyImages(clean_set, 25, "cbsd68_s25", order=(25, 15, 50))[0]["lq"]
    assert not torch.equal(s25, reordered)
    official_first = _official_promptir(clean_set, order=(25,))[25][0]
    assert np.array_equal(np.rint(reordered.numpy().transpose(1, 2, 0) * 255).astype(np.uint8), official_first)
    with pytest.raises(ValueError, match="not in the noise order"):
        NoisyImages(clean_set, 75, "cbsd68_s75")


def test_kair_noise_is_float_unclipped_and_reseeded_per_image(clean_set):
    ds = NoisyImages(clean_set, 50, "cbsd68_s50", protocol="kair")
    for i, path in enumerate(clean_set):
        clean = np.array(Image.open(path).convert("RGB"))
        img = np.float32(clean / 255.0)
        np.random.seed(0)
        img += np.random.normal(0, 50 / 255.0, img.shape)
        h, w = img.shape[:2]
        top, left = (h % 16) // 2, (w % 16) // 2
        expected = img[top : top + h - h % 16, left : left + w - w % 16]
        assert np.array_equal(ds[i]["lq"].numpy().transpose(1, 2, 0), expected)
    lq = torch.cat([ds[i]["lq"].flatten() for i in range(3)])
    assert float(lq.min()) < 0 and float(lq.max()) > 1  # no clipping
    assert not np.allclose(lq.numpy() * 255, np.round(lq.numpy() * 255), atol=1e-3)  # no quantisation
    with pytest.raises(ValueError, match="unknown noise protocol"):
        NoisyImages(clean_set, 50, "x", protocol="dncnn")


def test_training_randomness_is_keyed_by_seed_epoch_index(tmp_path):
    path = write_image(tmp_path / "a.png", (64, 64))
    ds = NoisyPatches([path], patch_size=32, repeats=1, seed=5)
    assert torch.equal(ds[(0, 1)]["lq"], NoisyPatches([path], patch_size=32, repeats=1, seed=5)[(0, 1)]["lq"])
    assert not torch.equal(ds[(0, 1)]["lq"], NoisyPatches([path], patch_size=32, repeats=1, seed=6)[(0, 1)]["lq"])
