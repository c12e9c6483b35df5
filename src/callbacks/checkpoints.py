"""Checkpoints that survive a kill: atomic writes beside the target, and ``last.ckpt`` on its own schedule.

Lightning's own writer stages the file in the system's temporary folder and moves it into place; across two
filesystems that move is a copy, and a kill during it left a 0-byte ``last.ckpt`` with the good copy gone.
:class:`AtomicCheckpointIO` writes through :func:`src.utils.atomic.write_atomic` instead.

Lightning's ``ModelCheckpoint(save_last=True)`` writes ``last.ckpt`` only when it also considers a top-k
save: with ``every_n_train_steps`` and no validation yet nothing was written until training ended, and when
validation stopped improving ``last.ckpt`` stayed at the best step. :class:`LatestCheckpoint` is a separate
callback whose only job is the newest state, so the best-on-``val/psnr`` callback can do its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from typing_extensions import override

from src.utils.atomic import write_atomic


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a temporary file in the checkpoint's folder, then one rename (local paths)."""

    @override
    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if "://" in str(path) and not str(path).startswith("file://"):
            super().save_checkpoint(checkpoint, path, storage_options)  # remote storage: fsspec's own transaction
            return
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options (got {storage_options!r})")
        write_atomic(Path(str(path).removeprefix("file://")), lambda file: torch.save(checkpoint, file))


class LatestCheckpoint(ModelCheckpoint):
    """``last.ckpt``: the newest training state, whatever validation does.

    Written every ``every_n_train_steps`` optimiser steps (when set), at the end of every training epoch and
    when training ends; each write replaces the previous one atomically. Resume with ``ckpt_path=<it>``.
    """

    def __init__(self, dirpath: str | Path | None = None, filename: str = "last",
                 every_n_train_steps: int | None = None) -> None:
        if every_n_train_steps is not None and every_n_train_steps < 1:
            raise ValueError(f"every_n_train_steps must be a positive number of steps or null, got "
                             f"{every_n_train_steps}")
        super().__init__(
            dirpath=dirpath, filename=filename, monitor=None, save_top_k=1, save_last=False,
            every_n_train_steps=every_n_train_steps, save_on_train_epoch_end=True, enable_version_counter=False,
            auto_insert_metric_name=False,
        )

    def _save_now(self, trainer: L.Trainer) -> None:
        if not self._should_skip_saving_checkpoint(trainer):  # fast_dev_run, not fitting, or saved at this step
            self._save_none_monitor_checkpoint(trainer, self._monitor_candidates(trainer))

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save_now(trainer)

    @override
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save_now(trainer)
