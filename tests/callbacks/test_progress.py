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


def test_plain_lines_cover_the_whole_run_and_every_benchmark(tiny_cfg, caplog):
    """In a log file or a pipe the bar shows nothing: the lines say how far the whole run is, and the test
    counts the batches of all five benchmarks, not the last one's."""
    import logging

    from src.train import train

    with caplog.at_level(logging.INFO, logger="src.callbacks.progress"):
        out = train(tiny_cfg("trainer.max_epochs=2", "callbacks.progress_log.every_seconds=1e-9"))
    lines = [r.getMessage() for r in caplog.records if r.name == "src.callbacks.progress"]
    total = out["trainer"].estimated_stepping_batches
    assert f"train: step 1 of {total} (25%)" in lines[0] and "an estimate follows" in lines[0]
    assert f"train: step 2 of {total} (50%)" in lines[1] and "to go" in lines[1]
    assert any(line.startswith(f"train: step {total} of {total} (100%)") for line in lines)
    assert lines[-1].startswith("test: batch 10 of 10 (100%)")  # 5 benchmarks x 2 images


def test_the_test_bar_counts_every_benchmark(tiny_cfg):
    from src.callbacks.progress import ThrottledRichProgressBar
    from src.train import train

    bar = ThrottledRichProgressBar()
    cfg = tiny_cfg("+callbacks.bar._target_=src.callbacks.progress.ThrottledRichProgressBar")
    out = train(cfg)
    bars = [c for c in out["trainer"].callbacks if isinstance(c, ThrottledRichProgressBar)]
    assert bars and bars[0]._test_done == sum(out["trainer"].num_test_batches) == 10
    assert bar.is_enabled


def test_the_estimate_leaves_out_the_first_step(monkeypatch, caplog):
    """A first step that compiles for 100 s must not make 99 steps of 1 s look like 2.75 hours."""
    import logging

    from src.callbacks import progress

    clock = iter([0.0, 100.0, 101.0, 102.0])  # begin, after step 1, 2, 3
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    callback = progress.ProgressLog(every_seconds=1e-9)
    trainer = SimpleNamespace(is_global_zero=True, global_step=0, estimated_stepping_batches=100)
    callback.on_train_start(trainer, None)
    with caplog.at_level(logging.INFO, logger="src.callbacks.progress"):
        for step in (1, 2, 3):
            trainer.global_step = step
            callback.on_train_batch_end(trainer, None)
    lines = [r.getMessage() for r in caplog.records]
    assert "an estimate follows" in lines[0]
    assert lines[2] == "train: step 3 of 100 (3%), 0:01:42 so far, about 0:01:37 to go"  # 97 steps of 1 s
