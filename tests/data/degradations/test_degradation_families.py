"""Family-specific behaviour: checks that fail if an operator does the wrong physics, not just any change."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from src.data.degradations import (
    AtmosphericHaze,
    Blur,
    DefocusBlur,
    Degradation,
    GaussianNoise,
    JPEGCompression,
    LowLight,
    MotionBlur,
    Sequence,
    SyntheticRain,
    rng_for,
)
from src.data.degradations.ops import line_kernel


def grey(size: int = 256, channels: int = 3, level: float = 128 / 255) -> np.ndarray:
    return np.full((size, size, channels), level, np.float32)


def laplacian_variance(image: np.ndarray) -> float:
    return float(cv2.Laplacian(image.mean(axis=2), cv2.CV_32F).var())


# --- noise -------------------------------------------------------------------------------------------


def test_quantized_noise_is_uint8_with_sigma_std_and_truncation_bias() -> None:
    out = GaussianNoise(sigmas=[25], quantize=True)(grey(), rng_for(1))
    levels = out * 255.0
    np.testing.assert_allclose(levels, np.rint(levels), atol=1e-3)
    residual = levels.astype(np.float64) - 128.0
    assert residual.std() == pytest.approx(25.0, rel=0.03)
    # Truncating the cast floors every value: mean shift -0.5 (a rounding cast would give ~0; the
    # standard error here is 25 / sqrt(196608) = 0.06).
    assert residual.mean() == pytest.approx(-0.5, abs=0.2)


def test_float_noise_is_unbiased_and_clip_option_is_honoured() -> None:
    residual = (GaussianNoise(sigmas=[25])(grey(), rng_for(2)) - 128 / 255) * 255.0
    assert residual.std() == pytest.approx(25.0, rel=0.03)
    assert residual.mean() == pytest.approx(0.0, abs=0.2)
    bright = grey(level=0.98)
    assert GaussianNoise(sigmas=[25], clip=True)(bright, rng_for(3)).max() <= 1.0
    assert GaussianNoise(sigmas=[25], clip=False)(bright, rng_for(3)).max() > 1.0  # KAIR eval: unclipped


def test_sigma_comes_from_the_set_or_the_range() -> None:
    drawn = {GaussianNoise(sigmas=[15, 25, 50]).sample(rng_for(k))["sigma"] for k in range(60)}
    assert drawn == {15.0, 25.0, 50.0}
    ranged = [GaussianNoise(sigma_range=(5, 10)).sample(rng_for(k))["sigma"] for k in range(60)]
    assert 5.0 <= min(ranged) < max(ranged) <= 10.0
    assert len(set(ranged)) == len(ranged)


# --- rain --------------------------------------------------------------------------------------------


def test_rain_only_brightens_with_screen_blend(photo: np.ndarray) -> None:
    out = SyntheticRain()(photo, rng_for(4))
    assert (out - photo).min() >= -1e-6
    assert out.mean() > photo.mean() + 0.01


def test_rain_streaks_follow_the_angle() -> None:
    # A long blur makes a wrong blur direction visible: it would smear the streaks sideways.
    rain = SyntheticRain(angle_range=(0, 0), width_range=(1, 1), blur=9)
    layer = rain.streaks((128, 128), rain.sample(rng_for(5)), rng_for(6))
    along = np.abs(np.diff(layer, axis=0)).mean()  # vertical streaks change little top to bottom
    across = np.abs(np.diff(layer, axis=1)).mean()
    assert along < 0.15 * across


def test_rain_density_controls_coverage() -> None:
    def coverage(density: float) -> float:
        rain = SyntheticRain(density_range=(density, density))
        return float(rain.streaks((128, 128), rain.sample(rng_for(7)), rng_for(8)).mean())

    assert coverage(0.01) > 2.5 * coverage(0.002)


# --- haze --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", ["gradient", "random"])
def test_haze_follows_the_scattering_model(photo: np.ndarray, depth: str) -> None:
    haze = AtmosphericHaze(beta_range=(1.5, 1.5), airlight_range=(0.9, 0.9), depth=depth)
    dark = photo * np.float32(0.3)
    out = haze(dark, rng_for(9))
    assert out.mean() > dark.mean() + 0.1  # pulled toward the airlight
    assert np.all(np.abs(out - 0.9) <= np.abs(dark - 0.9) + 1e-5)
    t = (out - 0.9) / (dark - 0.9)  # transmission, grey airlight: equal in all channels, in [e^-beta, 1]
    np.testing.assert_allclose(t, t[..., :1].repeat(3, axis=2), atol=1e-4)
    assert t.min() >= np.exp(-1.5) - 1e-4 and t.max() <= 1.0 + 1e-4
    assert t.max() - t.min() > 0.5  # depth varies: haze is not a uniform veil


@pytest.mark.parametrize("depth", ["gradient", "random"])
def test_haze_depth_range_leaves_no_haze_free_point(photo: np.ndarray, depth: str) -> None:
    """``depth_range=(near, far)``: transmission spans [exp(-beta far), exp(-beta near)], none is 1."""
    beta, airlight = 1.5, 0.9
    haze = AtmosphericHaze(beta_range=(beta, beta), airlight_range=(airlight, airlight), depth=depth,
                           depth_range=(0.4, 1.0))
    dark = photo * np.float32(0.3)
    t = (haze(dark, rng_for(9)) - airlight) / (dark - airlight)
    assert t.max() == pytest.approx(np.exp(-beta * 0.4), abs=1e-3)
    assert t.min() == pytest.approx(np.exp(-beta * 1.0), abs=1e-3)
    default = AtmosphericHaze(beta_range=(beta, beta), airlight_range=(airlight, airlight), depth=depth)
    t_default = (default(dark, rng_for(9)) - airlight) / (dark - airlight)
    assert t_default.max() == pytest.approx(1.0, abs=1e-3)  # the default keeps a haze-free point


def test_haze_lowers_contrast(photo: np.ndarray) -> None:
    out = AtmosphericHaze()(photo, rng_for(10))
    assert out.std() < 0.8 * photo.std()


# --- blur --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", [MotionBlur(), DefocusBlur(), Blur()], ids=lambda o: type(o).__name__)
def test_blur_removes_high_frequencies_and_keeps_brightness(op: Degradation, photo: np.ndarray) -> None:
    out = op(photo, rng_for(11))
    assert laplacian_variance(out) < 0.5 * laplacian_variance(photo)
    assert out.mean() == pytest.approx(photo.mean(), abs=0.01)


def test_motion_blur_acts_along_its_angle() -> None:
    stripes = np.zeros((64, 64, 1), np.float32)
    stripes[::4] = 1.0  # horizontal lines: constant along x
    blur = MotionBlur()
    along = blur.apply(stripes, {"kernel_size": 15, "angle": 0.0}, rng_for(0))
    across = blur.apply(stripes, {"kernel_size": 15, "angle": 90.0}, rng_for(0))
    np.testing.assert_allclose(along, stripes, atol=1e-5)
    assert np.abs(across - stripes).mean() > 0.2


@pytest.mark.parametrize("length", [1, 2, 7.5, 21])
def test_line_kernel_is_normalised_and_long_enough(length: float) -> None:
    kernel = line_kernel(length, 30.0)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
    assert kernel.shape[0] % 2 == 1 and kernel.shape[0] >= length
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-6)  # point-symmetric


def test_blur_mixes_motion_and_defocus_at_the_given_rate() -> None:
    motion = [Blur(motion_prob=0.7).sample(rng_for(k))["motion"] for k in range(400)]
    assert 0.62 < np.mean(motion) < 0.78
    assert {Blur(motion_prob=0.0).sample(rng_for(k))["motion"] for k in range(20)} == {0}


# --- low light ---------------------------------------------------------------------------------------


def test_lowlight_darkens(photo: np.ndarray) -> None:
    out = LowLight()(photo, rng_for(12))
    assert out.mean() < 0.5 * photo.mean()


def test_lowlight_without_noise_is_exposure_times_gamma(photo: np.ndarray) -> None:
    op = LowLight(exposure_range=(0.3, 0.3), gamma_range=(2, 2), shot_noise_range=(0, 0), read_noise_range=(0, 0))
    np.testing.assert_allclose(op(photo, rng_for(13)), 0.3 * photo**2, atol=1e-6)


def test_lowlight_shot_noise_scales_with_signal() -> None:
    image = np.concatenate([grey(128, level=0.25), grey(128, level=1.0)], axis=1)
    op = LowLight(exposure_range=(0.4, 0.4), gamma_range=(1, 1), shot_noise_range=(0.01, 0.01), read_noise_range=(0, 0))
    out = op(image, rng_for(14))
    dim, bright = out[:, :128].var(), out[:, 128:].var()
    assert bright / dim == pytest.approx(4.0, rel=0.2)  # variance = shot * signal, signal ratio 4


# --- jpeg --------------------------------------------------------------------------------------------


def test_jpeg_matches_libjpeg_on_rgb_order(photo: np.ndarray) -> None:
    out = JPEGCompression(quality_range=(20, 20))(photo, rng_for(15))
    pixels = np.rint(photo * 255).astype(np.uint8)
    _, encoded = cv2.imencode(".jpg", pixels[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 20])
    expected = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_jpeg_lower_quality_means_larger_error(photo: np.ndarray) -> None:
    def error(quality: int) -> float:
        out = JPEGCompression(quality_range=(quality, quality))(photo, rng_for(16))
        assert out.shape == photo.shape
        return float(np.abs(out - photo).mean())

    assert error(10) > 1.5 * error(50) > 0.0


# --- sequence ----------------------------------------------------------------------------------------


def test_sequence_of_one_equals_its_child(photo: np.ndarray) -> None:
    single = Sequence([AtmosphericHaze()], family="haze")
    np.testing.assert_array_equal(single(photo, rng_for(17)), AtmosphericHaze()(photo, rng_for(17)))


def test_sequence_prefixes_params_and_applies_in_order(photo: np.ndarray) -> None:
    seq = Sequence([LowLight(), GaussianNoise(sigmas=[50])], family="lowlight+noise")
    params = seq.sample(rng_for(18))
    assert seq.family == "lowlight+noise"
    assert params["1.noise.sigma"] == 50.0 and "0.lowlight.gamma" in params
    out = seq(photo, rng_for(18))
    assert out.mean() < 0.5 * photo.mean()  # low light happened
    assert laplacian_variance(out) > laplacian_variance(LowLight()(photo, rng_for(18)))  # then noise


def test_sr_is_matlab_bicubic_on_8_bit_levels_and_upsamples_back_when_asked(photo: np.ndarray) -> None:
    from src.data.degradations import BicubicDownsample
    from src.utils.imresize import imresize

    hr = photo[:60, :84]
    lr = BicubicDownsample(scale=3)(hr, rng_for(0))
    assert lr.shape == (20, 28, 3)
    levels = np.clip(np.rint(imresize(hr, 1 / 3) * 255), 0, 255)
    assert np.array_equal(np.rint(lr * 255), levels)
    same = BicubicDownsample(scale=3, upsample=True)(hr, rng_for(0))
    assert same.shape == hr.shape and np.abs(same - hr).mean() < 0.1
    with pytest.raises(ValueError, match="not a multiple of the scale"):
        BicubicDownsample(scale=4)(hr[:30], rng_for(0))
    with pytest.raises(ValueError, match="whole number >= 2"):
        BicubicDownsample(scale=1)
