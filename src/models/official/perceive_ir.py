"""Official Perceive-IR (House-yuyu/Perceive-IR ``cyclicPrompt``, stage 2) -> :class:`PerceiveIR`.

Module names are the release's; inside Restormer blocks and resampling convolutions they are renamed as
Restormer's converter does (``norm1.body`` -> ``attn_norm``, ``body.0`` -> ``conv`` ...). The frozen CLIP a
release checkpoint may hold (``model_clip.*``) is not part of the restorer and is left out.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from src.models.backbones.perceive_ir import PerceiveIR
from src.models.official.restormer import _BLOCK_RENAMES
from src.models.official.wrapper import OfficialWrapper, rename_keys

ARG_NAMES = {"inp_channels": "in_channels", "out_channels": "out_channels", "dim": "dim", "num_blocks": "num_blocks",
             "num_refinement_blocks": "num_refinement_blocks", "heads": "heads",
             "ffn_expansion_factor": "ffn_expansion_factor", "bias": "bias", "LayerNorm_type": "layernorm_type",
             "num_vector": "num_vector", "iter_times": "iterations"}


def build(official_kwargs: Mapping, **options) -> OfficialWrapper:
    """Ours configured like ``cyclicPrompt(**official_kwargs)`` (``dual_pixel_task`` must be false)."""
    kwargs = dict(official_kwargs)
    if kwargs.pop("dual_pixel_task", False):
        raise ValueError("Perceive-IR's dual-pixel variant is not built")
    kwargs.pop("model_clip", None)
    unknown = sorted(set(kwargs) - set(ARG_NAMES))
    if unknown:
        raise ValueError(f"unknown official cyclicPrompt arguments: {', '.join(unknown)}")
    return OfficialWrapper(PerceiveIR(**{ARG_NAMES[k]: v for k, v in kwargs.items()}, **options))


def convert_key(key: str) -> str:
    key = key.replace(".body.0.", ".conv.")
    for old, new in _BLOCK_RENAMES.items():
        key = key.replace(old, new)
    return key


def convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Official keys -> ours (``net.*``); ``model_clip.*`` (the frozen CLIP) left out."""
    kept = {k: v for k, v in state_dict.items() if not k.startswith("model_clip.")}
    return rename_keys(kept, lambda key, value: (f"net.{convert_key(key)}", value))
