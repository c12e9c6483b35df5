"""Named metric protocols: each reproduces how one family of papers computes PSNR and SSIM.

Papers in all-in-one restoration report numbers under different colour spaces, SSIM windows and quantisation;
picking a protocol by name (``metrics=promptir``, a file of ``conf/metrics``) keeps a comparison honest.
Every protocol returns per-image values (averaging over a set is :class:`src.metrics.aggregate.PerImageMean`'s
job).

Any protocol can add LPIPS (``metrics.lpips=alex|vgg|squeeze``, off by default) as a third quantity: it is
computed on the clipped [0,1] RGB images whatever the protocol does to PSNR/SSIM (LPIPS is defined on RGB;
gray images are repeated to three channels), and needs torchvision's backbone weights on disk
(:mod:`src.metrics.lpips`), which is checked when the protocol is built. ``metrics.niqe=true`` adds NIQE
(:mod:`src.metrics.niqe`), a no-reference quantity of the restored (and the input) image alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch
from torch import Tensor

from src.metrics.color import rgb_levels_to_y, to_uint8_levels
from src.metrics.functional import check_pair, gaussian_window, psnr, ssim, uniform_window
from src.metrics.lpips import LpipsScorer, check_net
from src.metrics.niqe import niqe, pristine_model
from src.metrics.pyiqa_bridge import PyiqaScorer

#: what the tables say about the NIQE columns
NIQE_NOTE = "NIQE (no reference: BT.601 Y, 8-bit rounded, the authors' pristine model; lower is better)"


def niqe_per_image(images: Tensor) -> Tensor:
    """NIQE of each image of a B x C x H x W batch in [0, 1] (float64); NaN where an image has fewer than two
    96 x 96 blocks (NIQE is undefined there), which the means leave out."""
    values = []
    for image in images.detach().float().clamp(0, 1).cpu().numpy():
        array = image.transpose(1, 2, 0) if image.shape[0] == 3 else image[0]
        try:
            values.append(niqe(array))
        except ValueError:
            values.append(float("nan"))
    return torch.tensor(values, dtype=torch.float64, device=images.device)


def lpips_note(net: str) -> str:
    """What the tables say about the LPIPS columns: the network, the images compared, lower is better."""
    return f"LPIPS ({net} backbone, torchmetrics, RGB [0,1]; lower is better)"


@dataclass(frozen=True)
class MetricProtocol(ABC):
    """A named way to score restored images, built from its config file (``conf/metrics/<name>.yaml`` names the
    class by ``_target_`` and gives every field, the description included: the config is the registry).

    ``lpips`` names an LPIPS network to add an ``"lpips"`` quantity; its weights are loaded (or their absence
    reported) when the protocol is built, so a run fails before training, not at its first validation.
    """

    name: str
    description: str
    lpips: str | None = None
    niqe: bool = False
    #: pyiqa metric names (``metrics.pyiqa=[musiq]``), computed through :mod:`src.metrics.pyiqa_bridge`
    pyiqa: tuple[str, ...] = ()
    _lpips: LpipsScorer | None = field(default=None, init=False, repr=False, compare=False)
    _pyiqa: tuple[PyiqaScorer, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.lpips is not None:
            check_net(self.lpips)
            object.__setattr__(self, "_lpips", LpipsScorer.load(self.lpips))
        if self.niqe:
            pristine_model()  # absent or altered: said now, not at the first validation
        if self.pyiqa:  # pyiqa absent or a weight file missing: said now, naming what to install or put where
            object.__setattr__(self, "pyiqa", tuple(self.pyiqa))
            object.__setattr__(self, "_pyiqa", tuple(PyiqaScorer.load(name) for name in self.pyiqa))

    @property
    def quantities(self) -> tuple[str, ...]:
        """The keys of :meth:`per_image`: ``("psnr", "ssim")``, plus ``"lpips"``, ``"niqe"`` and ``"pyiqa_<name>"``
        when they are on."""
        return ("psnr", "ssim") + (("lpips",) if self.lpips is not None else ()) + (("niqe",) if self.niqe else ()) \
            + tuple(scorer.column for scorer in self._pyiqa)

    @property
    def no_reference_quantities(self) -> tuple[str, ...]:
        """The quantities scored on an image alone (:meth:`per_image_no_reference`): NIQE and pyiqa's NR metrics."""
        return (("niqe",) if self.niqe else ()) + tuple(s.column for s in self._pyiqa if s.no_reference)

    @property
    def min_side(self) -> int:
        """The smallest image side the protocol can score (its SSIM window, plus any border it crops)."""
        return self._window().numel()

    def _window(self) -> Tensor:
        return gaussian_window(1.5)

    @property
    def summary(self) -> str:
        """The description for table captions: mentions LPIPS (and its network) and NIQE when on."""
        notes = ([lpips_note(self.lpips)] if self.lpips is not None else []) + ([NIQE_NOTE] if self.niqe else [])
        notes += [f"pyiqa {s.name} ({'no reference' if s.no_reference else 'full reference'}; "
                  f"{'lower' if s.lower_better else 'higher'} is better)" for s in self._pyiqa]
        return "; ".join([self.description, *notes])

    def per_image(self, pred: Tensor, target: Tensor) -> dict[str, Tensor]:
        """B x C x H x W floats in [0,1] (C = 1 or 3) -> {"psnr": (B,), "ssim": (B,)[, "lpips": (B,)]}, float64."""
        out = self._psnr_ssim(pred, target)
        if self._lpips is not None:
            out["lpips"] = self._lpips(pred, target)
        out.update(self.per_image_no_reference(pred))
        for scorer in self._pyiqa:
            if not scorer.no_reference:
                out[scorer.column] = scorer(pred, target)
        return out

    def per_image_no_reference(self, pred: Tensor) -> dict[str, Tensor]:
        """The no-reference quantities of images with no target (B x C x H x W in [0,1]), float64 per image."""
        out = {"niqe": niqe_per_image(pred)} if self.niqe else {}
        for scorer in self._pyiqa:
            if scorer.no_reference:
                out[scorer.column] = scorer(pred)
        return out

    @abstractmethod
    def _psnr_ssim(self, pred: Tensor, target: Tensor) -> dict[str, Tensor]:
        """The protocol's own PSNR and SSIM per image (checks the pair's shapes)."""


@dataclass(frozen=True)
class FloatProtocol(MetricProtocol):
    """Clipped [0,1] floats, no 8-bit rounding, PSNR at data range 1, scikit-image ``structural_similarity``.

    ``gaussian_weights=False`` is scikit-image's default SSIM (7x7 uniform window); ``True`` its Gaussian one
    (sigma 1.5, 11x11). ``use_sample_covariance`` is scikit-image's flag of the same name (default True: the
    variances are scaled by N/(N-1), N = window taps). Both images are clipped, as PromptIR's
    ``compute_psnr_ssim`` does; channels are averaged as ``channel_axis=-1`` does.
    """

    gaussian_weights: bool = False
    use_sample_covariance: bool = True

    def _window(self) -> Tensor:
        return gaussian_window(1.5) if self.gaussian_weights else uniform_window(7)

    def _psnr_ssim(self, pred: Tensor, target: Tensor) -> dict[str, Tensor]:
        check_pair(pred, target)
        x = pred.detach().double().clamp(0.0, 1.0)
        y = target.detach().double().clamp(0.0, 1.0)
        window = self._window()
        return {
            "psnr": psnr(x, y, data_range=1.0),
            "ssim": ssim(x, y, window, data_range=1.0, sample_covariance=self.use_sample_covariance),
        }


@dataclass(frozen=True)
class Uint8Protocol(MetricProtocol):
    """BasicSR's and KAIR's ``calculate_psnr`` / ``calculate_ssim`` on uint8 images.

    Both images are rounded to 8-bit levels (``tensor2img``), ``crop_border`` pixels are dropped on each side;
    with ``test_y_channel`` (BasicSR's flag, ``metrics=y_channel``) RGB becomes BT.601 luma on the 0-255 scale
    (C = 1 input is taken as luma already, as BasicSR does), without it the three RGB channels are scored
    (KAIR's and SwinIR's colour denoising, ``metrics=rgb_uint8``: PSNR over all channels, SSIM the mean of the
    per-channel values). PSNR uses peak 255 and SSIM is Wang's MATLAB form (11x11 Gaussian, sigma 1.5,
    population covariance, valid region, C1 = (0.01*255)^2, C2 = (0.03*255)^2). ``round_y=True`` also rounds
    the luma to integers as MATLAB's ``rgb2ycbcr`` does on uint8 (Restormer's deraining script), which BasicSR
    does not.
    """

    crop_border: int = 0
    round_y: bool = False
    test_y_channel: bool = True

    def __post_init__(self) -> None:
        if self.crop_border < 0:
            raise ValueError(f"crop_border must be >= 0, got {self.crop_border}")
        super().__post_init__()

    @property
    def min_side(self) -> int:
        return super().min_side + 2 * self.crop_border

    def _psnr_ssim(self, pred: Tensor, target: Tensor) -> dict[str, Tensor]:
        check_pair(pred, target)
        x, y = to_uint8_levels(pred.detach()), to_uint8_levels(target.detach())
        if self.crop_border:
            cb = self.crop_border
            x, y = x[..., cb:-cb, cb:-cb], y[..., cb:-cb, cb:-cb]
        if self.test_y_channel and x.shape[1] == 3:
            x, y = rgb_levels_to_y(x, self.round_y), rgb_levels_to_y(y, self.round_y)
        return {
            "psnr": psnr(x, y, data_range=255.0),
            "ssim": ssim(x, y, gaussian_window(1.5), data_range=255.0, sample_covariance=False),
        }


@dataclass(frozen=True)
class RawProtocol(MetricProtocol):
    """LED's scores of packed RAW (any channel count, 4 for Bayer planes) in [0, 1].

    The restored frame is clipped to [0, 1] and, with ``illumination_correct`` (on in every LED option file),
    scaled by the one factor that best fits it to the target in least squares over the target's unsaturated
    pixels (``IlluminanceCorrect``: low-light pairs differ in brightness as well as noise); not clipped again.
    ``crop_border`` packed pixels are dropped on each side (LED: 2), PSNR is ``10 log10(1 / (MSE + 1e-8))``
    (BasicSR's ``calculate_psnr_pt``) and SSIM Wang's form (11x11 Gaussian, sigma 1.5) averaged over planes.
    LPIPS, NIQE and pyiqa score RGB photographs and are refused here."""

    crop_border: int = 2
    illumination_correct: bool = True
    #: added to the MSE (LED's, BasicSR's ``calculate_psnr_pt``): identical frames score 10 log10(1 / eps), 80 dB
    psnr_epsilon: float = 1e-8

    def __post_init__(self) -> None:
        rgb_only = [name for name, on in (("lpips", self.lpips is not None), ("niqe", self.niqe),
                                          ("pyiqa", bool(self.pyiqa))) if on]
        if rgb_only:
            raise ValueError(f"metrics={self.name}: {', '.join(rgb_only)} score RGB photographs, not packed RAW; "
                             "set them off (null / false / [])")
        if self.crop_border < 0:
            raise ValueError(f"crop_border must be >= 0, got {self.crop_border}")

    @property
    def min_side(self) -> int:
        return super().min_side + 2 * self.crop_border

    def corrected(self, pred: Tensor, target: Tensor) -> Tensor:
        """``pred`` clipped and, with ``illumination_correct``, brought to the target's brightness."""
        x = pred.detach().double().clamp(0.0, 1.0)
        if not self.illumination_correct:
            return x
        y = target.detach().double()
        unsaturated = (y != 1.0).to(x.dtype)
        num = (x * y * unsaturated).sum(dim=(1, 2, 3), keepdim=True)
        den = (x * x * unsaturated).sum(dim=(1, 2, 3), keepdim=True)
        return x * torch.where(den > 0, num / den.clamp_min(torch.finfo(x.dtype).tiny), torch.ones_like(den))

    def _psnr_ssim(self, pred: Tensor, target: Tensor) -> dict[str, Tensor]:
        if pred.shape != target.shape or pred.ndim != 4:
            raise ValueError(f"expected two B x C x H x W frames of one shape, got pred {tuple(pred.shape)} and "
                             f"target {tuple(target.shape)}")
        x, y = self.corrected(pred, target), target.detach().double()
        if self.crop_border:
            cb = self.crop_border
            x, y = x[..., cb:-cb, cb:-cb], y[..., cb:-cb, cb:-cb]
        mse = (x - y).square().mean(dim=(1, 2, 3))
        return {
            "psnr": 10.0 * torch.log10(1.0 / (mse + self.psnr_epsilon)),
            "ssim": ssim(x, y, gaussian_window(1.5), data_range=1.0, sample_covariance=False),
        }
