"""The degradation-awareness probe: known answers on synthetic clusters, and the command end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from src.analysis.probe import JSON_NAME, run_probe
from src.analysis.probe_metrics import probe
from tests.conftest import compose


def _clusters(separation: float, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = {"a": np.zeros(8), "b": np.full(8, separation), "c": np.r_[np.full(4, separation), np.zeros(4)]}
    features = np.concatenate([c + rng.standard_normal((30, 8)) for c in centres.values()])
    return features, [name for name in centres for _ in range(30)]


def test_separable_clusters_are_told_apart_and_noise_is_not() -> None:
    result = probe(*_clusters(separation=20.0), k=5, seeds=5)
    assert min(result.knn) == 1.0 and min(result.linear) == 1.0
    assert np.allclose(np.diag(result.confusion), 1.0)
    chance = probe(*_clusters(separation=0.0), k=5, seeds=5)
    assert np.mean(chance.knn) < 0.6 and len(chance.knn) == 5  # three families: chance is 1/3
    with pytest.raises(ValueError, match="two families"):
        probe(np.zeros((6, 2)), ["a"] * 6)


def test_the_command_writes_a_record_pictures_and_a_table(tmp_path, capsys) -> None:
    cfg = compose("probe", ["model=restormer_tiny", "model.backbone.dim=8", "data.patch_size=32",
                            "probe.per_family=9", "probe.seeds=2"], tmp_path)  # fmt: skip
    record = run_probe(cfg)
    written = json.loads((tmp_path / JSON_NAME).read_text())
    assert written["images_per_family"] == {f: 9 for f in ("noise", "rain", "haze", "blur", "lowlight")}
    assert set(written["levels"]) == {"dec3", "dec2", "dec1"} and written["weights"].startswith("random")
    for level in written["levels"].values():
        assert 0.0 <= level["knn"]["mean"] <= 1.0 and len(level["linear"]["per_seed"]) == 2
        with Image.open(tmp_path / level["picture"]) as image:
            assert image.size[0] > 500
    assert record["levels"].keys() == written["levels"].keys()
    assert "kNN accuracy" in capsys.readouterr().out


@pytest.mark.parametrize(("model", "embedding"), [("promptir_tiny", "prompt_selection"), ("moce_ir_tiny", "routing")])
def test_a_heads_degradation_embedding_is_probed_beside_the_features(tmp_path, model, embedding) -> None:
    """PromptIR's prompt-selection logits and MoCE-IR's routing logits are probed as ``head:<position>.<name>``,
    one per head position, with the head's own width (prompt components, experts)."""
    cfg = compose("probe", [f"model={model}", "data.patch_size=32", "probe.per_family=6", "probe.seeds=1",
                            "probe.pictures=false"], tmp_path)
    levels = run_probe(cfg)["levels"]
    heads = {name: level for name, level in levels.items() if name.startswith("head:")}
    assert heads and all(name.endswith(f".{embedding}") for name in heads)
    assert all(level["channels"] < 16 for level in heads.values())
