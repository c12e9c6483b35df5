"""The composed config as a tree: printed when a run starts and saved as ``config_tree.log`` in its folder.

Hydra keeps the config in ``.hydra/config.yaml`` too; the tree is for reading: groups in the order that
matters (data, model, metrics, trainer first), the values resolved, what each command actually used.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.syntax import Syntax
from rich.tree import Tree

from src.utils.atomic import write_text_atomic

#: groups shown first; the others follow in config order
FIRST = ("data", "model", "metrics", "trainer", "callbacks", "logger", "speed", "paths")


def config_tree(cfg: DictConfig, first: Sequence[str] = FIRST) -> Tree:
    tree = Tree("config", guide_style="dim")
    keys = [k for k in first if k in cfg] + [k for k in cfg if k not in first]
    for key in keys:
        node = cfg[key]
        text = OmegaConf.to_yaml(node, resolve=True) if isinstance(node, DictConfig) else str(node)
        tree.add(str(key)).add(Syntax(text.rstrip() or "null", "yaml"))
    return tree


def show_config(cfg: DictConfig, output_dir: str | Path, console: Console | None = None) -> Path:
    """Print the tree and write it, without colours, to ``<output_dir>/config_tree.log``; returns the file."""
    tree = config_tree(cfg)
    (console or Console()).print(tree)
    buffer = io.StringIO()
    Console(file=buffer, width=120, color_system=None, force_terminal=False).print(tree)
    return write_text_atomic(Path(output_dir) / "config_tree.log", buffer.getvalue())
