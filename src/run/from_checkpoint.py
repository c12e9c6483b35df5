"""Rebuild a run from a checkpoint of ``src.train``: its weights and the run config stored beside them.

Used by ``src.eval`` and ``src.restore``. The file is read without unpickling code
(:func:`src.utils.weights.load_weights_file`) and each stored group is checked
(:mod:`src.run.stored_config`) before it replaces the composed one, so a crafted checkpoint can neither
run code while loading nor choose the code that builds the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict
from torch import Tensor

from src.run.stored_config import check_stored_group
from src.utils.weights import UnusableCheckpointError, load_weights_file

#: config groups that a checkpoint can supply
STORED_GROUPS = ("model", "data", "metrics")
#: where ``src.train`` keeps the run config in a checkpoint
STORED_KEY = "aioir_config"


def run_config(cfg: DictConfig) -> dict[str, Any]:
    """The groups that rebuild a run's model and data, resolved: what ``src.train`` stores in its checkpoints."""
    return {k: OmegaConf.to_container(cfg[k], resolve=True) for k in STORED_GROUPS if k in cfg}


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A Lightning checkpoint of ours: a dict with a ``state_dict`` of tensors (read weights-only)."""
    path = Path(path)
    checkpoint = load_weights_file(path, what="ckpt_path")
    if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get("state_dict"), Mapping):
        raise UnusableCheckpointError(
            f"ckpt_path={path} is not a Lightning checkpoint (no state_dict entry); for weights alone use "
            "model=<name> model.pretrained=<file>"
        )
    bad = [k for k, v in checkpoint["state_dict"].items() if not isinstance(v, Tensor)]
    if bad:
        raise UnusableCheckpointError(f"ckpt_path={path}: state_dict entries that are not tensors: {bad[:5]}")
    return dict(checkpoint)


def merge_stored_config(
    cfg: DictConfig, checkpoint: Mapping[str, Any], overridden: Iterable[str], source: str
) -> DictConfig:
    """Replace each group of ``cfg`` by the checkpoint's checked copy unless the user named it on the command line."""
    stored = checkpoint.get(STORED_KEY) or {}
    if not isinstance(stored, Mapping):
        raise UnusableCheckpointError(f"{source}: `{STORED_KEY}` is a {type(stored).__name__}, expected a map")
    overridden = set(overridden)
    used = {group: stored[group] for group in STORED_GROUPS if group in stored and group not in overridden}
    for group, node in used.items():
        check_stored_group(group, node, source)
    with open_dict(cfg):
        for group, node in used.items():
            cfg[group] = OmegaConf.create(node)
        cfg.model.pretrained = None  # the checkpoint's weights replace every starting file
        if "instruction_pretrained" in cfg.model:
            cfg.model.instruction_pretrained = None
    return cfg


def load_run(cfg: DictConfig, overridden: Iterable[str] = ()) -> tuple[DictConfig, dict[str, Tensor]]:
    """``cfg`` with the stored groups of ``cfg.ckpt_path`` merged in, and that checkpoint's state dict."""
    checkpoint = read_checkpoint(cfg.ckpt_path)
    cfg = merge_stored_config(cfg, checkpoint, overridden, source=f"ckpt_path={cfg.ckpt_path}")
    return cfg, checkpoint["state_dict"]


def overridden_groups() -> set[str]:
    """Groups the user named on the command line (``data=...`` or ``data.root=...`` both count)."""
    from hydra.core.hydra_config import HydraConfig

    names = set()
    for item in HydraConfig.get().overrides.task:
        key = item.split("=", 1)[0].lstrip("+~")
        names.add(key.split(".", 1)[0].split("/", 1)[0])
    return names


def stored_logger_ids(path: str | Path) -> dict[str, str]:
    """The logger run ids a checkpoint of ``src.train`` keeps (``{"wandb": id}``); ``{}`` where it keeps none.

    Read memory-mapped and weights-only: a resume reads only this small entry before Lightning loads the file.
    """
    import torch

    from src.training.restoration_module import LOGGER_IDS_KEY

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - an unreadable file is reported by the resume's own check
        return {}
    ids = checkpoint.get(LOGGER_IDS_KEY) if isinstance(checkpoint, Mapping) else None
    return {str(k): str(v) for k, v in ids.items()} if isinstance(ids, Mapping) else {}


def continue_logger_runs(cfg: DictConfig) -> None:
    """A resumed run (``ckpt_path``) writes to the same W&B run as the one it resumes, unless an id is set."""
    wandb = (cfg.get("logger") or {}).get("wandb")
    if not cfg.get("ckpt_path") or wandb is None or wandb.get("id"):
        return
    run_id = stored_logger_ids(cfg.ckpt_path).get("wandb")
    if run_id:
        with open_dict(cfg):
            cfg.logger.wandb.id = run_id
            cfg.logger.wandb.resume = "allow"


def with_checkpoint(cfg: DictConfig, path: str) -> DictConfig:
    """A copy of ``cfg`` whose ``ckpt_path`` is ``path`` (another network of a multi-network command)."""
    copy = cfg.copy()
    with open_dict(copy):
        copy.ckpt_path = path
    return copy
