"""The run config a checkpoint carries (``aioir_config``), checked before it is used: data never chooses code.

``src.train`` stores the resolved ``model``, ``data`` and ``metrics`` groups in every checkpoint so that
``src.eval`` and ``src.restore`` rebuild the run without the command line that made it. A checkpoint is a file
someone else may have written, and Hydra's ``instantiate`` imports and calls whatever ``_target_`` names, so a
stored group is accepted only when every ``_target_`` in it is one that a file of our own ``conf/`` tree places
under that group (``builtins.open`` or ``torch.load`` are in no file there). The allowlist is read from the YAML
files rather than kept in code, so a module and config added to the suite are allowed without editing this.

Stored values must also be plain (strings, numbers, booleans, lists, maps) and hold no ``${...}``
interpolation: the stored copy is resolved when it is written, so an interpolation can only come from an edit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from src.utils.conf import CONF_DIR
from src.utils.errors import ConfigError

#: value types a stored config may hold
PLAIN = (str, int, float, bool, type(None))


class StoredConfigError(ConfigError):
    """A checkpoint's stored config names code or values the suite's own configs cannot produce."""


def _package(path: Path, conf_dir: Path, text: str) -> str:
    """Where Hydra puts a config file's content: its ``# @package`` header, else its group's path."""
    group = ".".join(path.relative_to(conf_dir).parent.parts)
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# @package"):
            package = stripped.removeprefix("# @package").strip()
            package = package.replace("_group_", group).replace("_name_", path.stem)
            return "" if package == "_global_" else package.removeprefix("_global_.")
        if stripped and not stripped.startswith("#"):
            break
    return group


def _targets(node: Any, key: str) -> Iterable[tuple[str, str]]:
    """``(dotted key, target)`` of every ``_target_`` under ``node`` (lists count as one level)."""
    if isinstance(node, Mapping):
        for name, value in node.items():
            if name == "defaults" and not key:
                continue  # a defaults list composes other files; it holds no config of its own
            if name == "_target_" and isinstance(value, str):
                yield key, value
            else:
                yield from _targets(value, f"{key}.{name}" if key else str(name))
    elif isinstance(node, list):
        for item in node:
            yield from _targets(item, key)


@cache
def allowed_targets(conf_dir: Path = CONF_DIR) -> dict[str, frozenset[str]]:
    """Top-level group (``model``, ``data``, ...) -> the ``_target_`` values the conf tree places inside it."""
    found: dict[str, set[str]] = {}
    for path in sorted(conf_dir.rglob("*.yaml")):
        text = path.read_text()
        package = _package(path, conf_dir, text)
        for key, target in _targets(yaml.safe_load(text) or {}, package):
            if "${" not in target and key:
                found.setdefault(key.split(".", 1)[0], set()).add(target)
    return {group: frozenset(targets) for group, targets in found.items()}


def check_stored_group(group: str, node: Any, source: str, conf_dir: Path = CONF_DIR) -> None:
    """Raise :class:`StoredConfigError`, naming the key, unless ``node`` is plain data whose targets are ours."""
    allowed = allowed_targets(conf_dir).get(group, frozenset())

    def visit(value: Any, key: str) -> None:
        if isinstance(value, Mapping):
            for name, child in value.items():
                if not isinstance(name, str):
                    raise StoredConfigError(f"{source}: stored config key {key}.{name!r} is not a string")
                visit(child, f"{key}.{name}")
        elif isinstance(value, list | tuple):
            for i, child in enumerate(value):
                visit(child, f"{key}[{i}]")
        elif not isinstance(value, PLAIN):
            raise StoredConfigError(
                f"{source}: stored config key `{key}` holds a {type(value).__name__}; a stored config holds only "
                "strings, numbers, booleans, lists and maps"
            )
        elif isinstance(value, str) and "${" in value:
            raise StoredConfigError(
                f"{source}: stored config key `{key}` holds the interpolation {value!r}; checkpoints of src.train "
                "store resolved values, so this file was edited. Refusing to use it"
            )
        if key.endswith("._target_") and value not in allowed:
            raise StoredConfigError(
                f"{source}: stored config key `{key}` names {value!r}, which no config under {conf_dir}/ places in "
                f"`{group}`. A stored config may only name the suite's own classes; nothing was built. To use the "
                f"weights anyway, choose the config yourself on the command line ({group}=<name>)"
            )

    if not isinstance(node, Mapping):
        raise StoredConfigError(f"{source}: stored config `{group}` is a {type(node).__name__}, expected a map")
    visit(node, group)
