"""Test doubles and discovery shared by the registry-driven tests (one copy, not one per network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from torch import Tensor

from src.metrics.protocols import MetricProtocol
from src.models.backbones.base import Head
from src.run.assemble import build

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def configs(group: str, conf_dir: Path = CONF_DIR) -> list[str]:
    """The options of a config group (``model``, ``model/backbone``, ``model/head``...): its YAML files' names.

    Tests parametrise over this, so a config file added (or copied under a new name) is tested with no edit.
    """
    return sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))


def layout_configs(conf_dir: Path = CONF_DIR) -> dict[str, Any]:
    """Every folder layout of ``conf/data/layout`` as the data configs compose them (``data.layouts``)."""
    folder = conf_dir / "data" / "layout"
    return {p.stem: OmegaConf.to_container(OmegaConf.load(p)) for p in sorted(folder.glob("*.yaml"))}


def metric_protocol(name: str, **options: Any) -> MetricProtocol:
    """The metric protocol of ``conf/metrics/<name>.yaml`` with ``options`` overridden, built as a run builds it."""
    node = OmegaConf.merge(OmegaConf.load(CONF_DIR / "metrics" / f"{name}.yaml"), options)
    return build(node, "metrics")


class RecordingHead(Head):
    """Records what the backbone shows it at each position and adds ``shift``; returns one aux loss shared by
    every position (``balance``, 1 each) and one per position (``<name>_only``)."""

    def __init__(self, shift: float = 0.0) -> None:
        super().__init__()
        self.seen: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []
        self.shift = shift

    def forward(self, name: str, feature: Tensor, image: Tensor, **context: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        self.seen.append((name, tuple(feature.shape), tuple(image.shape)))
        return feature + self.shift, {"balance": feature.new_ones(()), f"{name}_only": feature.mean()}
