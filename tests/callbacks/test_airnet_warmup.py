"""AirNet's encoder warm-up callback: phase switching, the official learning rate, and tiny training runs."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from src.callbacks.airnet_warmup import AirNetWarmup, official_lr
from src.models.backbones.airnet import AirNet

#: a small AirNet for training runs in seconds (same code path as the 8.93M network)
SMALL_AIRNET = [
    "model=airnet",
    "model.backbone.channels=8",
    "model.backbone.encoder_widths=[8,16]",
    "model.backbone.embed_dim=16",
    "model.backbone.queue_size=16",
    "model.backbone.groups=1",
    "model.backbone.blocks=1",
]
WARMUP_RUN = ["callbacks=airnet", "callbacks.progress_bar=null", "callbacks.model_summary=null", "test=false"]


def test_official_learning_rate() -> None:
    """The official loop sets the next epoch's rate at the end of each epoch (100 warm-up epochs)."""
    rates = {e: official_lr(e, 100) for e in (0, 1, 60, 61, 100, 101, 102, 225, 226, 350, 351)}
    assert rates == pytest.approx({0: 1e-3, 1: 1e-3, 60: 1e-3, 61: 1e-4, 100: 1e-4, 101: 1e-4, 102: 1e-4,
                                   225: 1e-4, 226: 5e-5, 350: 5e-5, 351: 2.5e-5})


def _fake_trainer(epoch: int, optimizer: torch.optim.Optimizer, schedulers: list | None = None) -> SimpleNamespace:
    return SimpleNamespace(current_epoch=epoch, optimizers=[optimizer], lr_scheduler_configs=schedulers or [])


def test_callback_switches_the_phase_and_sets_the_rate() -> None:
    net = AirNet(channels=4, encoder_widths=(4, 4), embed_dim=4, queue_size=4, groups=1, blocks=1)
    module = SimpleNamespace(net=net)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    callback = AirNetWarmup(encoder_epochs=2, official_lr=True, encoder_step=1)
    callback.on_train_start(_fake_trainer(0, optimizer), module)
    seen = []
    for epoch in range(4):
        callback.on_train_epoch_start(_fake_trainer(epoch, optimizer), module)
        seen.append((net.encoder_only, optimizer.param_groups[0]["lr"]))
    assert seen == [(True, 1e-3), (True, 1e-3), (False, pytest.approx(1e-4)), (False, pytest.approx(1e-5))]
    callback.on_train_end(_fake_trainer(4, optimizer), module)
    assert not net.encoder_only


def test_callback_refuses_other_backbones_and_a_second_schedule() -> None:
    callback = AirNetWarmup(encoder_epochs=1, official_lr=True)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(TypeError, match="needs an AirNet backbone"):
        callback.on_train_epoch_start(_fake_trainer(0, optimizer), SimpleNamespace(net=torch.nn.Conv2d(3, 3, 1)))
    net = AirNet(channels=4, encoder_widths=(4, 4), embed_dim=4, queue_size=4, groups=1, blocks=1)
    with pytest.raises(ValueError, match="model/scheduler=none"):
        callback.on_train_start(_fake_trainer(0, optimizer, schedulers=["cosine"]), SimpleNamespace(net=net))
    with pytest.raises(ValueError, match="encoder_epochs"):
        AirNetWarmup(encoder_epochs=-1)


def _updated(trainer) -> set[str]:
    """Names of the parameters the optimiser has state for (Adam creates it on the first gradient)."""
    module = trainer.lightning_module
    optimizer = trainer.optimizers[0]
    return {name for name, p in module.named_parameters() if p in optimizer.state}


def test_warmup_run_trains_only_the_query_encoder(tiny_cfg) -> None:
    from src.train import train

    out = train(tiny_cfg(*SMALL_AIRNET, *WARMUP_RUN, "callbacks.airnet_warmup.encoder_epochs=1"))
    assert math.isfinite(out["metrics"]["train/loss"]) and "train/aux/contrastive" in out["metrics"]
    updated = _updated(out["trainer"])
    assert updated and all(name.startswith("net.encoder.query.") for name in updated)
    assert out["trainer"].optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-3)


def test_joint_phase_trains_every_parameter_but_the_key_encoder(tiny_cfg) -> None:
    from src.train import train

    out = train(tiny_cfg(*SMALL_AIRNET, *WARMUP_RUN, "callbacks.airnet_warmup.encoder_epochs=1",
                         "trainer.max_epochs=2"))
    module = out["trainer"].lightning_module
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert _updated(out["trainer"]) == trainable
    assert trainable == {n for n, _ in module.named_parameters() if not n.startswith("net.encoder.key.")}
    assert not module.net.encoder_only


@pytest.mark.slow
def test_full_airnet_trains_in_the_suite(tiny_cfg) -> None:
    """The 8.93M network itself (about a minute on two CPU cores)."""
    from src.train import train

    out = train(tiny_cfg("model=airnet", "test=false", "data.samples_per_epoch=4", "data.test_source.max_side=48"))
    assert math.isfinite(out["metrics"]["train/loss"])
    assert "train/aux/contrastive" in out["metrics"]
