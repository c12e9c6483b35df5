"""Official-checkpoint compatibility: build our network to match an official constructor and load its weights.

``from_official(name, official_kwargs, state_dict, **options)`` is the one entry point shared by users and
tests. Each supported network has a submodule here (``restormer.py``, ``nafnet.py``, ...) exposing

* ``build(official_kwargs: dict, **options) -> nn.Module``: our module configured like the official one;
* ``convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]``: official key names -> ours
  (as timm's checkpoint filter functions do).

The mapping is strict both ways: an official key that is not used, or a parameter/buffer of ours left
unfilled, is an error listing the keys.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping

from torch import Tensor, nn

#: official network name -> submodule of this package implementing ``build`` and ``convert``.
OFFICIAL_MODULES: dict[str, str] = {
    "restormer": "restormer",
    "promptir": "promptir",
    "adair": "adair",
    "moce_ir": "moce_ir",
    "nafnet": "nafnet",
    "dncnn": "dncnn",
    "zero_dce": "zero_dce",
    "swinir": "swinir",
    "airnet": "airnet",
}


def available() -> list[str]:
    """Names accepted by :func:`from_official` (those whose submodule exists)."""
    return sorted(n for n, m in OFFICIAL_MODULES.items() if importlib.util.find_spec(f"{__name__}.{m}") is not None)


def _module(name: str):
    if name not in OFFICIAL_MODULES or importlib.util.find_spec(f"{__name__}.{OFFICIAL_MODULES[name]}") is None:
        raise KeyError(f"unknown official network {name!r}; available: {', '.join(available())}")
    return importlib.import_module(f"{__name__}.{OFFICIAL_MODULES[name]}")


def load_strict(model: nn.Module, state_dict: Mapping[str, Tensor], source: str = "state dict") -> None:
    """Load ``state_dict`` into ``model`` requiring every key used once and every tensor filled, shapes equal."""
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
            lines.append(f"  missing keys ({len(missing)}): {', '.join(missing)}")
        if unexpected:
            lines.append(f"  unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
        if mismatched:
            lines.append(f"  shape mismatches ({len(mismatched)}): {'; '.join(mismatched)}")
        raise ValueError("\n".join(lines))
    model.load_state_dict(dict(state_dict), strict=True)


def from_official(
    name: str, official_kwargs: dict, state_dict: Mapping[str, Tensor], **options
) -> nn.Module:
    """Our network built like the official ``name(**official_kwargs)``, loaded from official keys, in eval mode."""
    module = _module(name)
    model = module.build(dict(official_kwargs), **options)
    load_strict(model, module.convert(state_dict), source=f"official {name} state dict")
    return model.eval()
