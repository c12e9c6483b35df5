"""Official AdaIR (c-yn/AdaIR, ``net/model.py``, ``AdaIR(decoder=True)``) -> our Restormer + FrequencyHead.

The official network is plain Restormer with a frequency module after the latent (``fre1``) and after
decoder levels 3 (``fre2``) and 2 (``fre3``): our head positions ``dec3``, ``dec2``, ``dec1`` in that order,
each just before the level's upsampling, each given the (unpadded, here padded) input image. With
``decoder=False`` it is plain Restormer, and so is ours (no head). The frequency modules always take a
3-channel image (``in_dim=3``), so ``decoder=True`` needs ``inp_channels=3``. The never-used ``conv`` and
``score_gen`` of each module are built (frozen) when ``official_unused_modules`` is set, the default here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor

from src.models.heads.frequency import FrequencyHead
from src.models.official import restormer
from src.models.official.wrapper import OfficialWrapper, rename_keys

#: official constructor arguments and their defaults (``decoder=True`` is the class default too).
OFFICIAL_DEFAULTS: dict[str, object] = {
    "inp_channels": 3,
    "out_channels": 3,
    "dim": 48,
    "num_blocks": (4, 6, 6, 8),
    "num_refinement_blocks": 4,
    "heads": (1, 2, 4, 8),
    "ffn_expansion_factor": 2.66,
    "bias": False,
    "LayerNorm_type": "WithBias",
    "decoder": True,
}


def build(official_kwargs: Mapping, official_unused_modules: bool = True) -> OfficialWrapper:
    """Our network configured like ``AdaIR(**official_kwargs)``; ``forward(x)`` returns the image."""
    unknown = sorted(set(official_kwargs) - set(OFFICIAL_DEFAULTS))
    if unknown:
        raise ValueError(
            f"unknown official AdaIR arguments: {', '.join(unknown)}; accepted: {', '.join(OFFICIAL_DEFAULTS)}"
        )
    kwargs = {**OFFICIAL_DEFAULTS, **official_kwargs}
    heads = tuple(kwargs["heads"])
    if len(heads) != 4 or len(kwargs["num_blocks"]) != 4:
        raise ValueError(f"official AdaIR has four levels: num_blocks and heads need 4 entries, got {kwargs}")
    net = restormer.build_backbone({k: v for k, v in kwargs.items() if k != "decoder"})
    if not kwargs["decoder"]:
        return OfficialWrapper(net, None)
    if kwargs["inp_channels"] != 3:
        raise ValueError(f"official AdaIR's frequency modules take 3-channel images, not {kwargs['inp_channels']}")
    head = FrequencyHead(
        net.feature_info,
        image_channels=3,
        num_heads=heads[2],
        bias=kwargs["bias"],
        official_unused_modules=official_unused_modules,
    )
    return OfficialWrapper(net, head)


# inside ``fre{k}``: official prefix -> ours (first match wins; ``conv1.`` before ``conv.``)
_MODULE_RENAMES: list[tuple[str, str]] = [
    ("conv1.", "image_proj."),
    ("conv.", "unused.image_conv."),
    ("score_gen.", "unused.score_conv."),
    ("rate_conv.", "cutoff."),
    ("channel_cross_l.", "high_attn."),
    ("channel_cross_h.", "low_attn."),
    ("channel_cross_agg.", "fuse_attn."),
    ("frequency_refine.SpatialGate.spatial.", "refine.spatial_gate.conv."),
    ("frequency_refine.ChannelGate.mlp.0.", "refine.channel_gate.down."),
    ("frequency_refine.ChannelGate.mlp.2.", "refine.channel_gate.up."),
    ("frequency_refine.proj.", "refine.proj."),
]
_PARAMS: dict[str, str] = {"para1": "scale", "para2": "skip_scale"}
_ATTENTION_RENAMES: dict[str, str] = {
    "temperature": "temperature",
    "q.weight": "q.weight",
    "q.bias": "q.bias",
    "q_dwconv.weight": "q_dw.weight",
    "q_dwconv.bias": "q_dw.bias",
    "kv.weight": "kv.weight",
    "kv.bias": "kv.bias",
    "kv_dwconv.weight": "kv_dw.weight",
    "kv_dwconv.bias": "kv_dw.bias",
    "project_out.weight": "proj.weight",
    "project_out.bias": "proj.bias",
}
_FREQUENCY_MODULE = re.compile(r"^fre([123])\.")


def _inner_key(rest: str) -> str | None:
    """Our name inside a frequency block for the part of an official key after ``fre{k}.``; ``None`` if unknown."""
    if rest in _PARAMS:
        return _PARAMS[rest]
    for old, new in _MODULE_RENAMES:
        if rest.startswith(old):
            tail = rest[len(old) :]
            if new.endswith("_attn."):
                return new + _ATTENTION_RENAMES[tail] if tail in _ATTENTION_RENAMES else None
            return new + tail
    return None


def convert_pair(key: str, value: Tensor) -> tuple[str, Tensor]:
    """Our name for one official entry: ``fre{k}`` (``k`` = 1, 2, 3) is ``head.blocks.dec{4 - k}``, the rest
    goes to ``net.`` through the Restormer rules; an unknown key inside ``fre{k}`` becomes ``head.<key>``, so that
    every key stays under ``net.``/``head.`` and a strict load names it."""
    m = _FREQUENCY_MODULE.match(key)
    if m:
        inner = _inner_key(key[m.end() :])
        return (f"head.blocks.dec{4 - int(m[1])}.{inner}" if inner is not None else f"head.{key}"), value
    return "net." + restormer.convert_key(key), value


def convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename an official AdaIR state dict to our ``net.*``/``head.*`` keys (strictness is load_strict's job)."""
    return rename_keys(state_dict, convert_pair)
