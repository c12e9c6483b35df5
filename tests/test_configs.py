"""Every config option composes, and every option that can be built on this machine instantiates.

Options are discovered by globbing ``conf/<group>/*.yaml``, so a new model, head or data config is
tested without editing this file (models: ``tests/models/test_contract.py`` and ``tests/test_train.py``).
"""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
import torch

from src.data.layouts import DataNotFoundError
from src.run.assemble import (
    ConfigError,
    build,
    build_callbacks,
    build_loggers,
    resolve_trainer_precision,
)
from tests.conftest import CONF_DIR, compose
from tests.helpers import configs

#: data settings that read published datasets from data.root (absent here)
REAL_DATA = {"3deg", "5deg", "cdd11", "derain", "dehaze", "denoise", "deblur", "lowlight", "folder", "kair_denoise",
             "paired", "unpaired", "allweather", "sid", "eld", "uieb", "daclip"}


@pytest.mark.parametrize("name", configs("data"))
def test_every_data_setting_builds_or_explains_missing_data(name, tmp_path):
    cfg = compose("train", [f"data={name}", f"paths.data_dir={tmp_path / 'none'}", "data.num_workers=0"], tmp_path)
    if name in REAL_DATA:
        with pytest.raises((DataNotFoundError, FileNotFoundError, ValueError, ConfigError)) as err:
            build(cfg.data, "data")
        assert str(tmp_path / "none") in str(err.value) or "data" in str(err.value)
    else:
        dm = hydra.utils.instantiate(cfg.data)
        assert dm.families and dm.val_benchmarks


@pytest.mark.parametrize("name", configs("metrics"))
def test_every_metric_protocol_builds(name, tmp_path):
    protocol = hydra.utils.instantiate(compose("train", [f"metrics={name}"], tmp_path).metrics)
    x = torch.rand(1, 3, 24, 24)
    assert protocol.per_image(x, x)["ssim"].item() == pytest.approx(1.0)


@pytest.mark.parametrize("name", configs("logger"))
def test_every_logger_builds(name, tmp_path):
    loggers = build_loggers(compose("train", [f"logger={name}"], tmp_path).get("logger"))
    assert (name == "none") == (len(loggers) == 0)


@pytest.mark.parametrize("name", configs("callbacks"))
def test_every_callback_set_builds(name, tmp_path):
    callbacks = build_callbacks(compose("train", [f"callbacks={name}"], tmp_path).get("callbacks"))
    assert (name == "none") == (len(callbacks) == 0)


@pytest.mark.parametrize("name", configs("trainer"))
def test_every_trainer_composes_and_cpu_ones_build(name, tmp_path):
    cfg = compose("train", [f"trainer={name}"], tmp_path)
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        pytest.skip(f"trainer={name} needs a GPU")
    resolve_trainer_precision(cfg)  # as src.train does: Lightning refuses precision "auto"
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False)
    assert trainer.max_epochs == cfg.trainer.max_epochs


@pytest.mark.parametrize(
    "group", ["experiment", "debug", "hparams_search", "model/head", "model/loss", "model/optimizer",
              "model/scheduler", "model/backbone", "paths", "hydra/launcher", "speed"]
)
def test_every_option_of_the_other_groups_composes(group, tmp_path):
    names = configs(group)
    assert names, f"conf/{group} is empty"
    for name in names:
        cfg = compose("train", [f"{group}={name}"], tmp_path)
        assert cfg.model and cfg.data


def test_slurm_launcher_is_the_submitit_plugin(tmp_path):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose("train", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    assert "submitit" in cfg.hydra.launcher._target_.lower()
    assert Path(CONF_DIR / "hydra" / "launcher" / "slurm.yaml").is_file()


def test_callback_settings_without_their_config_name_the_key(tmp_path):
    """experiment=quickstart tunes callbacks.ema; replacing the group leaves a target-less dict behind."""
    cfg = compose("train", ["experiment=quickstart", "callbacks=panels"], tmp_path)
    with pytest.raises(ConfigError, match=r"callbacks\.ema.*callbacks=\[ema,"):
        build_callbacks(cfg.callbacks)
    cfg = compose("train", ["experiment=quickstart", "callbacks=[ema,panels]"], tmp_path)
    names = {type(c).__name__ for c in build_callbacks(cfg.callbacks)}
    assert {"EMAWeightAveraging", "ImagePanels"} <= names


def test_logger_settings_without_their_config_name_the_key(tmp_path):
    """The same guard on the logger group: wandb settings left behind by logger=csv."""
    cfg = compose("train", ["logger=csv", "+logger.wandb.offline=true"], tmp_path)
    with pytest.raises(ConfigError, match=r"logger\.wandb.*logger=\[wandb,"):
        build_loggers(cfg.logger)


def test_debug_runs_are_quick_and_quiet(tmp_path):
    """debug=*: no anomaly detection unless asked (it multiplies backward time), DEBUG for src.* only."""
    cfg = compose("train", ["debug=limit"], tmp_path)
    assert cfg.trainer.detect_anomaly is False
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        full = hydra_compose("train", overrides=["debug=fdr"], return_hydra_config=True)
    assert full.hydra.job_logging.root.level == "INFO" and full.hydra.job_logging.loggers.src.level == "DEBUG"


def test_a_machine_local_config_is_composed_when_present(tmp_path):
    """conf/local/default.yaml (git-ignored) holds one machine's settings; absent, nothing changes."""
    import shutil

    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    (conf / "local" / "default.yaml").write_text("# @package _global_\npaths:\n  data_dir: /datasets/here\n")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        for root in ("train", "eval", "restore"):
            assert hydra_compose(root).paths.data_dir == "/datasets/here"
        assert hydra_compose("train", overrides=["paths.data_dir=/cli"]).paths.data_dir == "/cli"
    assert compose("train", [], tmp_path / "run").paths.data_dir != "/datasets/here"


def test_a_run_prints_and_saves_its_config_tree(tiny_cfg, tmp_path, capsys):
    from src.train import train

    train(tiny_cfg("debug=fdr"))
    saved = (tmp_path / "config_tree.log").read_text()
    assert saved.index("data") < saved.index("model") < saved.index("metrics")
    assert "restormer_tiny" in saved or "Restormer" in saved
    assert "_target_: src.models.backbones.restormer.Restormer" in saved and "\x1b[" not in saved
    assert "config" in capsys.readouterr().out
