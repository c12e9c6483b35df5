"""``last.ckpt`` is always the newest state, on its own schedule, and checkpoint writes survive kills."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from src.callbacks.checkpoints import AtomicCheckpointIO, LatestCheckpoint
from src.run.assemble import build_callbacks
from src.train import train

ROOT = Path(__file__).resolve().parents[2]


def _step(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["global_step"]


class _LastCheckpointProbe(Callback):
    """Before each optimiser step after the first: which step does last.ckpt hold, and has validation run?"""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: list[tuple[int, int, bool]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        if trainer.global_step > 0:
            validated = trainer.fit_loop.epoch_loop.val_loop._has_run
            self.seen.append((trainer.global_step, _step(self.path), validated))


def test_last_ckpt_follows_every_n_train_steps_before_any_validation(tiny_cfg, tmp_path, monkeypatch):
    """Validation only at the end (as in the quickstart): last.ckpt is still written every step asked for."""
    cfg = tiny_cfg("trainer.max_epochs=2", "trainer.check_val_every_n_epoch=2", "test=false",
                   "callbacks.last_checkpoint.every_n_train_steps=1")
    probe = _LastCheckpointProbe(tmp_path / "checkpoints" / "last.ckpt")
    real_build = build_callbacks
    monkeypatch.setattr("src.run.assemble.build_callbacks", lambda node: [*real_build(node), probe])
    out = train(cfg)
    assert isinstance(out["trainer"].strategy.checkpoint_io, AtomicCheckpointIO)
    assert probe.seen == [(1, 1, False), (2, 2, False), (3, 3, False)]


def test_last_ckpt_is_the_final_state_when_validation_never_improves(tiny_cfg, tmp_path):
    """The best checkpoint stays at the first epoch (an 'epoch' monitor to minimise never improves); last.ckpt
    still ends at the final step, which every_n_train_steps=4 of 6 steps does not reach on its own."""
    cfg = tiny_cfg("trainer.max_epochs=3", "test=false", "callbacks.last_checkpoint.every_n_train_steps=4",
                   "callbacks.best_checkpoint.monitor=epoch", "callbacks.best_checkpoint.mode=min")
    out = train(cfg)
    folder = tmp_path / "checkpoints"
    assert out["trainer"].global_step == 6
    assert _step(folder / "last.ckpt") == 6
    (best,) = folder.glob("best*.ckpt")
    assert best.name == "best_epoch000.ckpt" and _step(best) == 2
    assert sorted(p.name for p in folder.iterdir()) == ["best_epoch000.ckpt", "last.ckpt"]


def test_every_n_train_steps_must_be_positive():
    with pytest.raises(ValueError, match="every_n_train_steps must be a positive number"):
        LatestCheckpoint(every_n_train_steps=0)


_WRITER = """
import sys, torch
from src.callbacks.checkpoints import AtomicCheckpointIO
io, path = AtomicCheckpointIO(), sys.argv[1]
print("ready", flush=True)
version = 0
while True:
    version += 1
    io.save_checkpoint({"version": version, "weights": torch.full((2_000_000,), float(version))}, path)
"""


@pytest.mark.slow
def test_kill_during_checkpoint_writes_always_leaves_a_loadable_checkpoint(tmp_path):
    """SIGKILL at random moments of back-to-back 8 MB writes, the system temporary folder elsewhere: the target
    is always a whole checkpoint, and only the killed write's temporary file is left, removed by the next write."""
    target = tmp_path / "checkpoints" / "last.ckpt"
    env = {**os.environ, "TMPDIR": "/dev/shm" if Path("/dev/shm").is_dir() else str(tmp_path)}
    versions, interrupted = [], 0
    for i in range(10):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3 + 0.037 * i)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        checkpoint = torch.load(target, map_location="cpu", weights_only=True)
        assert torch.equal(checkpoint["weights"], torch.full((2_000_000,), float(checkpoint["version"])))
        versions.append(checkpoint["version"])
        partials = len(list(target.parent.glob(".last.ckpt.*.partial")))
        assert partials <= 1
        interrupted += partials
    assert interrupted >= 5, "the kills should mostly land inside a write"
    AtomicCheckpointIO().save_checkpoint({"version": 0}, target)
    assert [p.name for p in target.parent.iterdir()] == ["last.ckpt"]
