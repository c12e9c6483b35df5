"""Dark Channel Prior against a direct numpy reading of the papers' equations, on the real SOTS samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import minimum_filter

from src.data.io import read_rgb8
from src.models.backbones.dcp import DarkChannelPrior, box_sum, guided_filter


def _box_mean(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over the (2r+1)^2 window clipped at the border, by explicit loops over the window's offsets."""
    h, w = x.shape
    total, count = np.zeros((h, w)), np.zeros((h, w))
    padded = np.pad(x, r, constant_values=np.nan)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            window = padded[dy : dy + h, dx : dx + w]
            total += np.nan_to_num(window)
            count += ~np.isnan(window)
    return total / count


def reference_dcp(image: np.ndarray, patch=15, omega=0.95, t0=0.1, top=0.001, r=8, eps=1e-4) -> np.ndarray:
    """He et al. 2009, equations (5), (12), (22) and section 4.4, with the guided filter of He et al. 2010."""
    dark = minimum_filter(image.min(axis=2), size=patch, mode="nearest")
    flat = dark.ravel()
    count = max(int(round(top * flat.size)), 1)
    candidates = np.argsort(-flat, kind="stable")[:count]
    brightest = candidates[np.argmax(image.mean(axis=2).ravel()[candidates])]
    airlight = image.reshape(-1, 3)[brightest]
    coarse = 1 - omega * minimum_filter((image / airlight).min(axis=2), size=patch, mode="nearest")
    grey = image @ np.array([0.299, 0.587, 0.114])
    mean_i, mean_p = _box_mean(grey, r), _box_mean(coarse, r)
    a = (_box_mean(grey * coarse, r) - mean_i * mean_p) / (_box_mean(grey * grey, r) - mean_i**2 + eps)
    b = mean_p - a * mean_i
    t = _box_mean(a, r) * grey + _box_mean(b, r)
    return (image - airlight) / np.maximum(t, t0)[..., None] + airlight


@pytest.fixture
def sots(shared_dir: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    folder = shared_dir / "data" / "test" / "dehaze" / "SOTS_outdoor_samples"
    if not (folder / "input").is_dir():
        pytest.skip(f"no SOTS samples at {folder}")
    pairs = []
    for hazy in sorted((folder / "input").iterdir()):
        clean = folder / "target" / f"{hazy.name.split('_', 1)[0]}.png"
        pairs.append((read_rgb8(hazy).astype(np.float64) / 255, read_rgb8(clean).astype(np.float64) / 255))
    return pairs


def test_box_sum_counts_the_clipped_window() -> None:
    ones = torch.ones(1, 1, 5, 7)
    assert box_sum(ones, 1)[0, 0, 0, 0] == 4 and box_sum(ones, 1)[0, 0, 2, 3] == 9
    x = torch.rand(1, 1, 9, 11, dtype=torch.float64)
    assert torch.allclose(box_sum(x, 2) / box_sum(torch.ones_like(x), 2),
                          torch.from_numpy(_box_mean(x[0, 0].numpy(), 2)))
    constant = torch.full((1, 1, 8, 8), 0.3, dtype=torch.float64)
    assert torch.allclose(guided_filter(torch.rand_like(constant), constant, 2, 1e-4), constant)


def test_equals_the_papers_equations_on_real_hazy_images(sots) -> None:
    net = DarkChannelPrior(radius=8)  # a small radius keeps the loop reference fast; the code path is the same
    for hazy, _ in sots:
        crop = hazy[:96, :128]
        ours = net(torch.from_numpy(crop).permute(2, 0, 1)[None].float())[0][0].permute(1, 2, 0).double().numpy()
        assert np.abs(ours - reference_dcp(crop, r=8)).max() < 1e-4


def test_dehazes_the_sots_samples_towards_their_clear_images(sots) -> None:
    """Not a published figure (two images): the recovered radiance must not be the input, and its dark channel
    must be darker than the hazy input's, which is what the prior asserts of haze-free images."""
    net = DarkChannelPrior()
    for hazy, clear in sots:
        restored = net(torch.from_numpy(hazy).permute(2, 0, 1)[None].float())[0].clamp(0, 1)
        out = restored[0].permute(1, 2, 0).double().numpy()
        dark = lambda im: minimum_filter(im.min(axis=2), size=15, mode="nearest").mean()  # noqa: E731
        assert dark(out) < 0.5 * dark(hazy) and dark(clear) < dark(hazy)
        assert not np.allclose(out, hazy, atol=0.02)
