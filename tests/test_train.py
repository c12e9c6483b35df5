"""End-to-end runs of ``src.train`` and ``src.eval`` at tiny size on CPU."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from src.eval import evaluate
from src.results.record import read_json
from src.train import train
from src.utils.errors import ConfigError
from tests.conftest import TINY_RUN, compose
from tests.helpers import configs

ROOT = Path(__file__).resolve().parents[1]


def _run_module(module: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_fast_dev_run(tiny_cfg):
    cfg = tiny_cfg("debug=fdr", "logger=none")
    out = train(cfg)
    assert out["trainer"].fast_dev_run
    assert math.isfinite(out["metrics"]["train/loss"])


def test_train_writes_metrics_json_and_eval_reproduces_it(tiny_cfg, tmp_path):
    cfg = tiny_cfg("trainer.max_epochs=2")
    out = train(cfg)
    record = read_json(tmp_path / "metrics.json")
    assert record["metrics"] == "promptir"
    families = ["noise", "rain", "haze", "blur", "lowlight"]
    assert sorted(record["benchmarks"]) == sorted(f"synth_{f}" for f in families)
    for row in record["benchmarks"].values():
        assert set(row) >= {"psnr", "ssim", "input_psnr", "input_ssim"}
        assert all(math.isfinite(v) for v in row.values())
    ckpts = sorted((tmp_path / "checkpoints").glob("best*.ckpt"))
    assert ckpts and (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert record["checkpoint"] == str(ckpts[0]) == out["trainer"].checkpoint_callback.best_model_path

    eval_dir = tmp_path / "eval"
    from tests.conftest import compose

    eval_cfg = compose("eval", ["trainer=cpu", "logger=none", f"ckpt_path={ckpts[0]}"], eval_dir)
    again = evaluate(eval_cfg)
    for name, row in record["benchmarks"].items():
        for key, value in row.items():
            assert again["benchmarks"][name][key] == pytest.approx(value, abs=1e-6), (name, key)
    assert json.loads((eval_dir / "metrics.json").read_text())["metrics"] == "promptir"


def test_ema_run_tests_the_averaged_weights_that_eval_reads(tiny_cfg, tmp_path):
    train(tiny_cfg("callbacks=ema", "callbacks.progress_bar=null", "callbacks.model_summary=null",
                   "callbacks.ema.decay=0.5", "model/scheduler=none", "trainer.max_epochs=2"))
    record = read_json(tmp_path / "metrics.json")
    from tests.conftest import compose

    eval_cfg = compose("eval", ["trainer=cpu", "logger=none", f"ckpt_path={record['checkpoint']}"], tmp_path / "ev")
    again = evaluate(eval_cfg)
    for name, row in record["benchmarks"].items():
        assert again["benchmarks"][name]["psnr"] == pytest.approx(row["psnr"], abs=1e-6), name


def test_eval_data_override_is_respected(tiny_cfg, tmp_path):
    train(tiny_cfg())
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    from tests.conftest import compose

    eval_cfg = compose(
        "eval", ["trainer=cpu", "logger=none", f"ckpt_path={ckpt}", "data=synth3deg", "data.test_source.max_side=96"],
        tmp_path / "eval",
    )
    record = evaluate(eval_cfg, overridden={"data"})
    assert sorted(record["benchmarks"]) == ["synth_haze", "synth_noise", "synth_rain"]


@pytest.mark.parametrize("logger", ["csv", "tensorboard", "wandb", "none"])
def test_loggers(tiny_cfg, tmp_path, logger):
    train(tiny_cfg(f"logger={logger}", "test=false"))
    written = {p.name for p in tmp_path.rglob("*")}
    if logger == "csv":
        assert "metrics.csv" in written
    elif logger == "tensorboard":
        assert any(n.startswith("events.out.tfevents") for n in written)
    elif logger == "wandb":
        assert any(p.name.startswith("offline-run-") for p in (tmp_path / "wandb").iterdir())


@pytest.mark.slow  # two W&B runs: ~5 s
def test_a_resumed_run_continues_the_same_wandb_run(tiny_cfg, tmp_path):
    from src.run.from_checkpoint import stored_logger_ids
    from tests.conftest import TINY_RUN, compose

    train(tiny_cfg("logger=wandb", "test=false"))
    (first,) = [p.name for p in (tmp_path / "wandb").iterdir() if p.name.startswith("offline-run-")]
    (last,) = tmp_path.rglob("last.ckpt")
    run_id = stored_logger_ids(last)["wandb"]
    assert first.endswith(run_id)
    moved = tmp_path / "resumed"
    train(compose("train", [*TINY_RUN, "logger=wandb", "test=false", "trainer.max_epochs=2", f"ckpt_path={last}"],
                  moved))
    # the resumed run's logger wrote to the same run id, and its own checkpoints carry it on
    assert stored_logger_ids(moved / "checkpoints" / "last.ckpt") == {"wandb": run_id}


def test_bf16_mixed_on_cpu(tiny_cfg):
    out = train(tiny_cfg("trainer.precision=bf16-mixed", "test=false"))
    assert math.isfinite(out["metrics"]["train/loss"])


def test_ema_weights_are_used_for_validation_and_saved(tiny_cfg, tmp_path):
    out = train(tiny_cfg("callbacks=ema", "callbacks.progress_bar=null", "callbacks.model_summary=null",
                         "callbacks.ema.decay=0.5", "model/scheduler=none", "test=false"))
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert "current_model_state" in ckpt  # the averaged weights are the checkpoint's state_dict
    key = next(k for k in ckpt["state_dict"] if k.startswith("net."))
    assert not torch.equal(ckpt["state_dict"][key], ckpt["current_model_state"][key])
    assert out["trainer"].current_epoch == 1


def test_losses_and_scheduler_options_compose_and_train(tiny_cfg):
    out = train(tiny_cfg("model/loss=l1_fft", "model.loss.charbonnier=0.5", "model/optimizer=adam",
                         "model/scheduler=none", "test=false"))
    assert math.isfinite(out["metrics"]["train/loss"])
    assert "train/fft_l1" in out["metrics"] and "train/charbonnier" in out["metrics"]


@pytest.mark.slow  # a fresh Python process: ~6 s on 2 cores
def test_unknown_model_lists_available_names():
    proc = _run_module("src.train", "model=no_such_model")
    assert proc.returncode != 0
    assert "no_such_model" in proc.stderr and "restormer" in proc.stderr


@pytest.mark.slow  # a fresh Python process: ~5-10 s on 2 cores
def test_unknown_data_lists_available_names():
    proc = _run_module("src.train", "data=no_such_data")
    assert proc.returncode != 0
    assert "synth5deg" in proc.stderr and "5deg" in proc.stderr


@pytest.mark.slow  # a fresh Python process: ~7 s on 2 cores
def test_missing_benchmark_data_fails_fast_with_a_clear_message(tmp_path):
    start = time.monotonic()
    proc = _run_module("src.train", "model=restormer", "data=5deg", f"data.root={tmp_path / 'nowhere'}",
                       "logger=none", f"paths.log_dir={tmp_path / 'logs'}")
    elapsed = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert str(tmp_path / "nowhere") in proc.stderr
    assert "Train/Derain" in proc.stderr and "data.root" in proc.stderr and "data=synth5deg" in proc.stderr
    assert elapsed < 60


#: paper sizes too slow for the fast set (AirNet: 10 s, its encoder at full width on two views), and paper sizes
#: whose network trains in the fast set at a tiny size (``<family>_tiny``: the same code through the Trainer;
#: their paper-size training step runs in the contract test)
_MODELS = [name for name in configs("model") if name != "default"]


def _has_tiny_sibling(name: str) -> bool:
    """``mprnet_denoising`` -> ``mprnet_tiny``, ``moce_ir_s`` -> ``moce_ir_tiny``, ``mirnet_v2`` -> its tiny."""
    parts = name.split("_")
    siblings = ("_".join([*parts[:n], "tiny"]) for n in range(1, len(parts) + 1))
    return not name.endswith("_tiny") and any(s in _MODELS for s in siblings)


SLOW_TO_TRAIN = {"airnet"} | {name for name in _MODELS if _has_tiny_sibling(name)}


@pytest.mark.parametrize("model", [pytest.param(name, marks=pytest.mark.slow) if name in SLOW_TO_TRAIN else name
                                   for name in _MODELS])
def test_every_model_config_trains_in_the_suite(tiny_cfg, model, tmp_path):
    """fast_dev_run of every ``conf/model`` config at its own (paper) size on one family and small images:
    one optimiser step and one validation batch through the Trainer, as ``python -m src.train`` runs them."""
    cfg = tiny_cfg(f"model={model}", "debug=fdr", "data.families=[noise]", "data.batch_size=2",
                   "data.test_source.max_side=40", "model/scheduler=none")
    scale = OmegaConf.select(cfg, "model.backbone.scale", default=1)
    if scale > 1:  # super-resolution networks train on data=sr at their scale (the tiny run's data keys differ)
        cfg = compose("train", [f"model={model}", "debug=fdr", "data=sr", f"data.scale={scale}", "data.lr_patch=12",
                                "data.embedded_max_side=48", "data.batch_size=2", "model/scheduler=none",
                                *[o for o in TINY_RUN if not o.startswith(("model", "data"))]], tmp_path)
    if OmegaConf.select(cfg, "model.backbone.in_channels", default=3) == 4:  # packed RAW (LED): RAW data
        cfg = compose("train", [f"model={model}", "debug=fdr", "data=raw_synthetic", "metrics=raw",
                                "data.patch_size=16", "data.embedded_max_side=96", "data.synthetic_ratios=[100]",
                                "data.batch_size=2", "model/scheduler=none",
                                *[o for o in TINY_RUN if not o.startswith(("model", "data"))]], tmp_path)
    if OmegaConf.select(cfg, "model.backbone.in_channels", default=3) not in (3, 4):
        pytest.skip(f"model={model} takes {OmegaConf.select(cfg, 'model.backbone.in_channels')}-channel (grey) images; "
                    "the synthetic data is RGB")
    if cfg.model.training_free:
        with pytest.raises(ConfigError, match="training-free"):
            train(cfg)
        return
    out = train(cfg)
    assert out["trainer"].global_step == 1
    assert math.isfinite(out["metrics"]["train/loss"]) and math.isfinite(out["metrics"]["val/psnr"])


def test_zero_dce_trains_without_ground_truth_losses(tiny_cfg):
    out = train(tiny_cfg("model=zero_dce", "data.families=[lowlight]", "test=false", "model/scheduler=none"))
    assert math.isfinite(out["metrics"]["train/loss"])
    assert {"train/exposure", "train/illumination"} <= set(out["metrics"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.batch_size=-1", "data.batch_size=-1: expected a whole number >= 1"),
        ("data.batch_size=abc", "data.batch_size='abc': expected a whole number >= 1"),
        ("data.num_workers=-2", "data.num_workers=-2: expected a whole number >= 0"),
        ("model.optimizer.lr=-0.1", "model.optimizer.lr=-0.1: expected a number >= 0"),
        ("model.optimizer.lr=abc", "model.optimizer.lr='abc': expected a number >= 0"),
    ],
)
def test_bad_numbers_are_refused_when_built_naming_the_key(tiny_cfg, override, message):
    from src.utils.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        train(tiny_cfg(override))


@pytest.mark.parametrize("content, message", [
    (None, "no such file"), (b"", "is empty (0 bytes)"), (b"PK\x03\x04 cut", "is not a complete checkpoint")])
def test_a_bad_resume_checkpoint_fails_before_anything_is_built(tiny_cfg, tmp_path, monkeypatch, content, message):
    from src.utils.errors import UserError

    ckpt = tmp_path / "last.ckpt"
    if content is not None:
        ckpt.write_bytes(content)
    monkeypatch.setattr("src.run.assemble.build", lambda *a, **k: pytest.fail("built before checking ckpt_path"))
    with pytest.raises(UserError, match=rf"ckpt_path={re.escape(str(ckpt))}.*{re.escape(message)}"):
        train(tiny_cfg(f"ckpt_path={ckpt}"))


def test_a_diverging_run_stops_with_one_clear_line(tiny_cfg):
    from src.utils.errors import DivergedError

    with pytest.raises(DivergedError, match=r"training loss is (nan|inf) at step \d+"):
        train(tiny_cfg("model.optimizer.lr=1e30", "trainer.log_every_n_steps=1", "trainer.max_epochs=3",
                       "model/scheduler=none"))


def test_more_gpus_than_the_machine_has_are_refused_and_cpu_oversubscription_is_said(tiny_cfg, caplog):
    from src.run.assemble import check_trainer_devices
    from src.utils.errors import ConfigError

    gpus = torch.cuda.device_count()
    with pytest.raises(ConfigError, match=rf"trainer.devices={gpus + 1} asks for {gpus + 1} GPU\(s\)"):
        check_trainer_devices(tiny_cfg("trainer=gpu", f"trainer.devices={gpus + 1}"))
    cores = len(os.sched_getaffinity(0))
    check_trainer_devices(tiny_cfg(f"trainer.devices={cores + 2}"))
    assert f"trainer.devices={cores + 2} starts {cores + 2} CPU processes on {cores} core(s)" in caplog.text


def test_a_plain_run_returns_no_optimized_metric_and_a_sweep_names_a_missing_one(tiny_cfg):
    """A resumed, already finished run logs no val/psnr; only a sweep asks for it (hparams_search=optuna)."""
    from src.train import optimized_metric
    from src.utils.errors import ConfigError

    assert optimized_metric(tiny_cfg(), {}) is None
    sweep = tiny_cfg("hparams_search=optuna")
    assert optimized_metric(sweep, {"val/psnr": 30.0}) == 30.0
    with pytest.raises(ConfigError, match="optimized_metric='val/psnr' was not logged"):
        optimized_metric(sweep, {})


def test_fast_dev_run_runs_one_test_batch_and_writes_no_results(tiny_cfg, tmp_path):
    out = train(tiny_cfg("debug=fdr"))
    assert out["record"] is None and "test/psnr" in out["metrics"]
    assert not (tmp_path / "metrics.json").exists() and not (tmp_path / "checkpoints").exists()


def test_a_finished_run_resumed_from_its_moved_folder_tests_the_moved_best(tiny_cfg, tmp_path):
    """The run folder moved after training (off a cluster): resuming from its last.ckpt keeps the best score and
    tests the best checkpoint where it is now; the record names a file that exists."""
    import shutil

    from tests.conftest import compose

    first = train(tiny_cfg("trainer.max_epochs=2", "callbacks.best_checkpoint.monitor=epoch",
                           "callbacks.best_checkpoint.mode=min"))
    best = Path(first["record"]["checkpoint"])
    assert best.name == "best_epoch000.ckpt"
    moved = tmp_path.parent / f"{tmp_path.name}_moved"
    shutil.move(str(tmp_path / "checkpoints"), str(moved / "checkpoints"))
    again = compose("train", [*TINY_RUN, "trainer.max_epochs=2", "callbacks.best_checkpoint.monitor=epoch",
                              "callbacks.best_checkpoint.mode=min",
                              f"ckpt_path={moved / 'checkpoints' / 'last.ckpt'}"], tmp_path / "resumed")
    record = train(again)["record"]
    assert record["checkpoint"] == str(moved / "checkpoints" / "best_epoch000.ckpt")
    assert Path(record["checkpoint"]).is_file()
