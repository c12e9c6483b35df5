"""Set-level averages of per-image metric values, synchronised across DDP ranks by summing.

The papers report the mean of per-image PSNR, not the PSNR of the pooled MSE of a whole set (torchmetrics'
``PeakSignalNoiseRatio`` default); they differ whenever image errors differ. Keeping a sum and a count makes
the average exact under any batch size and any number of ranks.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


class PerImageMean(Metric):
    """Mean of per-image values, with an explicit policy for +inf PSNR (identical images).

    Policy: every value is clamped to at most ``cap`` before it is added, so an identical pair (PSNR +inf)
    counts as ``cap`` (100 dB by default, about an MSE of 1e-10 at data range 1) and keeps logs and
    checkpoint monitors finite; ``num_capped`` says how many values were clamped. ``cap=None`` keeps +inf,
    so the mean is +inf like the official scripts' ``np.mean``. NaN is never dropped: it makes the mean NaN.
    For SSIM leave ``cap=None`` (values never exceed 1).
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False

    total: Tensor
    count: Tensor
    num_capped: Tensor

    def __init__(self, cap: float | None = 100.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cap = cap
        self.add_state("total", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("num_capped", torch.zeros((), dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, values: Tensor) -> None:
        """Add one value per image (any shape; flattened)."""
        values = values.detach().to(device=self.total.device, dtype=torch.float64).flatten()
        if self.cap is not None:
            over = values > self.cap
            self.num_capped += over.sum()
            values = torch.where(over, torch.full_like(values, self.cap), values)
        self.total += values.sum()
        self.count += values.numel()

    def compute(self) -> Tensor:
        """The mean over all images seen (NaN before any update)."""
        if self.count == 0:
            return torch.full((), float("nan"), dtype=torch.float64, device=self.total.device)
        return self.total / self.count
