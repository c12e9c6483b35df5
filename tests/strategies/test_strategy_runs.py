"""Strategies in real training runs: Art's state resumes exactly; RAM's fine-tuning changes only the layers it
selected; DCPT logs its classifier's accuracy; a pre-training checkpoint feeds a plain fine-tuning run."""

from __future__ import annotations

import json

import pytest
import torch

from src.strategies.art import Art
from src.train import train
from tests.conftest import TINY_RUN, compose

RUN = ["model/scheduler=none", "test=false", "data.batch_size=5"]


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.slow  # three training runs
def test_art_resumes_with_the_same_weights_and_history(tiny_cfg, tmp_path) -> None:
    train(tiny_cfg("strategy=art", "trainer.max_epochs=2", *RUN))
    whole = _state(tmp_path / "checkpoints" / "last.ckpt")
    first = tmp_path / "first"
    train(compose("train", [*TINY_RUN, "strategy=art", "trainer.max_epochs=1", *RUN], first))
    resumed = tmp_path / "resumed"
    train(compose("train", [*TINY_RUN, "strategy=art", "trainer.max_epochs=2", *RUN,
                            f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}"], resumed))
    again = _state(resumed / "checkpoints" / "last.ckpt")
    history = whole["aioir_strategy_state"]
    assert set(history["average"]) == set(history["minimum"]) and len(history["average"]) >= 3
    assert again["aioir_strategy_state"] == history
    for key, value in whole["state_dict"].items():
        assert torch.equal(value, again["state_dict"][key]), key


def test_art_weights_favour_the_family_whose_loss_fell_least() -> None:
    art = Art(families=["noise", "rain"])
    art.update({"noise": 0.05, "rain": 0.08})  # both fell from 0.1: noise to half, rain by a fifth
    weights = art.weights({"noise": 0.05, "rain": 0.08})
    assert weights["rain"] > weights["noise"] and sum(weights.values()) == pytest.approx(1.0)
    assert art.weights({"noise": 0.05})["rain"] == pytest.approx(0.0)  # absent from the batch: no weight
    negative = Art(families=["noise"], track="objective")  # an objective with a PSNR term goes below zero
    negative.update({"noise": -3.0})
    assert negative.weights({"noise": -2.0}) == {"noise": 1.0}
    stale = Art(families=["snow"], stale_average=["snow"])
    stale.update({"snow": 0.02})
    assert "snow" not in stale.average and stale.minimum["snow"] == 0.02


@pytest.mark.slow  # pre-training, ranking and fine-tuning runs
def test_ram_chain_trains_only_the_selected_layers(tiny_cfg, tmp_path) -> None:
    """Pre-train with masks, rank with MAC, fine-tune the top share: every other tensor stays bit-identical."""
    from src.analysis.mac import run_mac

    train(tiny_cfg("strategy=ram_pretrain", *RUN))
    pretrained = tmp_path / "checkpoints" / "last.ckpt"
    rank_dir = tmp_path / "rank"
    run_mac(compose("mac", ["model=restormer_tiny", "model.backbone.dim=8", f"ckpt_path={pretrained}",
                            "data.patch_size=32", "mac.per_family=1", "mac.steps=3", "mac.pictures=false"], rank_dir))
    ranking = json.loads((rank_dir / "mac_ranking.json").read_text())
    again = compose("mac", ["model=restormer_tiny", "model.backbone.dim=8", f"ckpt_path={pretrained}",
                            "data.patch_size=32", "mac.per_family=1", "mac.steps=3", "mac.pictures=false"],
                    tmp_path / "rank2")
    assert [r["layer"] for r in run_mac(again)["ranked"]] == [r["layer"] for r in ranking["ranked"]]  # seeded
    tuned = tmp_path / "tuned"
    ranking_file = rank_dir / "mac_ranking.json"
    train(compose("train", [*TINY_RUN, "strategy=ram_finetune", f"model.strategy.ranking={ranking_file}",
                            "model.strategy.ratio=0.3", f"model.pretrained={pretrained}", "trainer.max_epochs=1",
                            *RUN], tuned))
    before, after = _state(pretrained)["state_dict"], _state(tuned / "checkpoints" / "last.ckpt")["state_dict"]
    selected = {r["layer"] for r in ranking["ranked"][: int(len(ranking["ranked"]) * 0.3)]}
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed, "fine-tuning changed nothing"
    assert all(k.rpartition(".")[0] in selected for k in changed), sorted(changed)[:5]
    assert "strategy.mask_token" in before and not any(k.startswith("strategy.") for k in after)


def test_dcpt_logs_accuracy_and_its_checkpoint_starts_a_plain_run(tiny_cfg, tmp_path) -> None:
    small = ["model=promptir_tiny", "model.backbone.dim=8", "model.backbone.latent_out_channels=32"]
    out = train(tiny_cfg(*small, "strategy=dcpt_pretrain", *RUN))
    assert 0.0 <= float(out["metrics"]["train/dcpt/accuracy"]) <= 1.0
    pretrained = tmp_path / "checkpoints" / "last.ckpt"
    assert any(k.startswith("strategy.classifier.") for k in _state(pretrained)["state_dict"])
    fine = train(compose("train", [*small, *TINY_RUN[2:], f"model.pretrained={pretrained}", *RUN], tmp_path / "fine"))
    assert torch.isfinite(torch.as_tensor(fine["metrics"]["train/loss"]))


@pytest.mark.slow
def test_ram_plus_resumes_with_the_same_weights(tiny_cfg, tmp_path) -> None:
    """The mask generator's draws are seeded by step and rank, its weights are in the checkpoint: a run cut after
    one epoch and resumed ends where the uncut run ends."""
    small = ["strategy=ram_plus_pretrain", "model.strategy.embed_dim=16", "model.strategy.num_heads=2",
             "model.strategy.generator_lr=0.01", "trainer.deterministic=true"]
    train(tiny_cfg(*small, "trainer.max_epochs=2", *RUN))
    whole = _state(tmp_path / "checkpoints" / "last.ckpt")["state_dict"]
    first = tmp_path / "first"
    train(compose("train", [*TINY_RUN, *small, "trainer.max_epochs=1", *RUN], first))
    resumed = tmp_path / "resumed"
    train(compose("train", [*TINY_RUN, *small, "trainer.max_epochs=2", *RUN,
                            f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}"], resumed))
    again = _state(resumed / "checkpoints" / "last.ckpt")["state_dict"]
    assert any(k.startswith("strategy.mask_generator.") for k in whole)
    for key, value in whole.items():
        assert torch.equal(value, again[key]), key
