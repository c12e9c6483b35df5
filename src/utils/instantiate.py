"""Turn the composed config into objects, with errors that say which config key is wrong."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf, open_dict

from src.utils.errors import ConfigError, UserError

log = logging.getLogger(__name__)


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


def build_model(cfg: DictConfig) -> Any:
    """The LightningModule of ``cfg.model`` with the metric protocol of ``cfg.metrics`` and the ``cfg.speed``
    switches (absent: all auto)."""
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    for optional in ("head", "scheduler"):
        if is_empty(model_cfg.get(optional)):
            model_cfg[optional] = None
    protocol = build(cfg.metrics, "metrics")
    # passed after instantiation: Hydra would turn a dataclass keyword argument into a config node
    factory = build(model_cfg, "model", _partial_=True)
    speed = cfg.get("speed")
    speed = OmegaConf.to_container(speed, resolve=True) if isinstance(speed, DictConfig) else speed
    try:
        return factory(metrics=protocol, speed=speed)
    except UserError:
        raise
    except (TypeError, ValueError) as err:
        raise ConfigError(f"building `model` failed: {type(err).__name__}: {err}") from err


def resolve_trainer_precision(cfg: DictConfig) -> str:
    """Replace ``trainer.precision: auto`` by bf16-mixed or 32-true for the device ``trainer.accelerator``
    names (Lightning refuses "auto"); returns the precision. Call before building the Trainer."""
    from src.models.speed import accelerator_device, resolve_precision

    trainer = cfg.get("trainer")
    if trainer is None or trainer.get("precision") is None:  # Lightning's default
        return "32-true"
    precision = resolve_precision(trainer.precision, accelerator_device(trainer.get("accelerator")))
    with open_dict(trainer):
        trainer.precision = precision
    return precision


def check_trainer_devices(cfg: DictConfig) -> None:
    """``trainer.devices`` against this machine: more GPUs than it has is refused; more CPU processes than cores
    is allowed (two processes on one core still test DDP) but said, since each process then shares a core."""
    import os

    import torch
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    from src.models.speed import accelerator_device

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


def prepare_trainer_config(cfg: DictConfig) -> str:
    """Check ``trainer.devices`` and resolve ``trainer.precision: auto``, once, before the Trainer is built."""
    check_trainer_devices(cfg)
    return resolve_trainer_precision(cfg)


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
