"""Official-checkpoint compatibility: build our network to match an official constructor and load its weights.

``from_official(name, official_kwargs, state_dict, **options)`` is the one entry point shared by users and
tests. Each supported network has a submodule here (``restormer.py``, ``nafnet.py``, ...), which model configs
name by its dotted path (``model.official: src.models.official.restormer``; no table maps names to them),
exposing

* ``build(official_kwargs: dict, **options) -> nn.Module``: our module configured like the official one;
* ``convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]``: official key names -> ours
  (as timm's checkpoint filter functions do).

The mapping is strict both ways: an official key that is not used, or a parameter/buffer of ours left
unfilled, is an error listing the keys.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

from torch import Tensor, nn

#: the package whose submodules are the official converters; ``model.official`` names one of them
PACKAGE = __name__


def converter_module(name: str):
    """The converter module ``name`` names: a full dotted path in this package (``src.models.official.restormer``,
    as ``model.official`` holds it) or its last part (``restormer``). Only this package's modules can be named,
    so a config (or a checkpoint's stored copy) cannot make this import anything else."""
    path = name if name.startswith(f"{PACKAGE}.") else f"{PACKAGE}.{name}"
    tail = path.removeprefix(f"{PACKAGE}.")
    if tail not in available():
        raise KeyError(f"model.official={name!r} names no converter module of {PACKAGE}; available: "
                       f"{', '.join(available())}")
    return importlib.import_module(path)


def available() -> list[str]:
    """The converter modules of this package (one per supported official network)."""
    here = Path(__file__).parent
    return sorted(p.stem for p in here.glob("*.py") if p.stem not in ("__init__", "wrapper"))


#: keys before "... and N more" in a key report
SHOWN_KEYS = 6
_BATCH_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def _pattern(key: str) -> str:
    """``net.body.12.norm.weight`` -> ``net.body.*.norm.weight``: keys of repeated blocks fold into one line."""
    return ".".join("*" if part.isdigit() else part for part in key.split("."))


def summarise_keys(keys: list[str]) -> str:
    """Keys grouped by pattern with counts (a pattern of one key is the key itself), the first few shown, the
    rest counted."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(_pattern(key), []).append(key)
    shown = [f"{pattern} (x{len(ks)})" if len(ks) > 1 else ks[0] for pattern, ks in list(groups.items())[:SHOWN_KEYS]]
    more = len(groups) - SHOWN_KEYS
    return ", ".join(shown) + (f" ... and {more} more pattern(s)" if more > 0 else "")


def _likely_fix(model: nn.Module, missing: list[str], unexpected: list[str]) -> str | None:
    """What usually causes this mismatch, where the keys make it plain."""
    norms = {name for name, m in model.named_modules() if isinstance(m, _BATCH_NORM)}
    if missing and not unexpected and all(k.rsplit(".", 1)[0] in norms for k in missing):
        return ("every missing key belongs to a batch norm: the weights were saved without it (folded, as KAIR's "
                "released DnCNN): set model.backbone.batch_norm=false")
    if unexpected and not missing and all(k.startswith("head.") for k in unexpected):
        return "the weights hold a head this model lacks: choose the model they were trained as (model/head=...)"
    if missing and not unexpected and all(k.startswith("head.") for k in missing):
        return "the weights hold no head: choose the model without one (model/head=none)"
    return None


def load_strict(model: nn.Module, state_dict: Mapping[str, Tensor], source: str = "state dict") -> None:
    """Load ``state_dict`` into ``model`` requiring every key used once and every tensor filled, shapes equal.

    A mismatch is reported grouped (repeated blocks fold into one pattern), a few shown and the rest counted,
    with the likely fix where the keys make it plain.
    """
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    mismatched = sorted(
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state_dict)
        if tuple(own[k].shape) != tuple(state_dict[k].shape)
    )
    if missing or unexpected or mismatched:
        lines = [f"{source} does not fit {type(model).__name__}:"]
        if missing:
            lines.append(f"  missing keys ({len(missing)}): {summarise_keys(missing)}")
        if unexpected:
            lines.append(f"  unexpected keys ({len(unexpected)}): {summarise_keys(unexpected)}")
        if mismatched:
            more = len(mismatched) - SHOWN_KEYS
            lines.append(f"  shape mismatches ({len(mismatched)}): {'; '.join(mismatched[:SHOWN_KEYS])}"
                         + (f" ... and {more} more" if more > 0 else ""))
        fix = _likely_fix(model, missing, unexpected)
        if fix:
            lines.append(f"  likely fix: {fix}")
        raise ValueError("\n".join(lines))
    model.load_state_dict(dict(state_dict), strict=True)


def from_official(
    name: str, official_kwargs: dict, state_dict: Mapping[str, Tensor], **options
) -> nn.Module:
    """Our network built like the official ``name(**official_kwargs)``, loaded from official keys, in eval mode."""
    module = converter_module(name)
    model = module.build(dict(official_kwargs), **options)
    load_strict(model, module.convert(state_dict), source=f"official {name} state dict")
    return model.eval()
