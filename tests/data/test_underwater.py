"""Water-Net's derived inputs against direct formulas, the underwater family, UIEB's layout and split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import color

from src.data.degradations.underwater import UnderwaterScattering
from src.data.uieb import uieb_datamodule
from src.data.underwater import contrast_enhance, gamma_correct, water_net_inputs, white_balance
from src.utils.errors import DataError


def photo(seed: int = 0, shape=(48, 40)) -> np.ndarray:
    """A bluish, low-contrast 'underwater' image."""
    rng = np.random.default_rng(seed)
    base = rng.random((*shape, 3)) * [60, 140, 160] + [10, 50, 60]
    return np.clip(base, 0, 255).astype(np.uint8)


def hazen_quantile(values: np.ndarray, p: float) -> float:
    """MATLAB's quantile: sorted values at the positions (i - 0.5) / n, linear between, clamped at the ends."""
    ordered = np.sort(values)
    position = p * len(ordered) + 0.5  # 1-based
    if position <= 1:
        return float(ordered[0])
    if position >= len(ordered):
        return float(ordered[-1])
    low = int(np.floor(position))
    return float(ordered[low - 1] + (position - low) * (ordered[low] - ordered[low - 1]))


def test_white_balance_is_simplest_color_balance() -> None:
    image = photo()
    sums = image.reshape(-1, 3).astype(float).sum(0)
    expected = np.empty(image.shape)
    for c in range(3):
        level = 0.005 * sums.max() / sums[c]
        channel = image[..., c].astype(float)
        low, high = hazen_quantile(channel.ravel(), level), hazen_quantile(channel.ravel(), 1 - level)
        clipped = np.minimum(np.maximum(channel, low), high)
        expected[..., c] = (clipped - clipped.min()) * 255 / (clipped.max() - clipped.min())
    assert np.array_equal(white_balance(image), np.floor(expected + 0.5).astype(np.uint8))
    assert white_balance(image)[..., 0].max() == 255 and white_balance(image)[..., 0].min() == 0


def test_gamma_correction_brightens_by_the_power_0_7() -> None:
    image = photo(1)
    assert np.array_equal(gamma_correct(image), np.floor(255 * (image / 255.0) ** 0.7 + 0.5).astype(np.uint8))
    assert gamma_correct(image).astype(int).sum() > image.astype(int).sum()


def test_contrast_enhancement_equalises_lightness_and_keeps_the_hue() -> None:
    image = photo(2)
    enhanced = contrast_enhance(image)
    before, after = color.rgb2lab(image / 255.0), color.rgb2lab(enhanced / 255.0)
    assert np.ptp(after[..., 0]) > np.ptp(before[..., 0])  # the lightness spread grows
    assert np.abs(after[..., 1:] - before[..., 1:]).mean() < 3.0  # chroma about where it was


def test_the_twelve_channels_hold_the_image_then_its_three_versions() -> None:
    image = torch.from_numpy(photo(3)).permute(2, 0, 1).float() / 255
    stacked = water_net_inputs(image)
    assert stacked.shape == (12, 48, 40)
    assert torch.allclose(stacked[:3], image, atol=1 / 510)
    pixels = photo(3)
    for i, version in enumerate((white_balance(pixels), contrast_enhance(pixels), gamma_correct(pixels)), 1):
        assert torch.equal(stacked[3 * i : 3 * i + 3], torch.from_numpy(version).permute(2, 0, 1).float() / 255)


def test_the_underwater_family_attenuates_red_most() -> None:
    clean = np.full((32, 32, 3), 0.8, np.float32)
    degraded = UnderwaterScattering()(clean, np.random.default_rng(0))
    assert degraded.shape == clean.shape and degraded.dtype == np.float32
    red, green, blue = degraded.reshape(-1, 3).mean(0)
    assert red < green and red < blue


def uieb_folder(root, count=12, challenging=3):
    for folder in ("raw-890", "reference-890", "challenging-60"):
        (root / folder).mkdir(parents=True)
    for i in range(count):
        for folder in ("raw-890", "reference-890"):
            Image.fromarray(photo(i, (20, 24))).save(root / folder / f"{i}_img_.png")
    for i in range(challenging):
        Image.fromarray(photo(100 + i, (20, 24))).save(root / "challenging-60" / f"{i}.png")
    return root


def test_uieb_splits_by_seed_or_list_and_names_what_is_wrong(tmp_path) -> None:
    root = uieb_folder(tmp_path)
    first = uieb_datamodule(str(root), test_count=4, split_seed=1, patch_size=16, challenging=True)
    again = uieb_datamodule(str(root), test_count=4, split_seed=1, patch_size=16)
    tested = [p[0].name for p in first.test_sets["uieb_t4"].pairs]
    assert tested == [p[0].name for p in again.test_sets["uieb_t4"].pairs] and len(tested) == 4
    assert len(first.train_sets["underwater"]) == 8 and "uieb_c3" in first.test_sets
    assert "gt" not in first.test_sets["uieb_c3"][0] and first.benchmark_notes
    listing = tmp_path / "t.txt"
    listing.write_text("0_img_.png\n5_img_.png\n")
    listed = uieb_datamodule(str(root), test_list=str(listing), patch_size=16)
    assert sorted(p[0].name for p in listed.test_sets["uieb_t2"].pairs) == ["0_img_.png", "5_img_.png"]
    (root / "reference-890" / "3_img_.png").unlink()
    with pytest.raises(DataError, match="3_img_.png"):
        uieb_datamodule(str(root))
