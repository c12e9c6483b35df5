"""The progress bar reads the logged metrics (a GPU sync) every N training steps, not every step."""

from __future__ import annotations

from types import SimpleNamespace

from lightning.pytorch.callbacks import RichProgressBar

from src.callbacks.progress import ThrottledRichProgressBar


def test_training_metrics_are_read_every_n_steps_and_validation_always(monkeypatch):
    reads = []

    def read(self, trainer, pl_module):
        reads.append(trainer.global_step)
        return {"train/loss": float(trainer.global_step)}

    monkeypatch.setattr(RichProgressBar, "get_metrics", read)
    bar = ThrottledRichProgressBar()
    trainer = SimpleNamespace(training=True, global_step=0, log_every_n_steps=3)
    shown = []
    for step in range(7):
        trainer.global_step = step
        shown.append(bar.get_metrics(trainer, None)["train/loss"])
    assert reads == [0, 3, 6]
    assert shown == [0, 0, 0, 3, 3, 3, 6]
    trainer.training = False  # validation: read at once
    assert bar.get_metrics(trainer, None) == {"train/loss": 6.0} and reads == [0, 3, 6, 6]
    assert ThrottledRichProgressBar(metrics_every_n_steps=1).metrics_every_n_steps == 1
