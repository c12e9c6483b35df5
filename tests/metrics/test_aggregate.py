"""PerImageMean averages per-image values (not pooled error) and follows its stated +inf policy."""

from __future__ import annotations

import math

import pytest
import torch
from torchmetrics.image import PeakSignalNoiseRatio

from src.metrics.aggregate import PerImageMean
from tests.helpers import metric_protocol


def _pair_with_mses(mses: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets at 0.5 and predictions offset by sqrt(mse): image i has exactly that MSE."""
    target = torch.full((len(mses), 3, 16, 16), 0.5, dtype=torch.float64)
    offsets = torch.tensor([math.sqrt(m) for m in mses], dtype=torch.float64).view(-1, 1, 1, 1)
    return target + offsets, target


def test_mean_of_per_image_psnr_differs_from_pooled() -> None:
    pred, target = _pair_with_mses([1e-2, 1e-4])  # 20 dB and 40 dB
    per_image = metric_protocol("promptir").per_image(pred, target)["psnr"]
    metric = PerImageMean()
    metric.update(per_image)
    assert metric.compute().item() == pytest.approx(30.0, abs=1e-9)

    pooled = PeakSignalNoiseRatio(data_range=1.0)
    pooled.update(pred.float(), target.float())
    assert pooled.compute().item() == pytest.approx(10 * math.log10(1 / 5.05e-3), abs=1e-3)  # 22.97 dB


def test_batching_does_not_change_the_mean() -> None:
    values = torch.tensor([20.0, 31.5, 27.25, 40.0, 18.0], dtype=torch.float64)
    whole, chunked = PerImageMean(), PerImageMean()
    whole.update(values)
    for chunk in values.split([2, 1, 2]):
        chunked.update(chunk)
    assert whole.compute().item() == chunked.compute().item() == pytest.approx(values.mean().item())


def test_states_sum_across_ranks() -> None:
    """merge_state applies the dist_reduce_fx (sum) that DDP sync uses: two ranks give the global mean."""
    rank0, rank1 = PerImageMean(), PerImageMean()
    rank0.update(torch.tensor([10.0, 20.0]))
    rank1.update(torch.tensor([60.0, float("inf")]))
    rank0.merge_state(rank1)
    assert rank0.count.item() == 4 and rank0.num_capped.item() == 1
    assert rank0.compute().item() == pytest.approx((10 + 20 + 60 + 100) / 4)


def test_infinite_psnr_is_capped_and_counted() -> None:
    metric = PerImageMean(cap=100.0)
    metric.update(torch.tensor([30.0, float("inf"), 120.0]))
    assert metric.compute().item() == pytest.approx((30 + 100 + 100) / 3)
    assert metric.num_capped.item() == 2


def test_no_cap_reproduces_official_inf_mean() -> None:
    metric = PerImageMean(cap=None)
    metric.update(torch.tensor([30.0, float("inf")]))
    assert math.isinf(metric.compute().item())
    assert metric.num_capped.item() == 0


def test_nan_propagates_and_empty_is_nan() -> None:
    metric = PerImageMean()
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert math.isnan(metric.compute().item())
    metric.update(torch.tensor([30.0, float("nan")]))
    assert math.isnan(metric.compute().item())


def test_reset_and_dtype() -> None:
    metric = PerImageMean()
    metric.update(torch.tensor([1.0, 2.0], dtype=torch.float32))
    assert metric.compute().dtype == torch.float64
    metric.reset()
    metric.update(torch.tensor(5.0))
    assert metric.compute().item() == 5.0
