"""A test-only Lightning callback that turns off the module's sparse-parameter handling (no anchor, no grad
clearing), so a run with ``find_unused_parameters=True`` trains as the official MoCE-IR code does."""

from __future__ import annotations

import lightning as L


class OfficialUnusedParameters(L.Callback):
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        pl_module._sparse = []  # no SparselyUsed modules: plain loss, DDP's own search marks the unused experts
