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
from lightning.pytorch.utilities import rank_zero_warn
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


class BestCheckpoint(ModelCheckpoint):
    """Lightning's top-k checkpoint on a monitored metric, which keeps its record when a run is resumed.

    A resumed run writes into a new run folder, and the folder resumed from may have moved since (off a cluster,
    to another disk). Lightning then keeps only the old absolute ``best_model_path`` and forgets the best score,
    so the resumed run tested a file that no longer existed, named another run's folder in its records, and took
    its first validation for the best whatever its score. Here the score is kept, and every recorded checkpoint
    is looked up where it is now: at its recorded path, else beside the checkpoint resumed from; one found in
    neither place is dropped from the record, with a warning.
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_model_score = state_dict.get("best_model_score")
        self.best_model_path = state_dict.get("best_model_path", "")
        self.best_k_models = dict(state_dict.get("best_k_models") or {})
        self.kth_best_model_path = state_dict.get("kth_best_model_path", "")
        self.kth_value = state_dict.get("kth_value", self.kth_value)
        self.last_model_path = state_dict.get("last_model_path", "")

    @staticmethod
    def _found(path: str, resumed_from: Path | None) -> str:
        if not path or Path(path).is_file():
            return path
        beside = resumed_from.parent / Path(path).name if resumed_from is not None else None
        return str(beside) if beside is not None and beside.is_file() else ""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """After the callback states are restored, before any step (a finished run resumed takes none)."""
        super().on_fit_start(trainer, pl_module)
        resumed_from = Path(trainer.ckpt_path) if trainer.ckpt_path else None
        recorded = self.best_model_path
        self.best_k_models = {new: score for old, score in self.best_k_models.items()
                              if (new := self._found(old, resumed_from))}
        self.kth_best_model_path = self._found(self.kth_best_model_path, resumed_from)
        self.best_model_path = self._found(self.best_model_path, resumed_from)
        if recorded and not self.best_model_path:
            rank_zero_warn(f"the best checkpoint recorded in {trainer.ckpt_path} ({recorded}) is neither there nor "
                           "beside the checkpoint resumed from; the best of this run will be tested instead")
            self.best_model_score = None
            self.best_k_models = {}


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
