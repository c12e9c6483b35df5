"""Reconstruction losses: L1 (the official default), MSE, Charbonnier, FFT-L1 and PSNR terms, each weightable."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from src.models.backbones.base import pad_to_multiple
from src.models.backbones.deepdeblur import gaussian_pyramid


def charbonnier(pred: Tensor, target: Tensor, eps: float = 1e-3) -> Tensor:
    """Mean of sqrt((pred - target)^2 + eps^2): a smooth L1 (Restormer's single-task recipes use it)."""
    return torch.sqrt((pred - target).pow(2) + eps * eps).mean()


def fft_l1(pred: Tensor, target: Tensor) -> Tensor:
    """L1 between the real and imaginary parts of the 2-D real FFTs (MoCE-IR adds 0.1 x this term)."""
    pf = torch.fft.rfft2(pred.float(), norm="backward")
    tf = torch.fft.rfft2(target.float(), norm="backward")
    return (torch.view_as_real(pf) - torch.view_as_real(tf)).abs().mean()


def psnr_loss(pred: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """Minus the mean per-image PSNR (data range 1): ``10 / ln 10 * mean_i log(MSE_i + eps)``, NAFNet's PSNRLoss.

    Per image, not per pixel: an image's gradient is scaled by ``1 / MSE_i``, so every image counts by its
    relative error, as the benchmark's mean PSNR counts it. Under an L1 or MSE loss the few badly degraded images
    of a mix (low light, haze) dominate the gradient and a nearly clean-looking one (mild blur) hardly counts.
    """
    mse = (pred.float() - target.float()).pow(2).flatten(1).mean(dim=1)
    return (10.0 / math.log(10.0)) * torch.log(mse + eps).mean()


class Objective(nn.Module):
    """A training objective. Training calls ``objective(pred, batch, outputs)`` with the restored images, the
    batch (``lq``, ``gt``, ``family``, ...) and the network's further outputs (``Backbone.forward_train``,
    e.g. Zero-DCE's ``curves``); it returns ``(total, terms)``, the terms weighted as summed, for logging.

    Each objective reads what it needs, so one without ground truth, with per-family weights or with outputs
    of its own needs no special case in the LightningModule. The default is a full-reference loss:
    ``self(pred, batch["gt"])``.
    """

    @staticmethod
    def term_weights(**weights: float) -> dict[str, float]:
        """The weights of an objective's terms as floats: none negative, at least one on (a zero weight switches
        its term off, so it is not computed)."""
        out = {name: float(w) for name, w in weights.items()}
        if all(w == 0 for w in out.values()):
            raise ValueError(f"model.loss: every term has weight 0; give one of {', '.join(out)} a weight")
        if any(w < 0 for w in out.values()):
            raise ValueError(f"model.loss: weights must be non-negative, got {out}")
        return out

    def objective(
        self, pred: Tensor, batch: Mapping[str, Any], outputs: Mapping[str, Tensor]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        if batch.get("gt") is None:
            raise ValueError(f"{type(self).__name__} compares with the ground truth, but the batch has no `gt`")
        return self(pred, batch["gt"])


class RestorationLoss(Objective):
    """Weighted sum of reconstruction terms; returns the total and each weighted term for logging.

    A zero weight switches a term off (it is not computed). ``psnr`` is minus a PSNR in dB (it is negative and
    logged as ``psnr_loss``); weighted beside L1 its scale is about 1,000 times L1's.
    """

    def __init__(
        self,
        l1: float = 1.0,
        charbonnier: float = 0.0,
        fft_l1: float = 0.0,
        eps: float = 1e-3,
        mse: float = 0.0,
        psnr: float = 0.0,
        smooth_l1: float = 0.0,
    ):
        super().__init__()
        self.weights = self.term_weights(l1=l1, mse=mse, charbonnier=charbonnier, fft_l1=fft_l1, psnr=psnr,
                                         smooth_l1=smooth_l1)
        self.eps = float(eps)

    def forward(self, pred: Tensor, target: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        terms: dict[str, Tensor] = {}
        if self.weights["l1"]:
            terms["l1"] = self.weights["l1"] * nn.functional.l1_loss(pred, target)
        if self.weights["mse"]:
            terms["mse"] = self.weights["mse"] * nn.functional.mse_loss(pred, target)
        if self.weights["smooth_l1"]:  # TransWeather's (PyTorch's smooth L1, beta 1)
            terms["smooth_l1"] = self.weights["smooth_l1"] * nn.functional.smooth_l1_loss(pred, target)
        if self.weights["charbonnier"]:
            terms["charbonnier"] = self.weights["charbonnier"] * charbonnier(pred, target, self.eps)
        if self.weights["fft_l1"]:
            terms["fft_l1"] = self.weights["fft_l1"] * fft_l1(pred, target)
        if self.weights["psnr"]:
            terms["psnr_loss"] = self.weights["psnr"] * psnr_loss(pred, target)
        return sum(terms.values()), terms


class MultiScaleL1(Objective):
    """DeepDeblur's multi-scale content loss: the L1 of each restored pyramid level against the same level of
    the sharp image's Gaussian pyramid, summed over the levels (as the official ``Loss`` sums a list output).

    Reads the coarser levels from the network's outputs (``scale1``, ``scale2``, ...); the target pyramid is
    built by the network's own pyramid code, as the official data code builds both with skimage.
    """

    def __init__(self, l1: float = 1.0) -> None:
        super().__init__()
        self.weights = self.term_weights(l1=l1)

    def objective(
        self, pred: Tensor, batch: Mapping[str, Any], outputs: Mapping[str, Tensor]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        if batch.get("gt") is None:
            raise ValueError("MultiScaleL1 compares with the ground truth, but the batch has no `gt`")
        coarser = [outputs[f"scale{s}"] for s in range(1, len(outputs) + 1) if f"scale{s}" in outputs]
        gt = batch["gt"]
        padded, _ = pad_to_multiple(gt, 2 ** len(coarser), mode="replicate")
        targets = gaussian_pyramid(padded, len(coarser) + 1)[1:]
        terms = {"l1": nn.functional.l1_loss(pred, gt)}
        for s, (out, target) in enumerate(zip(coarser, targets), start=1):
            terms[f"l1_scale{s}"] = nn.functional.l1_loss(out, target)
        terms = {name: self.weights["l1"] * value for name, value in terms.items()}
        return sum(terms.values()), terms


#: MPRNet's edge loss filter: the outer product of the 5-tap binomial-like kernel (.05, .25, .4, .25, .05)
_EDGE_TAPS = (0.05, 0.25, 0.4, 0.25, 0.05)


def laplacian(image: Tensor) -> Tensor:
    """One Laplacian-pyramid band as MPRNet's edge loss takes it: the image minus its Gaussian-filtered (edge
    padding), 2x subsampled, zero-upsampled (x4) and filtered again copy."""
    taps = torch.tensor(_EDGE_TAPS, dtype=image.dtype, device=image.device)
    channels = image.shape[1]
    kernel = torch.outer(taps, taps).expand(channels, 1, 5, 5)

    def blur(x: Tensor) -> Tensor:
        return nn.functional.conv2d(nn.functional.pad(x, (2, 2, 2, 2), mode="replicate"), kernel, groups=channels)

    filtered = blur(image)
    sparse = torch.zeros_like(filtered)
    sparse[:, :, ::2, ::2] = filtered[:, :, ::2, ::2] * 4
    return image - blur(sparse)


class MultiStageLoss(Objective):
    """MPRNet's objective: Charbonnier (eps 1e-3) plus ``edge`` x the Charbonnier of the Laplacian bands, each
    summed over the restored image and the earlier stages' images (``stage2``, ``stage1``) against the target.

    The official train.py writes the sums as ``torch.sum([...])`` of a list, which current torch refuses;
    the sum of the terms is what it means and what is computed here.
    """

    def __init__(self, charbonnier: float = 1.0, edge: float = 0.05, eps: float = 1e-3) -> None:
        super().__init__()
        self.weights = self.term_weights(charbonnier=charbonnier, edge=edge)
        self.eps = float(eps)

    def objective(
        self, pred: Tensor, batch: Mapping[str, Any], outputs: Mapping[str, Tensor]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        if batch.get("gt") is None:
            raise ValueError("MultiStageLoss compares with the ground truth, but the batch has no `gt`")
        gt = batch["gt"]
        images = [pred, *(outputs[k] for k in ("stage2", "stage1") if k in outputs)]
        terms: dict[str, Tensor] = {}
        if self.weights["charbonnier"]:
            terms["charbonnier"] = self.weights["charbonnier"] * sum(charbonnier(x, gt, self.eps) for x in images)
        if self.weights["edge"]:
            edges = laplacian(gt)
            terms["edge"] = self.weights["edge"] * sum(charbonnier(laplacian(x), edges, self.eps) for x in images)
        return sum(terms.values()), terms
