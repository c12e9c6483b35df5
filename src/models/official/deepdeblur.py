"""Official DeepDeblur (SeungjunNah/DeepDeblur-PyTorch, ``src/model/MSResNet.py``) -> our :class:`DeepDeblur`.

The official constructor takes the training script's ``args`` namespace (``{"args": {...}}`` here) and names
its parts ``body_models.<scale>.body.<index>`` (index 0 the first convolution, 1..n the residual blocks with
their convolutions at ``body.0`` and ``body.2``, n+1 the last) and ``conv_end_models.<scale>.uppath.0`` (scale
0 has none). Released files hold the network under ``G`` (``{"G": ..., "D": ...}`` with adversarial
training), which :func:`src.utils.weights.load_state_dict_file` unwraps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor

from src.models.backbones.deepdeblur import DeepDeblur
from src.models.official.wrapper import OfficialWrapper, highest_index, rename_keys

#: official ``args`` fields the network reads -> our arguments
ARG_NAMES = {"n_scales": "n_scales", "n_resblocks": "n_resblocks", "n_feats": "n_feats",
             "kernel_size": "kernel_size", "rgb_range": "rgb_range", "n_colors": "channels"}
_BODY = re.compile(r"^body_models\.(\d+)\.body\.(\d+)\.(?:body\.(\d+)\.)?(weight|bias)$")
_UP = re.compile(r"^conv_end_models\.(\d+)\.uppath\.0\.(weight|bias)$")


class DeepDeblurWrapper(OfficialWrapper):
    """Called as the reference calls the official network: ``net(x)`` (pyramid built inside) or
    ``net(x, [x1, x2])`` with the coarser levels given; returns the restored finest level."""

    def forward(self, x: Tensor, pyramid: list[Tensor] | None = None) -> Tensor:
        if pyramid is None:
            return self.net(x)[0]
        return self.net.restore_pyramid([x, *pyramid])[0]


def build(official_kwargs: Mapping, **options) -> DeepDeblurWrapper:
    """Our DeepDeblur configured like ``MSResNet(args)`` with ``official_kwargs = {"args": {...}}``."""
    args = dict(official_kwargs.get("args", official_kwargs))
    unknown = sorted(set(args) - set(ARG_NAMES))
    if unknown:
        raise ValueError(f"unknown official MSResNet arguments: {', '.join(unknown)}; accepted: {', '.join(ARG_NAMES)}")
    kwargs = {ARG_NAMES[k]: v for k, v in args.items()}
    return DeepDeblurWrapper(DeepDeblur(**{**kwargs, **options}))


def convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Official keys -> ours (``net.*``); a key no rule recognises comes back unchanged, to be named by the load."""
    blocks = highest_index(state_dict, _BODY)  # per scale: the index of its last convolution

    def rename(key: str, value: Tensor) -> tuple[str, Tensor]:
        if m := _UP.match(key):
            return f"net.ups.{int(m[1]) - 1}.conv.{m[2]}", value
        m = _BODY.match(key)
        if m is None:
            return key, value
        scale, index, inner, name = int(m[1]), int(m[2]), m[3], m[4]
        if inner is None and index == 0:
            return f"net.levels.{scale}.head.{name}", value
        if inner is None and index == blocks[m[1]]:
            return f"net.levels.{scale}.tail.{name}", value
        if inner in ("0", "2"):
            return f"net.levels.{scale}.blocks.{index - 1}.conv{1 if inner == '0' else 2}.{name}", value
        return key, value

    return rename_keys(state_dict, rename)
