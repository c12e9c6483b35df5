"""Protocol metrics equal their references: scikit-image for the float protocols, BasicSR's formulas for Y."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from scipy.ndimage import correlate
from skimage import data, io
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from skimage.metrics import structural_similarity as sk_ssim
from torch import Tensor

from src.metrics.protocols import FloatProtocol, Uint8Protocol
from tests.helpers import configs, metric_protocol

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
TEST_DATA = SHARED / "data" / "test"
CONF = Path(__file__).resolve().parents[2] / "conf" / "metrics"
TOL = 1e-6
Array = np.ndarray

# (protocol name, options, the scikit-image keyword arguments that define it)
FLOAT_CASES = [
    ("promptir", {}, {}),
    ("gaussian_ssim", {}, {"gaussian_weights": True}),
    (
        "gaussian_ssim",
        {"use_sample_covariance": False},
        {"gaussian_weights": True, "use_sample_covariance": False},
    ),
]
FLOAT_IDS = ["promptir", "gaussian_ssim", "gaussian_ssim_population"]


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real test images absent: {path} (expected ../shared beside the repository root)")
    return path


@functools.lru_cache(maxsize=8)
def _read(path: Path) -> np.ndarray:
    """An image file as float64 in [0,1], H x W or H x W x 3."""
    return io.imread(_need(path)).astype(np.float64) / 255.0


def _centre_crop_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crop both to their common size around the centre (SOTS hazy and clear sizes may differ)."""
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])

    def crop(x: np.ndarray) -> np.ndarray:
        top, left = (x.shape[0] - h) // 2, (x.shape[1] - w) // 2
        return x[top : top + h, left : left + w]

    return crop(a), crop(b)


def _noisy(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Float Gaussian noise, unclipped, so the protocol's clipping is exercised."""
    return clean + np.random.default_rng(seed).normal(0.0, sigma / 255.0, clean.shape)


def _tensor(a: np.ndarray) -> Tensor:
    """H x W (x C) array -> 1 x C x H x W tensor."""
    t = torch.from_numpy(np.ascontiguousarray(a))
    return (t[None] if t.ndim == 2 else t.permute(2, 0, 1))[None]


def _assert_matches_skimage(name: str, options: dict, sk_kwargs: dict, pred: Array, gt: Array) -> None:
    out = metric_protocol(name, **options).per_image(_tensor(pred), _tensor(gt))
    p, g = np.clip(pred, 0, 1), np.clip(gt, 0, 1)
    channel_axis = -1 if p.ndim == 3 else None
    ref_ssim = sk_ssim(g, p, data_range=1, channel_axis=channel_axis, **sk_kwargs)
    ref_psnr = sk_psnr(g, p, data_range=1)
    assert out["psnr"].dtype == out["ssim"].dtype == torch.float64
    assert out["psnr"].shape == out["ssim"].shape == (1,)
    assert abs(out["psnr"].item() - ref_psnr) < TOL, (out["psnr"].item(), ref_psnr)
    assert abs(out["ssim"].item() - ref_ssim) < TOL, (out["ssim"].item(), ref_ssim)


# ---- float protocols vs scikit-image ----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "options", "sk_kwargs"), FLOAT_CASES, ids=FLOAT_IDS)
def test_float_protocols_match_skimage_on_astronaut(name: str, options: dict, sk_kwargs: dict) -> None:
    clean = data.astronaut()[100:301, 150:407].astype(np.float64) / 255.0  # odd size 201 x 257
    _assert_matches_skimage(name, options, sk_kwargs, _noisy(clean, 25, seed=0), clean)


@pytest.mark.parametrize(("name", "options", "sk_kwargs"), FLOAT_CASES, ids=FLOAT_IDS)
@pytest.mark.parametrize("pair", [("0001_0.8_0.2.jpg", "0001.png"), ("0002_0.8_0.08.jpg", "0002.png")])
def test_float_protocols_match_skimage_on_sots(name: str, options: dict, sk_kwargs: dict, pair) -> None:
    root = TEST_DATA / "dehaze" / "SOTS_outdoor_samples"
    hazy, clear = _centre_crop_pair(_read(root / "input" / pair[0]), _read(root / "target" / pair[1]))
    _assert_matches_skimage(name, options, sk_kwargs, hazy, clear)


@pytest.mark.parametrize(("name", "options", "sk_kwargs"), FLOAT_CASES, ids=FLOAT_IDS)
def test_float_protocols_match_skimage_on_cbsd68(name: str, options: dict, sk_kwargs: dict) -> None:
    folder = _need(TEST_DATA / "denoise" / "CBSD68")
    for i, path in enumerate(sorted(folder.glob("*.png"))[:1]):
        clean = _read(path)
        _assert_matches_skimage(name, options, sk_kwargs, _noisy(clean, 25, seed=i), clean)


@pytest.mark.parametrize(("name", "options", "sk_kwargs"), FLOAT_CASES, ids=FLOAT_IDS)
def test_float_protocols_match_skimage_on_gray(name: str, options: dict, sk_kwargs: dict) -> None:
    folder = _need(TEST_DATA / "denoise" / "BSD68_gray")
    for i, path in enumerate(sorted(folder.glob("*.png"))[:2]):
        clean = _read(path)
        assert clean.ndim == 2
        _assert_matches_skimage(name, options, sk_kwargs, _noisy(clean, 50, seed=i), clean)


def test_float32_pipeline_of_official_code_agrees() -> None:
    """PromptIR and MoCE-IR call scikit-image on float32 arrays, so its SSIM carries float32 rounding.

    We compute in float64; over CBSD68, BSD68 gray and SOTS pairs the gap to float32 scikit-image measured at
    most 2.4e-6 in SSIM and 8e-8 dB in PSNR, hence the looser SSIM bound here.
    """
    clean = data.astronaut()[:160, :192].astype(np.float32) / 255.0
    noisy = np.clip(_noisy(clean, 15, seed=3), 0, 1).astype(np.float32)
    for name, sk_kwargs in [("promptir", {}), ("gaussian_ssim", {"gaussian_weights": True})]:
        out = metric_protocol(name).per_image(_tensor(noisy), _tensor(clean))
        ref_ssim = float(sk_ssim(clean, noisy, data_range=1, channel_axis=-1, **sk_kwargs))
        assert abs(out["ssim"].item() - ref_ssim) < 1e-5
        assert abs(out["psnr"].item() - sk_psnr(clean, noisy, data_range=1)) < TOL


# ---- y_channel vs BasicSR's formulas ----------------------------------------------------------------------


def _basicsr_reference(pred: Array, gt: Array, crop_border: int, round_y: bool) -> tuple[float, float]:
    """BasicSR ``tensor2img`` + ``calculate_psnr/ssim(test_y_channel=True)``, written out in numpy/scipy."""

    def to_uint8(x: np.ndarray) -> np.ndarray:
        return (np.clip(x.astype(np.float32), 0, 1) * 255.0).round().astype(np.uint8)

    def to_y(img: np.ndarray) -> np.ndarray:
        if img.ndim == 2:
            return img
        y = img / 255.0 @ np.array([65.481, 128.553, 24.966]) + 16.0
        return np.floor(y + 0.5) if round_y else y

    def ssim_y(a: np.ndarray, b: np.ndarray) -> float:
        c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
        g = np.exp(-0.5 * (np.arange(11) - 5.0) ** 2 / 1.5**2)
        window = np.outer(g, g) / np.outer(g, g).sum()

        def filt(x: np.ndarray) -> np.ndarray:
            return correlate(x, window, mode="mirror")[5:-5, 5:-5]

        mu1, mu2 = filt(a), filt(b)
        s1, s2, s12 = filt(a * a) - mu1**2, filt(b * b) - mu2**2, filt(a * b) - mu1 * mu2
        ssim_map = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s1 + s2 + c2))
        return float(ssim_map.mean())

    img, img2 = to_uint8(pred).astype(np.float64), to_uint8(gt).astype(np.float64)
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
        img2 = img2[crop_border:-crop_border, crop_border:-crop_border]
    y1, y2 = to_y(img), to_y(img2)
    mse = np.mean((y1 - y2) ** 2)
    psnr = float("inf") if mse == 0 else 10.0 * np.log10(255.0 * 255.0 / mse)
    return psnr, ssim_y(y1, y2)


@pytest.mark.parametrize(("crop_border", "round_y"), [(0, False), (4, False), (0, True), (7, True)])
def test_y_channel_matches_basicsr(crop_border: int, round_y: bool) -> None:
    clean = data.astronaut()[60:219, 200:391].astype(np.float64) / 255.0
    noisy = _noisy(clean, 25, seed=1)  # out of [0,1]: the protocol clips before rounding
    protocol = metric_protocol("y_channel", crop_border=crop_border, round_y=round_y)
    out = protocol.per_image(_tensor(noisy), _tensor(clean))
    ref_psnr, ref_ssim = _basicsr_reference(noisy, clean, crop_border, round_y)
    assert abs(out["psnr"].item() - ref_psnr) < TOL
    assert abs(out["ssim"].item() - ref_ssim) < TOL


def test_y_channel_gray_and_real_pair() -> None:
    root = TEST_DATA / "dehaze" / "SOTS_outdoor_samples"
    hazy, clear = _read(root / "input" / "0001_0.8_0.2.jpg"), _read(root / "target" / "0001.png")
    hazy, clear = _centre_crop_pair(hazy, clear)
    gray = _read(TEST_DATA / "denoise" / "BSD68_gray" / "test001.png")
    for pred, gt in [(hazy, clear), (_noisy(gray, 15, seed=2), gray)]:
        out = metric_protocol("y_channel", crop_border=2).per_image(_tensor(pred), _tensor(gt))
        ref_psnr, ref_ssim = _basicsr_reference(pred, gt, crop_border=2, round_y=False)
        assert abs(out["psnr"].item() - ref_psnr) < TOL
        assert abs(out["ssim"].item() - ref_ssim) < TOL


# ---- properties shared by every protocol ------------------------------------------------------------------


@pytest.mark.parametrize("name", configs("metrics"))
def test_identical_images_give_inf_psnr_and_unit_ssim(name: str) -> None:
    x = torch.rand(2, 3, 24, 29, generator=torch.Generator().manual_seed(0))
    protocol = metric_protocol(name)
    out = protocol.per_image(x, x.clone())
    if getattr(protocol, "psnr_epsilon", 0):  # LED's RAW protocol adds an epsilon to the MSE: a finite top score
        top = -10 * math.log10(protocol.psnr_epsilon)
        assert torch.allclose(out["psnr"], torch.full((2,), top, dtype=torch.float64))
    else:
        assert torch.isinf(out["psnr"]).all() and (out["psnr"] > 0).all()
    torch.testing.assert_close(out["ssim"], torch.ones(2, dtype=torch.float64), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", configs("metrics"))
def test_batch_equals_separate_calls(name: str) -> None:
    gen = torch.Generator().manual_seed(1)
    target = torch.rand(2, 3, 32, 40, generator=gen)
    pred = target + 0.1 * torch.randn(2, 3, 32, 40, generator=gen)
    pred[1] = target[1]  # one perfect image in the batch: inf must not leak into its neighbour
    protocol = metric_protocol(name)
    batch = protocol.per_image(pred, target)
    for i in range(2):
        single = protocol.per_image(pred[i : i + 1], target[i : i + 1])
        for key in ("psnr", "ssim"):
            torch.testing.assert_close(batch[key][i : i + 1], single[key], rtol=0, atol=1e-12)
    top = -10 * math.log10(getattr(protocol, "psnr_epsilon", 1))  # LED's RAW protocol: a finite top score
    perfect = torch.isinf(batch["psnr"][1]) or batch["psnr"][1] == top
    assert torch.isfinite(batch["psnr"][0]) and perfect and batch["psnr"][0] < batch["psnr"][1]


def test_shape_mismatch_names_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(1, 3, 16, 16\).*\(1, 3, 16, 17\)"):
        metric_protocol("promptir").per_image(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 17))


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="C in"):
        metric_protocol("promptir").per_image(torch.rand(1, 4, 16, 16), torch.rand(1, 4, 16, 16))
    with pytest.raises(ValueError, match="exceeds"):
        metric_protocol("y_channel").per_image(torch.rand(1, 3, 10, 30), torch.rand(1, 3, 10, 30))
    with pytest.raises(ValueError, match="crop_border"):
        metric_protocol("y_channel", crop_border=-1)


def test_unknown_protocol_lists_available_names(tmp_path) -> None:
    from hydra.errors import MissingConfigException

    from src.utils.errors import ConfigError
    from tests.conftest import compose

    with pytest.raises(MissingConfigException, match=r"(?s)gaussian_ssim.*promptir.*y_channel"):
        compose("train", ["metrics=psnr_only"], tmp_path)
    with pytest.raises(ConfigError, match="building `metrics` failed: TypeError: .*crop_border"):
        metric_protocol("promptir", crop_border=4)


@pytest.mark.parametrize("name", ["promptir", "gaussian_ssim", "y_channel"])
def test_hydra_configs_instantiate(name: str) -> None:
    cfg = OmegaConf.load(CONF / f"{name}.yaml")
    protocol = instantiate(cfg)
    assert protocol.name == name == cfg.name
    assert isinstance(protocol, Uint8Protocol if name == "y_channel" else FloatProtocol)
    for option in set(cfg) - {"_target_"}:
        assert getattr(protocol, option) == cfg[option]
    assert protocol.description


def test_rgb_uint8_is_kairs_colour_psnr_and_ssim() -> None:
    """KAIR's util.calculate_psnr / calculate_ssim on uint8 RGB: PSNR over all channels at peak 255, SSIM the mean
    of the per-channel MATLAB values (here from the y_channel kernel applied to each channel as a gray image)."""
    rng = np.random.default_rng(3)
    gt = rng.integers(0, 256, (20, 23, 3)).astype(np.float64)
    pred = np.clip(gt + rng.normal(0, 12, gt.shape), 0, 255)
    ours = metric_protocol("rgb_uint8").per_image(_tensor(pred / 255.0), _tensor(gt / 255.0))
    a, b = np.round(pred), np.round(gt)  # KAIR's uint8 images
    mse = np.mean((a - b) ** 2)
    assert ours["psnr"].item() == pytest.approx(20 * np.log10(255.0 / np.sqrt(mse)), abs=1e-9)
    gray = metric_protocol("y_channel")
    per_channel = [gray.per_image(_tensor(pred[..., c:c + 1] / 255.0), _tensor(gt[..., c:c + 1] / 255.0))["ssim"]
                   for c in range(3)]
    assert ours["ssim"].item() == pytest.approx(float(sum(per_channel)) / 3, abs=1e-12)
    luma = gray.per_image(_tensor(pred / 255.0), _tensor(gt / 255.0))["psnr"].item()
    assert ours["psnr"].item() != pytest.approx(luma)
