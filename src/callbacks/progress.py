"""Progress people can follow: a bar that does not stall the GPU, and plain lines for logs and pipes.

Lightning's ``RichProgressBar`` reads the logged metrics after every training batch; turning the logged
tensors into numbers waits for the GPU each time, so the host cannot queue the next step while the current
one runs. :class:`ThrottledRichProgressBar` reads them only every ``metrics_every_n_steps`` optimiser steps
(default: the Trainer's ``log_every_n_steps``, when the loggers read them anyway) and shows the last values in
between; its position still moves every batch, and its test bar counts the batches of every benchmark, not
those of the current one only.

A bar draws nothing when the output is not a terminal (a cluster job's log, ``> run.log``), so a long run was
silent there. :class:`ProgressLog` writes a plain line every ``every_seconds`` through logging (the run's log
file and the console): how far the whole run is and how long the rest of it should take.
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, RichProgressBar

log = logging.getLogger(__name__)


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

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_test_start(trainer, pl_module)
        self.test_progress_bar_id = None
        self._test_done = 0

    def on_test_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """One bar over every benchmark's batches (Lightning's starts a new bar for each test loader)."""
        if self.is_disabled or self.test_progress_bar_id is not None:
            return
        self.test_progress_bar_id = self._add_task(sum(trainer.num_test_batches), self.test_description)
        self.refresh()

    def on_test_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self.is_disabled or self.test_progress_bar_id is None:
            return
        self._test_done += 1
        self._update(self.test_progress_bar_id, self._test_done)
        self.refresh()


def _duration(seconds: float) -> str:
    return str(datetime.timedelta(seconds=round(seconds)))


class ProgressLog(Callback):
    """A plain progress line every ``every_seconds``: training over the whole run, testing over every benchmark.

    ``train: step 1200 of 5000 (24%), 0:12:31 so far, about 0:39:40 to go``; the rate is the run's own since
    its first step (validation included), so the estimate covers the whole run, not one epoch; the first step
    is left out of the rate because it carries one-time costs (compiling the network took 75 s of a 100-step
    run on an H200, whose other steps took 0.04 s each, and an estimate from it said two hours).
    """

    def __init__(self, every_seconds: float = 60.0) -> None:
        if every_seconds <= 0:
            raise ValueError(f"callbacks.progress_log.every_seconds must be > 0, got {every_seconds}")
        self.every_seconds = float(every_seconds)
        self._start = self._last = 0.0
        self._done = 0
        self._first: tuple[float, int] | None = None  # (time, count) when the first unit ended

    def _begin(self) -> None:
        self._start = self._last = time.monotonic()
        self._done = 0
        self._first = None

    def _report(self, stage: str, unit: str, done: int, total: int | float, force: bool = False) -> None:
        now = time.monotonic()
        if self._first is None and done:
            self._first = (now, done)
        if not force and now - self._last < self.every_seconds:
            return
        self._last = now
        elapsed = now - self._start
        first_time, first_done = self._first or (now, done)
        if total and total != float("inf") and done and done == first_done and done < total:
            log.info("%s: %s %d of %d (%.0f%%), %s so far (the first %s carries one-time costs such as "
                     "compiling; an estimate follows)", stage, unit, done, total, 100.0 * done / total,
                     _duration(elapsed), unit)
        elif total and total != float("inf") and done:
            rate = (now - first_time) / max(done - first_done, 1)
            left = rate * (total - done)
            log.info("%s: %s %d of %d (%.0f%%), %s so far, about %s to go", stage, unit, done, total,
                     100.0 * done / total, _duration(elapsed), _duration(left))
        else:
            log.info("%s: %s %d, %s so far", stage, unit, done, _duration(elapsed))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._begin()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if trainer.is_global_zero:
            self._report("train", "step", trainer.global_step, trainer.estimated_stepping_batches)

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._begin()

    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        self._done += 1
        if trainer.is_global_zero:
            self._report("test", "batch", self._done, sum(trainer.num_test_batches))

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self._report("test", "batch", self._done, sum(trainer.num_test_batches), force=True)
