"""Official MIRNet (swz30/MIRNet, ``networks/MIRNet_model.py``) -> our :class:`MIRNet`.

Renames: ``conv_in``/``conv_out`` -> ``head``/``tail``; ``body.<g>`` -> ``groups.<g>``, in a group ``body.<m>`` ->
``msrbs.<m>`` with the last index the group's ``conv``; in an MSRB the resampler wrappers' ``body`` level is
dropped (``down.64_4.body.0.top.0`` -> ``down.64_4.0.top.0``), ``selective_kernel`` -> ``fuse`` (``conv_du.0|1``
-> ``squeeze``/``act``, ``fcs`` -> ``excite``), ``conv_out`` -> ``conv``; in a DAU ``body.0|1|2`` ->
``conv1``/``act``/``conv2``, ``SA.spatial.conv`` -> ``spatial``, ``CA.conv_du.0|2`` -> ``squeeze``/``excite``,
``conv1x1`` -> ``fuse``. The aliased keys (a scale's DAU under every column, the one PReLU under every DAU)
exist on both sides. Released files are ``{"state_dict": ...}`` of a DataParallel model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor

from src.models.backbones.mirnet import MIRNet
from src.models.official.wrapper import OfficialWrapper, Rules, apply_rules, highest_index, rename_keys

ARGUMENTS = ("in_channels", "out_channels", "n_feat", "kernel_size", "stride", "n_RRG", "n_MSRB", "height",
             "width", "bias")
_GROUP = re.compile(r"^body\.(\d+)\.body\.(\d+)\.(weight|bias)$")
RULES: Rules = (
    (r"^conv_in\.", "head."),
    (r"^conv_out\.", "tail."),
    (r"^body\.(\d+)\.body\.(\d+)\.", r"groups.\1.msrbs.\2."),
    (r"\.(down|up|last_up)\.(\w+)\.body\.", r".\1.\2."),
    (r"(\.blocks\.\d+\.\d+)\.body\.0\.", r"\1.conv1."),
    (r"(\.blocks\.\d+\.\d+)\.body\.1\.", r"\1.act."),
    (r"(\.blocks\.\d+\.\d+)\.body\.2\.", r"\1.conv2."),
    (r"\.SA\.spatial\.conv\.", ".spatial."),
    (r"\.CA\.conv_du\.0\.", ".squeeze."),
    (r"\.CA\.conv_du\.2\.", ".excite."),
    (r"\.conv1x1\.", ".fuse."),
    (r"\.selective_kernel\.(\d+)\.conv_du\.0\.", r".fuse.\1.squeeze."),
    (r"\.selective_kernel\.(\d+)\.conv_du\.1\.", r".fuse.\1.act."),
    (r"\.selective_kernel\.(\d+)\.fcs\.", r".fuse.\1.excite."),
    (r"(\.msrbs\.\d+)\.conv_out\.", r"\1.conv."),
)


def build(official_kwargs: Mapping, **options) -> OfficialWrapper:
    """Our MIRNet configured like the official ``MIRNet(**official_kwargs)``."""
    unknown = sorted(set(official_kwargs) - set(ARGUMENTS))
    if unknown:
        raise ValueError(f"unknown official MIRNet arguments: {', '.join(unknown)}; accepted: {', '.join(ARGUMENTS)}")
    return OfficialWrapper(MIRNet(**{**official_kwargs, **options}))


def convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Official keys -> ours (``net.*``); a key no rule matches is kept (prefixed), to be named by the load."""
    last = highest_index(state_dict, _GROUP)

    def rename(key: str, value: Tensor) -> tuple[str, Tensor]:
        if (m := _GROUP.match(key)) and int(m[2]) == last[m[1]]:
            return f"net.groups.{m[1]}.conv.{m[3]}", value
        return f"net.{apply_rules(key, RULES)}", value

    return rename_keys(state_dict, rename)
