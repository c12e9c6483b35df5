"""A progress bar that does not stall the GPU every step.

Lightning's ``RichProgressBar`` reads the logged metrics after every training batch; turning the logged
tensors into numbers waits for the GPU each time, so the host cannot queue the next step while the current
one runs. This bar reads them only every ``metrics_every_n_steps`` optimiser steps (default: the Trainer's
``log_every_n_steps``, when the loggers read them anyway) and shows the last values in between; the bar's
position still moves every batch, and validation results are read when validation ends.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar


class ThrottledRichProgressBar(RichProgressBar):
    """``RichProgressBar`` whose training metrics refresh every ``metrics_every_n_steps`` steps."""

    def __init__(self, *args: Any, metrics_every_n_steps: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if metrics_every_n_steps is not None and metrics_every_n_steps < 1:
            raise ValueError(f"metrics_every_n_steps must be >= 1 or null, got {metrics_every_n_steps}")
        self.metrics_every_n_steps = metrics_every_n_steps
        self._shown: dict[str, Any] | None = None
        self._shown_step = 0

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        if not trainer.training:
            self._shown = None
            return super().get_metrics(trainer, pl_module)
        every = self.metrics_every_n_steps or max(trainer.log_every_n_steps, 1)
        if self._shown is None or trainer.global_step - self._shown_step >= every:
            self._shown = super().get_metrics(trainer, pl_module)
            self._shown_step = trainer.global_step
        return self._shown
