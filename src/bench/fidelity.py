"""Whether a speed switch changes what the network computes, beside how fast it runs.

Two checks per setting against the baseline (fp32, eager, contiguous), each network fresh from the same seed:

* inference: the restored output of one real photograph (scikit-image's ``astronaut``, centre crop, Gaussian
  noise of sigma 25/255 from a fixed seed) as the suite's inference runs it; agreement is the PSNR between
  the setting's output and the baseline's, and the shift is how far the output's PSNR against the clean
  photograph moves, which is what a results table would show;
* training: the loss of the first training step (same weights, same batch), relative to the baseline's.

The tolerances are stated per arithmetic: fp32 switches (compile, channels-last, fused AdamW, DDP) only
reorder floating-point sums; bf16 autocast rounds activations to 8 bits of mantissa.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio

from src.bench import network
from src.bench.config import BenchConfig
from src.bench.latency import restorer
from src.bench.settings import BASELINE, NamedSetting

#: least PSNR (dB) between a setting's output and the baseline's
MIN_AGREEMENT_DB = {"fp32": 60.0, "bf16": 40.0}
#: largest move (dB) of the output's PSNR against the clean photograph: a results table's last digit is 0.01 dB
MAX_PSNR_SHIFT_DB = {"fp32": 0.001, "bf16": 0.01}
#: largest relative change of the first training loss
MAX_LOSS_CHANGE = {"fp32": 1e-4, "bf16": 1e-2}
NOISE_SIGMA = 25 / 255
CROP = 256


def arithmetic(setting: NamedSetting) -> str:
    """``"bf16"`` when the setting autocasts in inference, else ``"fp32"``: the tolerance class its outputs are
    judged by (a CPU's bf16 for training only infers in fp32)."""
    return "bf16" if setting.speed.inference_autocast_dtype is not None else "fp32"


def photograph(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(clean, noisy)``, each ``(1, 3, 256, 256)`` in [0, 1]: a real photograph ships with scikit-image."""
    from skimage import data

    image = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float().div(255)
    top = (image.shape[1] - CROP) // 2
    left = (image.shape[2] - CROP) // 2
    clean = image[:, top : top + CROP, left : left + CROP].unsqueeze(0).contiguous()
    generator = torch.Generator().manual_seed(seed)
    noisy = clean + NOISE_SIGMA * torch.randn(clean.shape, generator=generator)
    return clean, noisy


def restored(model: str, setting: NamedSetting, cfg: BenchConfig, noisy: torch.Tensor) -> torch.Tensor:
    """The setting's output for ``noisy`` (float32 on the CPU), computed by the latency measurement's restorer."""
    call, _ = restorer(model, setting, cfg)
    return call(noisy.to(cfg.device)).float().cpu()


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    if torch.equal(a, b):
        return math.inf
    return float(peak_signal_noise_ratio(a, b, data_range=1.0))


def measure_inference(model: str, settings: Sequence[NamedSetting], cfg: BenchConfig) -> dict[str, dict[str, Any]]:
    """Per setting (the baseline first among ``settings``): agreement and PSNR shift, with the verdict."""
    network.forget_compiled()
    clean, noisy = photograph(cfg.seed)
    outputs = {s.name: restored(model, s, cfg, noisy) for s in settings}
    reference = outputs[BASELINE]
    base_psnr = _psnr(reference, clean)
    records: dict[str, dict[str, Any]] = {}
    for setting in settings:
        output = outputs[setting.name]
        kind = arithmetic(setting)
        agreement = _psnr(output, reference)
        shift = abs(_psnr(output, clean) - base_psnr)
        records[setting.name] = {
            "describe": setting.describe(training=False),
            "arithmetic": kind,
            "psnr_vs_clean_db": _psnr(output, clean),
            "agreement_db": agreement,
            "max_abs_diff": float((output - reference).abs().max()),
            "psnr_shift_db": shift,
            "tolerance": {"min_agreement_db": MIN_AGREEMENT_DB[kind], "max_psnr_shift_db": MAX_PSNR_SHIFT_DB[kind]},
            "within": agreement >= MIN_AGREEMENT_DB[kind] and shift <= MAX_PSNR_SHIFT_DB[kind],
        }
    return records


def first_loss_changes(training: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per non-baseline setting: the first training loss's relative change from the baseline's, judged."""
    base = training[BASELINE]["first_loss"]
    result = {}
    for name, run in training.items():
        if name == BASELINE:
            continue
        kind = "bf16" if run["setting"]["speed"]["precision"].startswith("bf16") else "fp32"
        change = abs(run["first_loss"] - base) / max(abs(base), 1e-12)
        result[name] = {"arithmetic": kind, "first_loss": run["first_loss"], "baseline_first_loss": base,
                        "relative_change": change, "tolerance": MAX_LOSS_CHANGE[kind],
                        "within": change <= MAX_LOSS_CHANGE[kind]}
    return result
