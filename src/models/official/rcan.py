"""Official RCAN (yulunzhang/RCAN ``RCAN_TrainCode/code/model/rcan.py``) -> our
:class:`~src.models.backbones.rcan.RCAN`.

As EDSR (:mod:`src.models.official.edsr`): ``official_kwargs`` is ``{"args": {...}}`` with the fields RCAN reads
(``n_resgroups``, ``n_resblocks``, ``n_feats``, ``reduction``, ``scale``, ``rgb_range``, ``n_colors``;
``res_scale`` is accepted and unused, as in the official code), and ``ours(x) == official(255 * x) / 255``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from src.models.backbones.rcan import RCAN
from src.models.official.edsr import FRAME_RULES, build_with
from src.models.official.wrapper import OfficialWrapper, Rules, rename_by_rules

#: ``option.py`` defaults of the fields RCAN reads (``res_scale`` is passed down and never applied)
DEFAULT_ARGS: dict[str, Any] = {"n_resgroups": 10, "n_resblocks": 20, "n_feats": 64, "reduction": 16,
                                "scale": [2], "rgb_range": 255, "n_colors": 3, "res_scale": 1.0}
RULES: Rules = [
    (r"^body\.(\d+)\.body\.(\d+)\.body\.0\.", r"body.\1.blocks.\2.conv1."),
    (r"^body\.(\d+)\.body\.(\d+)\.body\.2\.", r"body.\1.blocks.\2.conv2."),
    (r"^body\.(\d+)\.body\.(\d+)\.body\.3\.conv_du\.0\.", r"body.\1.blocks.\2.attention.squeeze."),
    (r"^body\.(\d+)\.body\.(\d+)\.body\.3\.conv_du\.2\.", r"body.\1.blocks.\2.attention.excite."),
    (r"^body\.(\d+)\.body\.\d+\.(weight|bias)$", r"body.\1.end.\2"),  # a group's closing convolution
    *FRAME_RULES,
]


def _make(res_scale: float = 1.0, **kwargs: Any) -> RCAN:
    return RCAN(**kwargs)


def build(official_kwargs: Mapping, **options) -> OfficialWrapper:
    """Our RCAN configured like ``RCAN(args)``; ``forward(x)`` takes and returns ``[0, 1]`` images."""
    return build_with(official_kwargs, options, DEFAULT_ARGS, "RCAN", _make)


def convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Official keys -> ours (``net.*``)."""
    return rename_by_rules(state_dict, RULES)
