"""The learning curves of a run: every validation's metrics kept in ``val_history.csv`` and drawn as PNG.

Independent of the logger (W&B offline files and TensorBoard events are not for reading back): after each
validation the ``val/...`` values are appended and both files are rewritten, so a killed run keeps its curves
up to its last validation and a resumed one continues them (rows of steps past the resumed step are dropped:
they belonged to the run that was cut). The picture has one panel per quantity (PSNR, SSIM, ...), one line per
benchmark; with W&B it is also logged there at the end of training.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import WandbLogger

from src.results.plots import HISTORY_NAME, curves_by_benchmark, plot_curves, read_history, write_history

log = logging.getLogger(__name__)
PICTURE_NAME = "learning_curves.png"


class MetricHistory(L.Callback):
    """Validation metrics per step as CSV and learning curves as PNG in ``dirpath`` (the run folder)."""

    def __init__(self, dirpath: str, quantities: tuple[str, ...] | list[str] = ("psnr", "ssim")) -> None:
        self.dirpath = Path(dirpath)
        self.quantities = tuple(quantities)
        self.rows: list[dict[str, float]] = []

    @property
    def csv_path(self) -> Path:
        return self.dirpath / HISTORY_NAME

    @property
    def picture_path(self) -> Path:
        return self.dirpath / PICTURE_NAME

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """A resumed run continues its history (from the checkpoint, else from its folder's CSV) up to the step
        it resumed from; called after the checkpoint is restored."""
        if not self.rows and self.csv_path.is_file():
            self.rows = read_history(self.csv_path)
        self.rows = [r for r in self.rows if r.get("step", 0) <= trainer.global_step]

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        values = {k: float(v) for k, v in trainer.callback_metrics.items()
                  if k.startswith("val/") and math.isfinite(float(v))}
        if not values:
            return
        self.rows = [r for r in self.rows if r.get("step") != trainer.global_step]
        self.rows.append({"step": trainer.global_step, "epoch": trainer.current_epoch, **values})
        write_history(self.rows, self.csv_path)
        self.draw()

    def draw(self) -> Path | None:
        """The picture of the history so far (``None`` before any benchmark value)."""
        panels = {q.upper(): curves_by_benchmark(self.rows, q) for q in self.quantities}
        panels = {name: lines for name, lines in panels.items() if lines}
        if not panels:
            return None
        return plot_curves(panels, self.picture_path, "validation value", title="validation per benchmark")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or not self.picture_path.is_file():
            return
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key="learning_curves", images=[str(self.picture_path)], step=trainer.global_step)

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = list(state_dict.get("rows", []))
