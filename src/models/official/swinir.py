"""Official SwinIR (JingyunLiang/SwinIR, ``models/network_swinir.py``) -> our :class:`SwinIR`.

Only the same-size configurations are accepted (``upscale=1``, ``upsampler=''``: colour/grayscale denoising and
JPEG artefact removal); the super-resolution tails are refused by name. The official module names its groups
``layers.<i>.residual_group`` and the embedding norm ``patch_embed.norm``; ours are ``groups.<i>`` and
``embed_norm``. Our keys are ``net.*`` (:class:`~src.models.official.wrapper.OfficialWrapper`); a key no rule
recognises comes back unchanged so that :func:`~src.models.official.load_strict` names it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor

from src.models.backbones.swinir import SwinIR
from src.models.official.wrapper import OfficialWrapper, rename_keys

#: official constructor argument -> ours.
ARG_NAMES: dict[str, str] = {
    "in_chans": "in_channels",
    "img_size": "img_size",
    "window_size": "window_size",
    "embed_dim": "embed_dim",
    "depths": "depths",
    "num_heads": "num_heads",
    "mlp_ratio": "mlp_ratio",
    "qkv_bias": "qkv_bias",
    "qk_scale": "qk_scale",
    "drop_rate": "drop_rate",
    "attn_drop_rate": "attn_drop_rate",
    "drop_path_rate": "drop_path_rate",
    "patch_norm": "patch_norm",
    "resi_connection": "resi_connection",
    "img_range": "img_range",
    "use_checkpoint": "grad_checkpoint",
}
#: official arguments accepted only at the value that our network implements.
FIXED_ARGS: dict[str, tuple[object, ...]] = {
    "upscale": (1,),
    "upsampler": ("", None),
    "patch_size": (1,),
    "ape": (False,),
}

_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^patch_embed\.norm\."), "embed_norm."),
    (re.compile(r"^layers\.(\d+)\.residual_group\.blocks\."), r"groups.\1.blocks."),
    (re.compile(r"^layers\.(\d+)\.conv\."), r"groups.\1.conv."),
    (re.compile(r"^(conv_first|norm|conv_after_body|conv_last)\."), r"\1."),
]


def build(official_kwargs: Mapping, **options) -> OfficialWrapper:
    """Our network configured like ``SwinIR(**official_kwargs)`` (keys ``net.*``; ``forward(x)`` gives the image)."""
    unknown = sorted(set(official_kwargs) - set(ARG_NAMES) - set(FIXED_ARGS))
    if unknown:
        raise ValueError(
            f"unknown official SwinIR arguments: {', '.join(unknown)}; "
            f"accepted: {', '.join(sorted({*ARG_NAMES, *FIXED_ARGS}))}"
        )
    for name, allowed in FIXED_ARGS.items():
        if name in official_kwargs and official_kwargs[name] not in allowed:
            raise ValueError(
                f"official SwinIR {name}={official_kwargs[name]!r} is not implemented (only {allowed[0]!r}): "
                "this SwinIR is the same-size restoration network (denoising, JPEG)"
            )
    kwargs = {
        ARG_NAMES[k]: tuple(v) if isinstance(v, list) else v for k, v in official_kwargs.items() if k in ARG_NAMES
    }
    clash = sorted(set(kwargs) & set(options))
    if clash:
        raise ValueError(f"options {', '.join(clash)} are already set by the official arguments")
    return OfficialWrapper(SwinIR(**{**kwargs, **options}))


def convert_key(key: str) -> str | None:
    """Our backbone's name for one official key, ``None`` when no rule recognises it."""
    for pattern, replacement in _RULES:
        if pattern.match(key):
            return pattern.sub(replacement, key, count=1)
    return None


def convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename an official state dict to our ``net.*`` keys; unrecognised keys keep their official name."""

    def rename(key: str, value: Tensor) -> tuple[str, Tensor]:
        new = convert_key(key)
        return (key if new is None else f"net.{new}"), value

    return rename_keys(state_dict, rename)
