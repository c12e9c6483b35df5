"""NIQE from the published algorithm: equal to BasicSR's port (the papers' numbers) on stored values, the pristine
model read and checked from inside the mmagic wheel, and lower for a photograph than for its degraded copies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from skimage import data

from src.metrics import niqe as niqe_module
from src.metrics.niqe import aggd, gaussian_window, niqe, pristine_model
from src.utils.errors import UserError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "niqe_basicsr.json"


@pytest.fixture(scope="module")
def model():
    try:
        return pristine_model()
    except UserError as err:
        pytest.skip(f"NIQE's pristine model is absent (make install downloads it): {err}")


def test_equal_to_basicsr_on_the_stored_values(model) -> None:
    for key, expected in json.loads(VECTORS.read_text()).items():
        name, conversion, crop = key.split("|")
        image = getattr(data, name)().astype(np.float64) / 255.0
        ours = niqe(image, "gray" if conversion == "gray_cv" else "y", int(crop), model)
        assert ours == pytest.approx(expected, rel=1.5e-3 if conversion == "gray_cv" else 3e-4), key


def test_the_model_is_the_published_one(model) -> None:
    mu, cov = model
    assert mu.shape == (36,) and cov.shape == (36, 36) and np.allclose(cov, cov.T)
    assert mu[:3] == pytest.approx([2.601313680154, 0.905702721534, 0.812047784200], abs=1e-12)


def test_a_photograph_scores_better_than_its_degraded_copies(model) -> None:
    rng = np.random.default_rng(0)
    clean = data.astronaut().astype(np.float64) / 255.0
    noisy = np.clip(clean + rng.normal(0, 25 / 255, clean.shape), 0, 1)
    from scipy.ndimage import gaussian_filter

    blurred = gaussian_filter(clean, sigma=(3, 3, 0))
    assert niqe(clean, model=model) < niqe(noisy, model=model)
    assert niqe(clean, model=model) < niqe(blurred, model=model)


def test_a_missing_or_wrong_model_file_is_named(tmp_path) -> None:
    with pytest.raises(UserError, match="pristine model"):
        niqe_module.pristine_model.__wrapped__(str(tmp_path / "nowhere.npz"))
    bad = tmp_path / "bad.npz"
    np.savez(bad, mu_pris_param=np.zeros((1, 36)), cov_pris_param=np.eye(36))
    with pytest.raises(UserError, match="SHA-256"):
        niqe_module.pristine_model.__wrapped__(str(bad))


def test_the_estimators_on_known_inputs() -> None:
    window = gaussian_window()
    assert window.sum() == pytest.approx(1.0) and window[3, 3] == pytest.approx(0.1173964, abs=1e-7)
    shape, left, right = aggd(np.random.default_rng(0).normal(0, 1, 200_000))
    assert shape == pytest.approx(2.0, abs=0.05) and left == pytest.approx(right, rel=0.02)
    with pytest.raises(ValueError, match="two 96"):
        niqe(np.zeros((100, 100)), model=(np.zeros(36), np.eye(36)))


def test_metrics_niqe_adds_no_reference_columns_to_the_test_table(model, tiny_cfg, tmp_path) -> None:
    """``metrics.niqe=true``: restored and input NIQE per benchmark in metrics.json, results.md and the averages;
    images too small for two blocks are left out of the mean rather than making it NaN."""
    from src.eval import evaluate

    evaluate(tiny_cfg("untrained=true", "metrics.niqe=true", "data.test_source.max_side=256", name="eval"))
    record = json.loads((tmp_path / "metrics.json").read_text())
    for row in [*record["benchmarks"].values(), record["average"]]:
        assert 0 < row["niqe"] < 100 and 0 < row["input_niqe"] < 100
    assert "restored NIQE" in (tmp_path / "results.md").read_text()
