"""Official EDSR (sanghyun-son/EDSR-PyTorch ``model/edsr.py``) -> our :class:`~src.models.backbones.edsr.EDSR`.

The official constructor takes the training script's ``args`` namespace; ``official_kwargs`` is
``{"args": {...}}`` with the fields it reads (``n_resblocks``, ``n_feats``, ``scale`` (a list, the first used),
``rgb_range``, ``n_colors``, ``res_scale``), missing ones at ``option.py``'s defaults. Its network works on
``[0, rgb_range]``; ours takes ``[0, 1]`` and scales inside, so ``ours(x) == official(255 * x) / 255``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor

from src.models.backbones.edsr import EDSR
from src.models.official.wrapper import OfficialWrapper, Rules, rename_by_rules

#: ``option.py`` defaults of the fields EDSR reads
DEFAULT_ARGS: dict[str, Any] = {"n_resblocks": 16, "n_feats": 64, "scale": [4], "rgb_range": 255, "n_colors": 3,
                                "res_scale": 1.0}

#: the frame EDSR and RCAN share: mean shifts, head, the up-sampler's convolutions (official index 2k), last
FRAME_RULES: Rules = [
    (r"^sub_mean\.", "mean_in."),
    (r"^add_mean\.", "mean_out."),
    (r"^head\.0\.", "head."),
    (r"^tail\.0\.(\d+)\.", lambda m: f"upsample.{int(m[1]) // 2}.conv."),
    (r"^tail\.1\.", "last."),
]
RULES: Rules = [
    (r"^body\.(\d+)\.body\.0\.", r"body.\1.conv1."),
    (r"^body\.(\d+)\.body\.2\.", r"body.\1.conv2."),
    *FRAME_RULES,
]


def official_args(official_kwargs: Mapping, defaults: Mapping[str, Any], network: str) -> dict[str, Any]:
    """The ``args`` fields, defaults filled in; an unknown field or a scale list of several is an error."""
    unknown = sorted(set(official_kwargs) - {"args"})
    if unknown:
        raise ValueError(f"official {network} takes one argument, args; got {', '.join(unknown)}")
    args = dict(official_kwargs.get("args", {}))
    extra = sorted(set(args) - set(defaults))
    if extra:
        raise ValueError(f"unknown official {network} args: {', '.join(extra)}; read: {', '.join(defaults)}")
    args = {**defaults, **args}
    scale = args["scale"]
    args["scale"] = int(scale[0] if isinstance(scale, (list, tuple)) else scale)
    return args


def build_with(official_kwargs: Mapping, options: Mapping, defaults: Mapping[str, Any], network: str,
               make: Callable[..., Any]) -> OfficialWrapper:
    args = official_args(official_kwargs, defaults, network)
    clash = sorted(set(args) & set(options))
    if clash:
        raise ValueError(f"options {', '.join(clash)} are already set by the official arguments")
    return OfficialWrapper(make(**args, **options))


def build(official_kwargs: Mapping, **options) -> OfficialWrapper:
    """Our EDSR configured like ``EDSR(args)``; ``forward(x)`` takes and returns ``[0, 1]`` images."""
    return build_with(official_kwargs, options, DEFAULT_ARGS, "EDSR", EDSR)


def convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Official keys -> ours (``net.*``)."""
    return rename_by_rules(state_dict, RULES)
