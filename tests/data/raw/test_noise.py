"""LED's noise model: each component's mean and variance against its formula, per signal level, and the virtual
cameras against LED's ranges."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from src.data.raw.noise import (
    LED_RANGES,
    CaptureNoise,
    VirtualCameras,
    colour_bias_bin,
    draw_capture,
    moments,
    noise_components,
    sample_virtual_cameras,
    synthesise,
    tukey_lambda_variance,
)

LEVELS = [2.0, 20.0, 200.0, 2000.0]  # dimmed signal in DN


def capture(gain: float = 0.8, read: float = 3.0, row: float = 1.5, lam: float = 0.1,
            bias: tuple[float, ...] = (1.5, -0.5, 2.0, 0.25)) -> CaptureNoise:
    return CaptureNoise(camera=0, gain=gain, read_sigma=read, row_sigma=row, tukey_lambda=lam,
                        colour_bias=np.asarray(bias))


def within(sample: np.ndarray, mean: float, variance: float, sigmas: float = 5.0) -> None:
    """The sample's mean and variance agree with the formula's within ``sigmas`` standard errors."""
    n = sample.size
    assert abs(sample.mean() - mean) < sigmas * math.sqrt(variance / n) + 1e-9, (sample.mean(), mean)
    # the variance of a sample variance: (m4 - var^2) / n, estimated from the sample itself
    m4 = float(((sample - sample.mean()) ** 4).mean())
    assert abs(sample.var() - variance) < sigmas * math.sqrt(max(m4 - variance**2, 0) / n) + 1e-9, \
        (sample.var(), variance)


@pytest.mark.parametrize("level", LEVELS)
def test_shot_noise_has_zero_mean_and_variance_gain_times_signal(level: float) -> None:
    rng = np.random.default_rng(0)
    x = np.full((4, 200, 200), level)
    shot = noise_components(x, capture(gain=0.8), "p", rng)["shot"]
    within(shot, 0.0, 0.8 * level)


@pytest.mark.parametrize("lam", [-0.2429, -0.1, 0.1, 0.2])
def test_tukey_lambda_read_noise_has_the_distributions_variance(lam: float) -> None:
    assert tukey_lambda_variance(lam) == pytest.approx(stats.tukeylambda.var(lam), rel=1e-9)
    read = noise_components(np.zeros((4, 200, 200)), capture(read=3.0, lam=lam), "t", np.random.default_rng(1))["read"]
    within(read, 0.0, 9.0 * tukey_lambda_variance(lam))


def test_gaussian_read_noise_replaces_tukey_lambda() -> None:
    parts = noise_components(np.zeros((4, 200, 200)), capture(read=2.0), "pgrqc", np.random.default_rng(2))
    within(parts["read"], 0.0, 4.0)
    with pytest.raises(ValueError, match="choose one read noise"):
        sample_virtual_cameras(noise_type="pgtrqc")


def test_row_noise_is_one_value_per_mosaic_row_shared_by_the_planes_of_that_row() -> None:
    row = noise_components(np.zeros((4, 500, 64)), capture(row=1.5), "r", np.random.default_rng(3))["row"]
    assert np.array_equal(row[0], row[1]) and np.array_equal(row[2], row[3])  # R/G1 even rows, B/G2 odd rows
    assert not np.array_equal(row[0], row[2])
    assert np.all(row == row[:, :, :1])  # constant along each row
    within(np.concatenate([row[0, :, 0], row[2, :, 0]]), 0.0, 1.5**2)


def test_quantisation_noise_is_uniform_on_one_step_and_the_colour_bias_a_constant_per_plane() -> None:
    parts = noise_components(np.zeros((4, 200, 200)), capture(), "qc", np.random.default_rng(4))
    within(parts["quantisation"], 0.0, 1 / 12)
    assert parts["quantisation"].min() >= -0.5 and parts["quantisation"].max() < 0.5
    assert np.array_equal(parts["colour_bias"][:, 0, 0], capture().colour_bias)
    assert np.all(parts["colour_bias"].std(axis=(1, 2)) == 0)


@pytest.mark.parametrize("level", [0.005, 0.05, 0.3])
def test_the_noisy_frame_has_the_mean_and_variance_of_the_sum_of_the_components(level: float) -> None:
    """lq = (x + noise) / span * ratio: per level, the model's mean and variance brought up by ratio / span."""
    span, ratio, cap = 16383.0 - 512.0, 100.0, capture()
    gt = np.full((4, 300, 300), level)
    lq, clean = synthesise(gt, np.full(4, span), ratio, cap, "ptrqc", np.random.default_rng(5))
    assert np.array_equal(clean, gt.astype(np.float32))
    mean, variance = moments(level * span / ratio, cap, "ptrqc")
    # plane 0 only (its colour bias); its rows share row noise, so rows are the independent unit for the mean
    plane = lq[0].astype(np.float64) * span / ratio
    assert abs(plane.mean() - mean) < 5 * math.sqrt((variance - cap.row_sigma**2) / plane.size
                                                    + cap.row_sigma**2 / plane.shape[0])
    assert plane.var() == pytest.approx(variance, rel=0.12)


def test_the_noisy_frame_is_clipped_at_one_and_keeps_negative_values() -> None:
    lq, _ = synthesise(np.full((4, 64, 64), 0.0), np.full(4, 15871.0), 300.0, capture(), "ptrqc",
                       np.random.default_rng(6))
    assert lq.min() < 0  # read noise around zero signal, as LED keeps it
    bright, _ = synthesise(np.full((4, 64, 64), 1.0), np.full(4, 15871.0), 300.0, capture(), "ptrqc",
                           np.random.default_rng(6))
    assert bright.max() == 1.0


def test_coverage_cameras_take_the_ith_point_of_every_range() -> None:
    cameras = sample_virtual_cameras(5, strategy="coverage")
    tl = LED_RANGES["TukeyLambda"]
    for values, bounds in ((cameras.read_slopes, tl["slope"]), (cameras.tukey_lambdas, tl["lambda"]),
                           (cameras.row_biases, LED_RANGES["Row"]["bias"])):
        assert np.allclose(values, np.linspace(bounds[0], bounds[1], 5))
    assert cameras.colour_biases.shape == (5, 16, 4)
    shuffled = sample_virtual_cameras(5, strategy="coverage", shuffle=True, seed=3)
    assert sorted(shuffled.read_slopes) == pytest.approx(sorted(cameras.read_slopes))
    uniform = sample_virtual_cameras(5, strategy="uniform", seed=3)
    assert np.all((uniform.read_slopes >= tl["slope"][0]) & (uniform.read_slopes <= tl["slope"][1]))


def test_a_capture_follows_its_cameras_log_linear_relation() -> None:
    """log sigma_read ~ N(slope log K + bias, spread): regress the drawn scales on log K."""
    cameras = sample_virtual_cameras(5)
    rng = np.random.default_rng(7)
    draws = [draw_capture(cameras, 2, rng) for _ in range(4000)]
    log_k = np.log([d.gain for d in draws])
    assert log_k.min() >= math.log(0.1) and log_k.max() <= math.log(30.0)
    slope, bias = np.polyfit(log_k, np.log([d.read_sigma for d in draws]), 1)
    assert slope == pytest.approx(cameras.read_slopes[2], abs=0.03)
    assert bias == pytest.approx(cameras.read_biases[2], abs=0.05)
    residual = np.log([d.read_sigma for d in draws]) - (slope * log_k + bias)
    assert residual.std() == pytest.approx(cameras.read_spreads[2], rel=0.05)
    # LED's linear K bins under a log-uniform K: about half the draws in the first bin
    first = np.mean([colour_bias_bin(d.gain, cameras.k_range, 16) == 0 for d in draws])
    expected = (math.log(0.1 + 29.9 / 16) - math.log(0.1)) / (math.log(30) - math.log(0.1))
    assert first == pytest.approx(expected, abs=0.03) and 0.45 < expected < 0.6


def test_leds_saved_cameras_load_without_unpickling(tmp_path) -> None:
    cameras = sample_virtual_cameras(5, seed=1)
    path = tmp_path / "noise_g.pth"
    torch.save({k: torch.as_tensor(v) for k, v in cameras.as_state().items()}, path)
    loaded = VirtualCameras.from_led_file(path)
    assert np.allclose(loaded.colour_biases, cameras.colour_biases)
    assert np.allclose(loaded.row_spreads, cameras.row_spreads) and loaded.k_range == cameras.k_range
    torch.save({"read_slopes": torch.zeros(5)}, path)
    with pytest.raises(ValueError, match="missing"):
        VirtualCameras.from_led_file(path)
    with pytest.raises(FileNotFoundError, match="noise_g"):
        VirtualCameras.from_led_file(tmp_path / "absent.pth")
