"""The Hydra configs in ``conf/data/degradation`` build working operators of the family they are named after."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from src.data.degradations import Degradation, Sequence, rng_for

hydra_utils = pytest.importorskip("hydra.utils")
omegaconf = pytest.importorskip("omegaconf")

CONF = Path(__file__).resolve().parents[3] / "conf" / "data" / "degradation"
FILES = sorted(CONF.glob("*.yaml"))


def test_every_family_has_a_config() -> None:
    assert {f.stem for f in FILES} >= {"noise", "rain", "haze", "blur", "lowlight", "jpeg"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_config_builds_its_family(path: Path, photo: np.ndarray) -> None:
    op = hydra_utils.instantiate(omegaconf.OmegaConf.load(path))
    assert isinstance(op, Degradation)
    assert op.family == path.stem
    photo = photo[: photo.shape[0] // 12 * 12, : photo.shape[1] // 12 * 12]  # super-resolution's modcrop
    out = op(photo, rng_for(0))
    shrink = getattr(op, "scale", 1)  # sr: the low-resolution image
    assert out.shape == (photo.shape[0] // shrink, photo.shape[1] // shrink, photo.shape[2])
    assert out.dtype == np.float32
    assert all(type(v) in (int, float) for v in op.sample(rng_for(1)).values())


def test_sequence_builds_from_nested_configs(photo: np.ndarray) -> None:
    cfg = omegaconf.OmegaConf.create(
        {
            "_target_": "src.data.degradations.Sequence",
            "family": "haze+rain",
            "degradations": [
                omegaconf.OmegaConf.load(CONF / "haze.yaml"),
                omegaconf.OmegaConf.load(CONF / "rain.yaml"),
            ],
        }
    )
    op = hydra_utils.instantiate(cfg)
    assert isinstance(op, Sequence) and [d.family for d in op.degradations] == ["haze", "rain"]
    assert op(photo, rng_for(2)).shape == photo.shape
