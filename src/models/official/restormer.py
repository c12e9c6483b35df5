"""Official Restormer (swz30/Restormer, ``basicsr/models/archs/restormer_arch.py``) -> our :class:`Restormer`.

The official forward needs H and W to be multiples of 8; ours pads and crops, and gives the same output on
such sizes. Official keys are renamed by rules; a key no rule recognises is passed through unchanged so that
:func:`~src.models.official.load_strict` reports it, rather than being dropped here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from torch import Tensor

from src.models.backbones.restormer import Restormer
from src.models.official.wrapper import OfficialWrapper

#: official constructor argument -> ours.
ARG_NAMES: dict[str, str] = {
    "inp_channels": "in_channels",
    "out_channels": "out_channels",
    "dim": "dim",
    "num_blocks": "num_blocks",
    "num_refinement_blocks": "num_refinement_blocks",
    "heads": "heads",
    "ffn_expansion_factor": "ffn_expansion_factor",
    "bias": "bias",
    "LayerNorm_type": "layernorm_type",
    "dual_pixel_task": "dual_pixel_task",
}

_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


def _rule(pattern: str, replace: Callable[[re.Match[str]], str] | str) -> _Rule:
    return re.compile(pattern), replace if callable(replace) else (lambda _m, r=replace: r)


def _level(m: re.Match[str], group: int = 1) -> int:
    """Official levels count from 1 (``encoder_level1``); ours from 0."""
    return int(m[group]) - 1


# Top-level modules: official ``encoder_levelN``/``downN_M`` belong to our ``encoders[N-1]``; ``upN_M``,
# ``reduce_chan_levelM`` and ``decoder_levelM`` to our ``decoders[M-1]``.
_MODULE_RULES: list[_Rule] = [
    _rule(r"^patch_embed\.proj\.", "embed."),
    _rule(r"^encoder_level(\d+)\.", lambda m: f"encoders.{_level(m)}.blocks."),
    _rule(r"^down(\d+)_\d+\.body\.0\.", lambda m: f"encoders.{_level(m)}.down.conv."),
    _rule(r"^latent\.", "latent."),
    _rule(r"^up\d+_(\d+)\.body\.0\.", lambda m: f"decoders.{_level(m)}.up.conv."),
    _rule(r"^reduce_chan_level(\d+)\.", lambda m: f"decoders.{_level(m)}.fuse."),
    _rule(r"^decoder_level(\d+)\.", lambda m: f"decoders.{_level(m)}.blocks."),
    _rule(r"^refinement\.", "refinement."),
    _rule(r"^skip_conv\.", "skip."),
    _rule(r"^output\.", "output."),
]

# Inside a transformer block (applied only to keys a module rule recognised).
_BLOCK_RENAMES: dict[str, str] = {
    ".norm1.body.": ".attn_norm.",
    ".norm2.body.": ".ffn_norm.",
    ".attn.qkv_dwconv.": ".attn.qkv_dw.",
    ".attn.project_out.": ".attn.proj.",
    ".ffn.project_in.": ".ffn.proj_in.",
    ".ffn.dwconv.": ".ffn.dw.",
    ".ffn.project_out.": ".ffn.proj_out.",
}


def build(official_kwargs: Mapping, **options) -> OfficialWrapper:
    """:func:`build_backbone` wrapped so that ``forward(x)`` returns the image, like the official module."""
    return OfficialWrapper(build_backbone(official_kwargs, **options))


def build_backbone(official_kwargs: Mapping, **options) -> Restormer:
    """Our Restormer configured like ``Restormer(**official_kwargs)``; ``options`` are our extra arguments.

    Missing official arguments take the official defaults, which are ours too. The global residual follows
    the official rule (off for the dual-pixel task) unless ``options`` set ``global_residual``.
    """
    unknown = sorted(set(official_kwargs) - set(ARG_NAMES))
    if unknown:
        raise ValueError(
            f"unknown official Restormer arguments: {', '.join(unknown)}; accepted: {', '.join(ARG_NAMES)}"
        )
    kwargs = {ARG_NAMES[k]: tuple(v) if isinstance(v, list) else v for k, v in official_kwargs.items()}
    clash = sorted(set(kwargs) & set(options))
    if clash:
        raise ValueError(f"options {', '.join(clash)} are already set by the official arguments")
    kwargs.setdefault("global_residual", not kwargs.get("dual_pixel_task", False))
    return Restormer(**{**kwargs, **options})


def convert_key(key: str) -> str:
    """Our name for one official key; an unrecognised key comes back unchanged."""
    for pattern, replace in _MODULE_RULES:
        m = pattern.match(key)
        if m:
            key = replace(m) + key[m.end() :]
            for old, new in _BLOCK_RENAMES.items():
                key = key.replace(old, new)
            return key
    return key


def convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename an official state dict to the keys of :func:`build` (``net.*``).

    An unrecognised key keeps its official name (so the strict load reports it as it was given); two
    official keys landing on one name is an error.
    """
    out: dict[str, Tensor] = {}
    source: dict[str, str] = {}
    for key, value in state_dict.items():
        new = f"net.{convert_key(key)}" if any(p.match(key) for p, _ in _MODULE_RULES) else key
        if new in out:
            raise ValueError(f"official keys {source[new]!r} and {key!r} both map to {new!r}")
        out[new], source[new] = value, key
    return out
