"""Our DnCNN computes KAIR's function, loads its checkpoints and reproduces the released sigma-25 model."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.models.official import from_official
from src.models.official.dncnn import build
from src.utils.weights import load_state_dict_file

#: the released ``dncnn_25.pth``: KAIR's test script builds it with act_mode 'R' (batch norm folded).
RELEASED_25 = {"in_nc": 1, "out_nc": 1, "nc": 64, "nb": 17, "act_mode": "R"}


@pytest.fixture(scope="module")
def ref(reference):
    return reference("dncnn")


def test_wrong_key_or_shape_is_named(ref) -> None:
    kwargs, weights = ref.meta["tiny_kwargs"], ref.tensors("weights")
    renamed = dict(weights)
    renamed["model.4.weight"] = renamed.pop("model.3.weight")  # onto a ReLU's index
    with pytest.raises(ValueError, match=r"missing keys \(1\): net\.body\.0\.norm\.weight") as err:
        from_official("dncnn", kwargs, renamed)
    assert "unexpected keys (1): model.4.weight" in str(err.value)
    with pytest.raises(ValueError, match=r"unexpected keys \(1\): head\.weight"):
        from_official("dncnn", kwargs, {**weights, "head.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"shape mismatches.*net\.last\.weight"):
        from_official("dncnn", kwargs, {**weights, "model.8.weight": torch.zeros(1, 8, 3, 3)})
    # batch-norm weights into the folded model: every BN key is foreign
    with pytest.raises(ValueError, match="unexpected keys"):
        from_official("dncnn", {**kwargs, "act_mode": "R"}, weights)


def test_unknown_official_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown official DnCNN arguments: bias"):
        build({"nc": 8, "bias": False})
    with pytest.raises(ValueError, match="act_mode 'IR'"):
        build({"act_mode": "IR"})


# ---------------------------------------------------------------- the released weights on real images


def kair_noisy(clean: np.ndarray, sigma: float = 25) -> np.ndarray:
    """KAIR's main_test_dncnn.py: float32 image / 255, ``np.random.seed(0)``, float N(0, sigma/255) added."""
    noisy = clean.astype(np.float32)[..., None] / np.float32(255.0)
    np.random.seed(0)
    noisy += np.random.normal(0, sigma / 255.0, noisy.shape)
    return noisy[..., 0]


def psnr_uint8(x: np.ndarray, clean: np.ndarray) -> float:
    """KAIR's PSNR: output clipped to [0, 1] and rounded to uint8, whole image."""
    out = np.uint8((np.clip(x, 0, 1) * 255.0).round()).astype(np.float64)
    return 20 * math.log10(255.0 / math.sqrt(np.mean((out - clean.astype(np.float64)) ** 2)))


@pytest.fixture(scope="module")
def released_25(shared_dir: Path) -> torch.nn.Module:
    path = shared_dir / "data" / "weights" / "dncnn_25.pth"
    if not path.is_file():
        pytest.skip(f"released DnCNN weights absent: {path}")
    state_dict = load_state_dict_file(path)
    assert not any("running_mean" in k for k in state_dict), "the release has its batch norm folded"
    return from_official("dncnn", RELEASED_25, state_dict)


@pytest.mark.slow  # 12 s on 2 cores: full-size images through the 17-layer network
def test_released_sigma25_model_denoises_bsd68(released_25: torch.nn.Module, shared_dir: Path) -> None:
    """First 4 BSD68 images (sorted): ~20.5 dB noisy, 29.29 dB restored (all 68: 29.23 dB, experiments/dncnn_bsd68)."""
    folder = shared_dir / "data" / "test" / "denoise" / "BSD68_gray"
    paths = sorted(folder.glob("*.png"))[:4]
    if len(paths) < 4:
        pytest.skip(f"BSD68 gray absent: {folder}")
    restored, degraded = [], []
    for path in paths:
        clean = np.asarray(Image.open(path).convert("L"))
        noisy = kair_noisy(clean)
        with torch.no_grad():
            out = released_25(torch.from_numpy(noisy)[None, None])[0, 0].numpy()
        restored.append(psnr_uint8(out, clean))
        degraded.append(psnr_uint8(noisy, clean))
    gains = [r - d for r, d in zip(restored, degraded)]
    assert min(gains) > 5.0, gains
    # measured 25.96, 30.29, 30.17, 30.74 dB (KAIR's noise is reproducible: numpy's legacy seeded stream)
    assert np.mean(restored) == pytest.approx(29.29, abs=0.02), restored
