"""Official NAFNet / NAFNetLocal (megvii-research/NAFNet, ``basicsr/models/archs``) -> our :class:`NAFNet`.

Both official classes share one state dict; NAFNetLocal (the GoPro models) only swaps the channel attention's
global pooling for a local one, chosen here with ``build(..., local=True)``. The official decoder lists
(``ups``, ``decoders``) run deepest first while ours are indexed by level, so the number of levels is read
from the state dict. Our keys are ``net.*`` (:class:`~src.models.official.wrapper.OfficialWrapper`); a key no
rule recognises comes back unchanged so that :func:`~src.models.official.load_strict` names it, rather than
being dropped here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor

from src.models.backbones.nafnet import NAFNet
from src.models.official.wrapper import OfficialWrapper, rename_keys

#: official ``NAFNet`` constructor argument -> ours.
ARG_NAMES: dict[str, str] = {
    "img_channel": "in_channels",
    "width": "width",
    "middle_blk_num": "middle_blk_num",
    "enc_blk_nums": "enc_blk_nums",
    "dec_blk_nums": "dec_blk_nums",
}
#: arguments that only ``NAFNetLocal`` takes, with the official defaults.
LOCAL_ARGS: dict[str, object] = {"train_size": (1, 3, 256, 256), "fast_imp": False}

#: official names inside a NAFBlock -> ours.
_BLOCK_PARTS: dict[str, str] = {
    "norm1": "mix_norm",
    "conv1": "mix_in",
    "conv2": "mix_dw",
    "sca.1": "sca.proj",
    "conv3": "mix_out",
    "beta": "beta",
    "norm2": "ffn_norm",
    "conv4": "ffn_in",
    "conv5": "ffn_out",
    "gamma": "gamma",
}
_BLOCK_PART = re.compile(r"^(norm[12]|conv[1-5]|sca\.1)\.(weight|bias)$|^(beta|gamma)$")
_LEVEL_KEY = re.compile(r"^(?:encoders|downs|ups|decoders)\.(\d+)\.")


def build(official_kwargs: Mapping, *, local: bool = False, **options) -> OfficialWrapper:
    """Our network configured like ``NAFNet(**official_kwargs)``, or ``NAFNetLocal`` when ``local``.

    Returned as :class:`OfficialWrapper` (``forward(x)`` returns the image; keys ``net.*``).

    With ``local``, ``official_kwargs`` may also hold NAFNetLocal's ``train_size`` (default ``(1, 3, 256, 256)``)
    and ``fast_imp`` (only ``False``: the fast approximation is not implemented). ``options`` are our extra
    arguments (e.g. ``global_residual``).
    """
    accepted = set(ARG_NAMES) | (set(LOCAL_ARGS) if local else set())
    unknown = sorted(set(official_kwargs) - accepted)
    if unknown:
        hint = " (NAFNetLocal arguments: pass local=True)" if set(unknown) & set(LOCAL_ARGS) else ""
        raise ValueError(
            f"unknown official NAFNet arguments: {', '.join(unknown)}{hint}; accepted: {', '.join(sorted(accepted))}"
        )
    kwargs = {
        ARG_NAMES[k]: tuple(v) if isinstance(v, list) else v for k, v in official_kwargs.items() if k in ARG_NAMES
    }
    if local:
        if official_kwargs.get("fast_imp", False):
            raise ValueError("NAFNetLocal fast_imp=True (an approximate pooling) is not implemented; use False")
        kwargs["local_pool_train_size"] = tuple(official_kwargs.get("train_size", LOCAL_ARGS["train_size"]))[-2:]
    clash = sorted(set(kwargs) & set(options))
    if clash:
        raise ValueError(f"options {', '.join(clash)} are already set by the official arguments")
    return OfficialWrapper(NAFNet(**{**kwargs, **options}))


def _block(prefix: str, rest: str) -> str | None:
    """``prefix`` + our name of a NAFBlock part, or ``None`` when ``rest`` is no such part."""
    m = _BLOCK_PART.match(rest)
    if m is None:
        return None
    part = m[1] or m[3]
    return prefix + _BLOCK_PARTS[part] + (f".{m[2]}" if m[2] else "")


def convert_key(key: str, levels: int) -> str | None:
    """Our backbone's name for one official key of a ``levels``-level network, ``None`` when unrecognised."""
    if key.split(".", 1)[0] in ("intro", "ending"):
        return key
    if m := re.match(r"^downs\.(\d+)\.(weight|bias)$", key):
        return f"encoders.{m[1]}.down.{m[2]}"
    if m := re.match(r"^ups\.(\d+)\.0\.weight$", key):
        return f"decoders.{levels - 1 - int(m[1])}.up.conv.weight"
    if m := re.match(r"^encoders\.(\d+)\.(\d+)\.(.+)$", key):
        return _block(f"encoders.{m[1]}.blocks.{m[2]}.", m[3])
    if m := re.match(r"^decoders\.(\d+)\.(\d+)\.(.+)$", key):
        return _block(f"decoders.{levels - 1 - int(m[1])}.blocks.{m[2]}.", m[3])
    if m := re.match(r"^middle_blks\.(\d+)\.(.+)$", key):
        return _block(f"middle.{m[1]}.", m[2])
    return None


def count_levels(state_dict: Mapping[str, Tensor]) -> int:
    """Number of U-Net levels in an official state dict (highest encoder/decoder index + 1)."""
    indices = [int(m[1]) for k in state_dict if (m := _LEVEL_KEY.match(k))]
    return max(indices) + 1 if indices else 0


def convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename an official state dict to our ``net.*`` keys; two official keys landing on one name is an error.

    Unrecognised keys keep their official name (without ``net.``), so the strict load names them as they were.
    """
    levels = count_levels(state_dict)

    def rename(key: str, value: Tensor) -> tuple[str, Tensor]:
        new = convert_key(key, levels)
        return (key if new is None else f"net.{new}"), value

    return rename_keys(state_dict, rename)
