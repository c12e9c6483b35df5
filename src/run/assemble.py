"""The one place that turns a composed config into a run: data, model, Trainer, callbacks, loggers, weights.

``src.train``, ``src.eval``, ``src.restore``, ``src.summary`` and ``src.bench`` all build through here, so a
model is the same object whichever command made it, and every error names the config key that is wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import hydra
import lightning as L
from hydra.errors import InstantiationException
from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from src.run.config_tree import show_config
from src.run.from_checkpoint import continue_logger_runs, load_run, run_config
from src.utils.errors import ConfigError, UserError

log = logging.getLogger(__name__)


def compose(config_name: str, overrides: Sequence[str]) -> DictConfig:
    """``conf/<config_name>.yaml`` composed with ``overrides`` as its command would, for tools that run outside
    ``@hydra.main`` (``make bench``): no run folder, no logging set up."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from src.utils.conf import CONF_DIR
    from src.utils.run_dir import register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name, overrides=list(overrides))


def root_cause(err: BaseException) -> BaseException:
    """The innermost exception behind Hydra's ``InstantiationException`` wrappers."""
    while isinstance(err, InstantiationException) and err.__cause__ is not None:
        err = err.__cause__
    return err


def build(node: Any, key: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(node)``, re-raising the underlying error with the config key in front."""
    try:
        return hydra.utils.instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = root_cause(err)
        if isinstance(cause, (FileNotFoundError, UserError)):  # already names the file or key
            raise cause from None
        raise ConfigError(f"building `{key}` failed: {type(cause).__name__}: {cause}") from cause


def is_empty(node: Any) -> bool:
    """True for ``null`` and for empty groups such as ``model/head=none``."""
    return node is None or (isinstance(node, (Mapping, DictConfig)) and len(node) == 0)


def model_node(cfg: DictConfig) -> dict[str, Any]:
    """``cfg.model`` with the metric protocol (``cfg.metrics``) and the speed switches (``cfg.speed``) as nested
    nodes, so one ``instantiate`` builds the whole LightningModule; empty optional groups (``model/head=none``)
    become ``None``."""
    node = OmegaConf.to_container(cfg.model, resolve=True)
    for optional in ("head", "scheduler", "strategy"):
        if is_empty(node.get(optional)):
            node[optional] = None
    node["metrics"] = OmegaConf.to_container(cfg.metrics, resolve=True)
    speed = cfg.get("speed")
    node["speed"] = OmegaConf.to_container(speed, resolve=True) if isinstance(speed, DictConfig) else speed
    return node


def build_model(cfg: DictConfig) -> Any:
    """The LightningModule of ``cfg.model`` under ``cfg.metrics`` with the ``cfg.speed`` switches (absent: auto)."""
    try:
        return build(model_node(cfg), "model", _convert_="all")
    except UserError:
        raise
    except (TypeError, ValueError) as err:
        raise ConfigError(f"building `model` failed: {type(err).__name__}: {err}") from err


def resolve_trainer_precision(cfg: DictConfig, training: bool = True) -> str:
    """Replace ``trainer.precision: auto`` by bf16-mixed or 32-true for the device ``trainer.accelerator``
    names (Lightning refuses "auto"); returns the precision. Call before building the Trainer.

    On a CPU with native bf16, ``auto`` for ``training`` is bf16 around training steps only: the precision
    flag is emptied and :class:`~src.training.precision.TrainingStepMixedPrecision` added to the plugins
    (Lightning takes one or the other). Evaluation commands (``training=False``) keep 32-true there."""
    from src.training.speed import accelerator_device, bf16_for_training_only, bf16_supported, resolve_precision

    trainer = cfg.get("trainer")
    if trainer is None or trainer.get("precision") is None:  # Lightning's default
        return "32-true"
    device = accelerator_device(trainer.get("accelerator"))
    auto = trainer.precision == "auto"
    precision = resolve_precision(trainer.precision, device, training=training)
    with open_dict(trainer):
        if auto and training and not bf16_supported(device) and bf16_for_training_only(device):
            trainer.precision = None
            plugins = list(trainer.get("plugins") or [])
            trainer.plugins = [*plugins, {"_target_": "src.training.precision.TrainingStepMixedPrecision",
                                          "device": device}]
            return f"{precision} (training steps only: this CPU has native bf16)"
        trainer.precision = precision
    return precision


def check_trainer_devices(cfg: DictConfig) -> None:
    """``trainer.devices`` against this machine: more GPUs than it has is refused; more CPU processes than cores
    is allowed (two processes on one core still test DDP) but said, since each process then shares a core."""
    import os

    import torch

    from src.training.speed import accelerator_device

    trainer = cfg.get("trainer")
    devices = trainer.get("devices") if trainer is not None else None
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        return  # "auto", -1 or a list of device indices: Lightning resolves and checks those itself
    if accelerator_device(trainer.get("accelerator")) == "cuda":
        available = torch.cuda.device_count()
        if devices > available:
            fix = f"trainer.devices={available}, or trainer=cpu" if available else "trainer=cpu"
            raise ConfigError(f"trainer.devices={devices} asks for {devices} GPU(s) (trainer.accelerator="
                              f"{trainer.get('accelerator')}); this machine has {available}: set {fix}")
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if devices > cores and rank_zero_only.rank == 0:  # DDP workers re-run this: say it once
        log.warning("trainer.devices=%d starts %d CPU processes on %d core(s): they share cores, so this only "
                    "suits testing the multi-process path, not training speed", devices, devices, cores)


def prepare_trainer_config(cfg: DictConfig, training: bool = True) -> str:
    """Check ``trainer.devices`` and resolve ``trainer.precision: auto``, once, before the Trainer is built."""
    check_trainer_devices(cfg)
    return resolve_trainer_precision(cfg, training)


def build_group(cfg: DictConfig | None, group: str) -> list[Any]:
    """One object per non-empty entry of a dict-of-objects group (``callbacks``, ``logger``).

    An entry without ``_target_`` is settings left for an object whose config was not selected: an
    experiment tunes ``callbacks.ema`` and the command line then replaces the group (``callbacks=panels``).
    Hydra would hand that dict on as is and the Trainer fail far from the cause; we name it instead.
    """
    if is_empty(cfg):
        return []
    for name, node in cfg.items():
        if isinstance(node, Mapping) and node and "_target_" not in node:
            raise ConfigError(
                f"`{group}.{name}` sets {sorted(node)} but has no `_target_`: its config (conf/{group}/{name}.yaml) "
                f"is not selected, probably because `{group}=...` on the command line replaced an experiment's "
                f"choice; select both, e.g. '{group}=[{name},<yours>]'"
            )
    return [build(c, f"{group}.{name}") for name, c in cfg.items() if not is_empty(c)]


def build_callbacks(cfg: DictConfig | None) -> list[Any]:
    return build_group(cfg, "callbacks")


def build_loggers(cfg: DictConfig | None) -> list[Any]:
    return build_group(cfg, "logger")


def finish_loggers(loggers: list[Any]) -> None:
    """End the W&B run of each W&B logger that started one: the next run in this process (a sweep's next job,
    a second ``train`` call) then gets its own run instead of writing into this one."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        experiment = getattr(logger, "_experiment", None) if isinstance(logger, WandbLogger) else None
        if experiment is not None:
            experiment.finish()


def build_trainer(cfg: DictConfig, callbacks: list[Any], loggers: list[Any], training: bool = True) -> L.Trainer:
    """The Trainer of ``cfg.trainer`` after :func:`prepare_trainer_config` (``training``: for ``fit``, else for
    evaluation only); a learning-rate monitor is dropped when there is no logger for it to write to (Lightning
    refuses it then)."""
    from lightning.pytorch.callbacks import LearningRateMonitor

    log.info("trainer.precision: %s", prepare_trainer_config(cfg, training))  # "auto" never reaches Lightning
    if not loggers:
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    return build(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False)


@dataclass
class Assembled:
    """Everything a Lightning run needs, built from one composed config."""

    cfg: DictConfig
    datamodule: L.LightningDataModule
    model: Any
    trainer: L.Trainer
    loggers: list[Any]


def for_training(cfg: DictConfig) -> Assembled:
    """Data, model (with its run config stored in every checkpoint), callbacks, loggers and Trainer of ``cfg``."""
    if cfg.model.get("training_free"):
        name = cfg.model.get("backbone", {}).get("_target_", "this model").rsplit(".", 1)[-1]
        raise ConfigError(f"{name} is training-free (nothing to learn): evaluate it with python -m src.eval "
                          "model=<name> data=..., or restore images with python -m src.restore model=<name> input=...")
    if rank_zero_only.rank == 0:
        show_config(cfg, cfg.paths.output_dir)
    log.info("building data <%s>", cfg.data.get("_target_"))
    datamodule = build(cfg.data, "data")
    log.info("building model <%s>", cfg.model.get("_target_"))
    model = build_model(cfg)
    check_scales(datamodule, model)
    give_derived_inputs(datamodule, model)
    model.run_config = run_config(cfg)
    continue_logger_runs(cfg)
    if cfg.get("ckpt_path") and cfg.get("logger", {}).get("wandb", {}).get("id"):
        log.info("resuming: logging to W&B run %s", cfg.logger.wandb.id)
    loggers = build_loggers(cfg.get("logger"))
    trainer = build_trainer(cfg, build_callbacks(cfg.get("callbacks")), loggers)
    return Assembled(cfg, datamodule, model, trainer, loggers)


def give_derived_inputs(datamodule: Any, model: Any) -> None:
    """A network that reads derived versions of its input (``Backbone.derived_inputs``: Water-Net) gets them
    from the loaders, made from whole images."""
    derive = getattr(getattr(model, "net", None), "derived_inputs", None)
    if derive is not None and hasattr(datamodule, "input_transform"):
        datamodule.input_transform = derive


def check_scales(datamodule: Any, model: Any) -> None:
    """The network's output scale must be what the data asks of it: a super-resolution network's ``scale`` the
    data's (``data=sr``: ``data.scale``), and a same-size restorer must get inputs at the target's size."""
    wanted = int(getattr(datamodule, "output_scale", 1))
    has = int(getattr(getattr(model, "net", None), "scale", 1))
    if wanted == has:
        return
    if has == 1:
        raise ConfigError(f"the data gives inputs {wanted} times smaller than the targets, but this network keeps "
                          "the size: set data.degradation.upsample=true (the bicubic-up-sampled input, as SRCNN "
                          "takes it) or choose a super-resolution model (model=edsr, rcan)")
    if wanted == 1:
        raise ConfigError(f"model.backbone.scale={has} but the data is x1 (inputs at the targets' size): a "
                          f"super-resolution network needs data=sr data.scale={has}")
    raise ConfigError(f"model.backbone.scale={has} but the data is x{wanted}: set data.scale={has} or "
                      f"model.backbone.scale={wanted}")


def untrained(cfg: DictConfig) -> bool:
    """Whether ``cfg`` names no weights at all (no ``ckpt_path``, no ``model.pretrained``) for a model that has
    weights to learn (a training-free method such as ``model=dcp`` never is)."""
    return not cfg.get("ckpt_path") and not cfg.model.get("pretrained") and not cfg.model.get("training_free")


def _stored_run(cfg: DictConfig, overridden: Iterable[str], require: bool) -> tuple[DictConfig, Any]:
    """``cfg`` with the checked groups of ``ckpt_path`` merged in, and its state dict (``None`` without one).

    A model without weights is refused unless ``untrained=true`` asks for one on purpose (a baseline), and never
    when ``require`` (restore).
    """
    if cfg.get("ckpt_path"):
        return load_run(cfg, overridden)
    if untrained(cfg):
        if require or not cfg.get("untrained", False):
            hint = "" if require else ", or untrained=true to evaluate the randomly initialised network on purpose"
            raise ConfigError(f"no weights: set ckpt_path=... (a checkpoint of src.train) or model.pretrained=... "
                              f"(a weights file){hint}")
        log.warning("untrained=true: evaluating randomly initialised weights (the table says so)")
    return cfg, None


def _weighted_model(cfg: DictConfig, state: Any) -> Any:
    from src.models.official import load_strict

    model = build_model(cfg)
    if state is not None and getattr(model, "strategy", None) is None:
        # a strategy's tensors (a classifier, a mask token) where the model is rebuilt without it (model=...
        # chosen on the command line): they are not part of the network, and restoring does not need them
        from src.training.pretrained import STRATEGY_PREFIX, droppable_strategy_keys

        dropped = droppable_strategy_keys(state, f"ckpt_path={cfg.get('ckpt_path')}")
        if dropped:
            state = {k: v for k, v in state.items() if not k.startswith(STRATEGY_PREFIX)}
            log.info("ckpt_path=%s: %d tensor(s) of its training strategy left out (the model is built without "
                     "it)", cfg.get("ckpt_path"), len(dropped))
    if state is not None:
        try:
            load_strict(model, state, source=f"ckpt_path={cfg.ckpt_path}")
        except ValueError as err:
            raise ConfigError(str(err)) from None
    return model


def load_weights(cfg: DictConfig, overridden: Iterable[str] = ()) -> tuple[DictConfig, Any]:
    """The model of ``ckpt_path`` (its stored groups merged into ``cfg``, checked) or of ``model.pretrained``;
    one of the two is required. Returns the (possibly merged) config and the model."""
    cfg, state = _stored_run(cfg, overridden, require=True)
    return cfg, _weighted_model(cfg, state)


def for_evaluation(cfg: DictConfig, overridden: Iterable[str] = ()) -> Assembled:
    """Data and trained model (``ckpt_path`` or ``model.pretrained``), loggers and a Trainer with ``callbacks``
    (``conf/callbacks/eval.yaml``: progress only)."""
    cfg, state = _stored_run(cfg, overridden, require=False)
    if rank_zero_only.rank == 0:
        show_config(cfg, cfg.paths.output_dir)  # after the checkpoint's groups are merged: what is evaluated
    datamodule = build(cfg.data, "data")
    model = _weighted_model(cfg, state)
    check_scales(datamodule, model)
    give_derived_inputs(datamodule, model)
    loggers = build_loggers(cfg.get("logger"))
    trainer = build_trainer(cfg, build_callbacks(cfg.get("callbacks")), loggers, training=False)
    return Assembled(cfg, datamodule, model, trainer, loggers)
