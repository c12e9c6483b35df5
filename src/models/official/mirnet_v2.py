"""Official MIRNet-v2 (swz30/MIRNetv2, ``basicsr/models/archs/mirnet_v2_arch.py``) -> our :class:`MIRNetV2`.

Renames: ``conv_in``/``conv_out`` -> ``head``/``tail``; ``body.<g>`` (the four groups) -> ``groups.<g>``, and in a
group ``body.<m>`` -> ``mrbs.<m>`` with its last index the group's ``conv``; in an MRB ``dau_top|mid|bot`` ->
``rcbs.0|1|2``, ``down2.body.0.bot.1`` -> ``down_mid.0.conv``, ``down4.<i>.body.0.bot.1`` -> ``down_bot.<i>.conv``,
``up21_<r>``/``up32_<r>`` ``.body.0.bot.0`` -> ``up_top.<r-1>``/``up_mid.<r-1>`` ``.conv``, ``skff_top|mid`` ->
``fuse_top|mid`` (``conv_du.0`` -> ``squeeze``, ``fcs.<i>`` -> ``excite.<i>``), ``conv_out`` -> ``conv``; in a
residual context block ``body.0``/``body.2`` -> ``conv1``/``conv2``, ``gcnet.conv_mask`` -> ``context.mask``,
``gcnet.channel_add_conv.0|2`` -> ``context.add1|add2``. Released files are BasicSR's ``{"params": ...}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor

from src.models.backbones.mirnet_v2 import MIRNetV2
from src.models.official.wrapper import OfficialWrapper, Rules, apply_rules, highest_index, rename_keys

ARGUMENTS = ("inp_channels", "out_channels", "n_feat", "chan_factor", "n_RRG", "n_MRB", "height", "width",
             "scale", "bias", "task")
_GROUP = re.compile(r"^body\.(\d+)\.body\.(\d+)\.(weight|bias)$")
RULES: Rules = (
    (r"^conv_in\.", "head."),
    (r"^conv_out\.", "tail."),
    (r"^body\.(\d+)\.body\.(\d+)\.", r"groups.\1.mrbs.\2."),
    (r"\.dau_top\.", ".rcbs.0."),
    (r"\.dau_mid\.", ".rcbs.1."),
    (r"\.dau_bot\.", ".rcbs.2."),
    (r"\.down2\.body\.0\.bot\.1\.", ".down_mid.0.conv."),
    (r"\.down4\.(\d)\.body\.0\.bot\.1\.", r".down_bot.\1.conv."),
    (r"\.up21_(\d)\.body\.0\.bot\.0\.", lambda m: f".up_top.{int(m[1]) - 1}.conv."),
    (r"\.up32_(\d)\.body\.0\.bot\.0\.", lambda m: f".up_mid.{int(m[1]) - 1}.conv."),
    (r"\.skff_(top|mid)\.conv_du\.0\.", r".fuse_\1.squeeze."),
    (r"\.skff_(top|mid)\.fcs\.(\d+)\.", r".fuse_\1.excite.\2."),
    (r"\.mrbs\.(\d+)\.conv_out\.", r".mrbs.\1.conv."),
    (r"\.gcnet\.conv_mask\.", ".context.mask."),
    (r"\.gcnet\.channel_add_conv\.0\.", ".context.add1."),
    (r"\.gcnet\.channel_add_conv\.2\.", ".context.add2."),
    (r"\.body\.0\.(weight|bias)$", r".conv1.\1"),
    (r"\.body\.2\.(weight|bias)$", r".conv2.\1"),
)


def build(official_kwargs: Mapping, **options) -> OfficialWrapper:
    """Our MIRNet-v2 configured like the official ``MIRNet_v2(**official_kwargs)``."""
    unknown = sorted(set(official_kwargs) - set(ARGUMENTS))
    if unknown:
        raise ValueError(
            f"unknown official MIRNet_v2 arguments: {', '.join(unknown)}; accepted: {', '.join(ARGUMENTS)}"
        )
    kwargs = dict(official_kwargs)
    if "inp_channels" in kwargs:
        kwargs["in_channels"] = kwargs.pop("inp_channels")
    return OfficialWrapper(MIRNetV2(**{**kwargs, **options}))


def convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Official keys -> ours (``net.*``); a key no rule matches is kept (prefixed), to be named by the load."""
    last = highest_index(state_dict, _GROUP)

    def rename(key: str, value: Tensor) -> tuple[str, Tensor]:
        if (m := _GROUP.match(key)) and int(m[2]) == last[m[1]]:
            return f"net.groups.{m[1]}.conv.{m[3]}", value  # the group's closing convolution
        return f"net.{apply_rules(key, RULES)}", value

    return rename_keys(state_dict, rename)
