"""LED's RAW protocol: illumination correction, border, PSNR with LED's epsilon, RGB-only quantities refused."""

from __future__ import annotations

import math

import pytest
import torch

from src.metrics.protocols import RawProtocol


def protocol(**options) -> RawProtocol:
    return RawProtocol(name="raw", description="LED", **options)


def test_a_darker_copy_is_perfect_after_illumination_correction_and_not_before() -> None:
    target = torch.rand(2, 4, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.8
    darker = target * 0.5
    corrected = protocol().per_image(darker, target)
    assert torch.allclose(corrected["psnr"], torch.full((2,), 80.0, dtype=torch.float64))  # 10 log10(1 / 1e-8)
    assert torch.allclose(corrected["ssim"], torch.ones(2, dtype=torch.float64))
    plain = protocol(illumination_correct=False).per_image(darker, target)
    assert float(plain["psnr"].max()) < 20


def test_saturated_target_pixels_do_not_steer_the_correction_and_the_border_is_cropped() -> None:
    target = torch.full((1, 4, 24, 24), 0.4)
    target[..., :2, :] = 1.0  # saturated rows at the top: outside the fit and inside the cropped border
    pred = target * 0.25
    assert float(protocol().per_image(pred, target)["psnr"]) == pytest.approx(80.0)
    pred_edge = target.clone()
    pred_edge[..., :, :2] = 0.0  # wrong only on the border columns
    assert float(protocol(illumination_correct=False).per_image(pred_edge, target)["psnr"]) == pytest.approx(80.0)
    # uncropped: the two wrong columns count, 1.0 off on the two saturated rows and 0.4 off on the other 22
    mse = (2 * 2 * 1.0**2 + 22 * 2 * 0.4**2) / (24 * 24)
    uncropped = protocol(illumination_correct=False, crop_border=0).per_image(pred_edge, target)["psnr"]
    assert float(uncropped) == pytest.approx(10 * math.log10(1 / (mse + 1e-8)))


def test_rgb_only_quantities_are_refused() -> None:
    with pytest.raises(ValueError, match="niqe"):
        protocol(niqe=True)
    with pytest.raises(ValueError, match="shapes|shape"):
        protocol().per_image(torch.rand(1, 4, 16, 16), torch.rand(1, 4, 16, 17))
