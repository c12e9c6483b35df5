"""Print a model's size: ``python -m src.summary model=promptir [resolution=[256,256]]``.

Parameters are counted on the real module; FLOPs on a copy built on the meta device (shapes only, no
memory), with PyTorch's flop counter (one multiply-add = 2 FLOPs; element-wise operations not counted).
"""

from __future__ import annotations

from typing import Any

import hydra
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from rich.console import Console
from rich.table import Table
from torch import nn

from src.run.assemble import build_model
from src.training.profile import count_flops, count_parameters
from src.utils.conf import CONF_DIR
from src.utils.errors import ConfigError, exit_on_user_error
from src.utils.run_dir import register_resolvers


def _restorer(model: Any) -> nn.ModuleDict:
    """The network and its head: what the parameter count is of (the loss and the meters are not the network)."""
    return nn.ModuleDict({"net": model.net, **({"head": model.head} if model.head is not None else {})})


def summarise(cfg: DictConfig, resolution: tuple[int, int] = (256, 256)) -> dict[str, Any]:
    """Parameter counts, FLOPs at ``resolution`` and the feature channels of each level of ``cfg.model``.

    The model is built as every command builds it (:func:`src.run.assemble.build_model`); FLOPs are counted on
    a second copy built on the meta device (shapes only, no memory).
    """
    model = build_model(cfg)
    with torch.device("meta"):
        meta = build_model(cfg)
    h, w = resolution
    parts = _restorer(model)
    net = model.net
    return {
        "backbone": type(net).__name__,
        "head": type(model.head).__name__ if model.head is not None else "none",
        "parameters": count_parameters(parts),
        "official_parameters": model.official_parameters,
        "trainable_parameters": count_parameters(parts, trainable_only=True),
        "flops": count_flops(meta.eval(), (1, net.in_channels, h, w), net.condition_dim),
        "resolution": (h, w),
        "channels_per_level": list(net.channels_per_level),
        "head_positions": [(f.name, f.channels, f.reduction) for f in net.feature_info],
    }


def parse_resolution(value: Any) -> tuple[int, int]:
    """``resolution=[H,W]`` (or one number for a square) as two whole numbers >= 1, else a ConfigError."""
    values = list(value) if isinstance(value, list | tuple | ListConfig) else [value, value]
    if len(values) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise ConfigError(f"resolution={OmegaConf.to_container(value) if isinstance(value, ListConfig) else value!r}: "
                          "expected [H,W], two whole numbers >= 1 (e.g. resolution=[256,256])")
    return values[0], values[1]


def render(info: dict[str, Any], name: str) -> Table:
    table = Table(title=f"model={name}", show_header=False)
    table.add_row("backbone / head", f"{info['backbone']} / {info['head']}")
    official = info.get("official_parameters")
    official = f"; official: {official:,}" if official is not None else ""
    table.add_row("parameters", f"{info['parameters']:,} ({info['parameters'] / 1e6:.2f}M{official})")
    table.add_row("trainable parameters", f"{info['trainable_parameters']:,}")
    h, w = info["resolution"]
    table.add_row(f"FLOPs at {h}x{w}", f"{info['flops'] / 1e9:.2f} G ({info['flops'] / 2e9:.2f} G multiply-adds)")
    table.add_row("channels per level", ", ".join(map(str, info["channels_per_level"])) or "-")
    positions = ", ".join(f"{n} ({c} ch, /{r})" for n, c, r in info["head_positions"])
    table.add_row("head positions", positions or "-")
    return table


register_resolvers()  # ${unique_dir:...} of conf/hydra: Hydra resolves the run folder before main runs


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="summary")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    name = HydraConfig.get().runtime.choices.get("model", "?")
    info = summarise(cfg, parse_resolution(cfg.resolution))
    Console(width=120).print(render(info, name))


if __name__ == "__main__":
    main()
