"""``data.pin_memory`` / ``data.persistent_workers``: ``auto`` pins on CUDA and keeps workers when there are any."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from src.data.datasets.sources import EmbeddedImages
from src.data.degradations import GaussianNoise
from src.data.synthetic_mix import synthetic_datamodule


def _dm(**kw):
    return synthetic_datamodule(
        {"noise": GaussianNoise()}, patch_size=32, batch_size=2, samples_per_epoch=4,
        test_source=EmbeddedImages("test", max_side=64), **kw,
    )


def _on(device: str) -> SimpleNamespace:
    """The attributes of a Trainer the datamodule reads (its device and training progress)."""
    return SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device(device)), current_epoch=0,
                           fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(batch_progress=SimpleNamespace(
                               current=SimpleNamespace(processed=0)))))


def _loaders(dm) -> list:
    return [dm.train_dataloader(), *dm.val_dataloader(), *dm.test_dataloader()]


def test_auto_pins_only_when_the_trainer_runs_on_cuda():
    dm = _dm(num_workers=0)
    assert dm.pin_memory is False  # no Trainer attached
    dm.trainer = _on("cpu")
    assert not any(loader.pin_memory for loader in _loaders(dm))
    dm.trainer = _on("cuda")
    assert all(loader.pin_memory for loader in _loaders(dm))


def test_auto_keeps_workers_alive_whenever_there_are_workers():
    assert _dm(num_workers=0).persistent_workers is False
    dm = _dm(num_workers=2)
    assert dm.persistent_workers is True
    assert all(loader.persistent_workers for loader in _loaders(dm))  # evaluation loaders too


def test_explicit_flags_win():
    dm = _dm(num_workers=2, pin_memory=False, persistent_workers=False)
    dm.trainer = _on("cuda")
    assert dm.pin_memory is False and dm.persistent_workers is False
    assert _dm(pin_memory=True).pin_memory is True


@pytest.mark.parametrize("key", ["pin_memory", "persistent_workers"])
def test_a_bad_flag_names_the_key(key):
    with pytest.raises(ValueError, match=f"data.{key}"):
        _dm(**{key: "sometimes"})
