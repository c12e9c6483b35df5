"""GRIDS on fixed inputs: generalised Gaussian fits, the divergence matrix, the fewest groups under a bound and
routing that finds each family's group; and the command on a tiny random network."""

from __future__ import annotations

import json

import numpy as np
import pytest

from src.analysis.grids import analyse, fewest_groups, group_command, kl_gennorm, partitions
from src.metrics.ggd import fit_ggd


def test_moment_fits_recover_the_shape_of_known_distributions() -> None:
    rng = np.random.default_rng(0)
    assert fit_ggd(rng.normal(3.0, 2.0, 200_000))[0] == pytest.approx(2.0, abs=0.05)
    assert fit_ggd(rng.laplace(0.0, 1.0, 200_000))[0] == pytest.approx(1.0, abs=0.05)
    shape, loc, scale = fit_ggd(rng.normal(3.0, 2.0, 200_000))
    assert loc == pytest.approx(3.0, abs=0.02) and scale == pytest.approx(2.0 * np.sqrt(2.0), rel=0.02)
    assert fit_ggd(np.ones(10)) == (2.0, 1.0, 1e-8)  # no spread: a finite, narrow fit


def test_kl_of_two_gaussians_equals_the_closed_form() -> None:
    # gennorm with shape 2 and scale s is a normal with sigma s / sqrt(2)
    s1, s2, m = 1.0, 2.0, 0.5
    closed = np.log(s2 / s1) + (s1**2 + 2 * m**2) / (2 * s2**2) - 0.5  # KL(N(0, s1^2/2) || N(m, s2^2/2))
    assert kl_gennorm((2.0, 0.0, s1), (2.0, m, s2)) == pytest.approx(closed, rel=1e-4)
    assert kl_gennorm((1.3, 0.2, 0.7), (1.3, 0.2, 0.7)) == pytest.approx(0.0, abs=1e-9)


def test_partitions_are_all_the_set_partitions_once() -> None:
    found = [sorted(sorted(g) for g in p) for p in partitions([0, 1, 2, 3])]
    assert len(found) == 15 == len({json.dumps(p) for p in found})  # Bell(4)


def test_the_fewest_groups_under_the_bound() -> None:
    matrix = np.array([[0, 1, 9, 9], [1, 0, 9, 9], [9, 9, 0, 2], [9, 9, 2, 0]], dtype=float)
    assert fewest_groups(matrix, 2.0) == [[0, 1], [2, 3]]
    assert fewest_groups(matrix, 1.0) == [[0, 1], [2], [3]]
    assert fewest_groups(matrix, 9.0) == [[0, 1, 2, 3]]
    assert group_command([["noise", "rain"], ["haze"]]) == "python -m src.train -m 'data.families=[noise,rain],[haze]'"


def test_two_clusters_of_families_are_grouped_and_routed() -> None:
    """Families a, b share one feature distribution, c and d another far away: two groups, routed well."""
    rng = np.random.default_rng(1)
    near = lambda shift: rng.normal(shift, 1.0, (90, 6))  # noqa: E731
    features = {"a": near(0.0), "b": near(0.1), "c": near(5.0), "d": near(5.1)}
    record = analyse(features, components=4, bound=None, held=0.3333, seed=0)
    assert record["groups"] == [["a", "b"], ["c", "d"]]
    matrix = np.array(record["matrix"])
    assert np.allclose(matrix, matrix.T) and np.all(np.diag(matrix) == 0)
    assert matrix[0, 1] < matrix[0, 2] and matrix[2, 3] < matrix[1, 3]
    assert record["routing"]["accuracy"] > 0.95 > record["routing"]["chance"]


def test_the_command_writes_the_matrix_groups_and_heat_map(tmp_path) -> None:
    from src.analysis.grids import run_grids
    from tests.conftest import compose

    cfg = compose("grids", ["model=restormer_tiny", "model.backbone.dim=8", "data.patch_size=32",
                            "grids.per_family=9", "grids.components=3"], tmp_path)
    record = run_grids(cfg)
    saved = json.loads((tmp_path / "grids.json").read_text())
    assert saved["families"] == ["noise", "rain", "haze", "blur", "lowlight"] and saved["same_clean_patches"]
    assert sorted(f for g in saved["groups"] for f in g) == sorted(saved["families"])
    assert (tmp_path / "grids.png").stat().st_size > 1000
    assert saved["routing"]["held_out_images"] == 15 and record["train_each_group"].startswith("python -m src.train")
