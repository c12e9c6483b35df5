"""Official DnCNN (cszn/KAIR, ``models/network_dncnn.py``) -> our :class:`DnCNN`.

KAIR flattens its layers into one ``nn.Sequential`` named ``model``, so convolutions, batch norms and
activations share one index space: with ``act_mode='BR'`` the layers run conv, ReLU, then (conv, BN, ReLU)
blocks, then conv (``model.0``, ``model.2``, ``model.3``, ..., ``model.<last>``); with the batch-norm-folded
``'R'`` (the released ``dncnn_*.pth``) the blocks are (conv, ReLU). The layout is read from the keys
(batch-norm statistics present or not). A key no rule recognises comes back unchanged so that
:func:`~src.models.official.load_strict` names it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor

from src.models.backbones.dncnn import DnCNN

#: official constructor argument -> ours (``act_mode`` is split into ``batch_norm`` and ``activation``).
ARG_NAMES: dict[str, str] = {"in_nc": "in_channels", "out_nc": "out_channels", "nc": "channels", "nb": "depth"}
#: KAIR ``act_mode`` values we reproduce -> (batch_norm, activation).
ACT_MODES: dict[str, tuple[bool, str]] = {
    "BR": (True, "relu"),
    "R": (False, "relu"),
    "BL": (True, "leaky_relu"),
    "L": (False, "leaky_relu"),
}
_KEY = re.compile(r"^model\.(\d+)\.(\w+)$")
_BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


class DnCNNImage(DnCNN):
    """Our DnCNN with the official call signature: ``forward(x)`` returns only the denoised image."""

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        return super().forward(x)[0]


def build(official_kwargs: Mapping, **options) -> DnCNNImage:
    """Our DnCNN configured like KAIR's ``DnCNN(**official_kwargs)`` (official defaults for missing ones)."""
    accepted = [*ARG_NAMES, "act_mode"]
    unknown = sorted(set(official_kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"unknown official DnCNN arguments: {', '.join(unknown)}; accepted: {', '.join(accepted)}")
    act_mode = official_kwargs.get("act_mode", "BR")
    if act_mode not in ACT_MODES:
        raise ValueError(f"DnCNN act_mode {act_mode!r} is not supported; supported: {', '.join(ACT_MODES)}")
    kwargs = {ARG_NAMES[k]: v for k, v in official_kwargs.items() if k in ARG_NAMES}
    kwargs.setdefault("in_channels", 1)
    kwargs.setdefault("out_channels", 1)
    kwargs["batch_norm"], kwargs["activation"] = ACT_MODES[act_mode]
    clash = sorted(set(kwargs) & set(options))
    if clash:
        raise ValueError(f"options {', '.join(clash)} are already set by the official arguments")
    return DnCNNImage(**{**kwargs, **options})


def convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename KAIR's ``model.<index>.*`` keys to ours; two keys landing on one name is an error.

    Index 0 is the first convolution and the highest index the last; in between, hidden layer ``k`` starts at
    ``2 + stride * k`` with stride 3 (conv, BN, act) when batch-norm keys are present, else 2 (conv, act).
    """
    indices = {int(m[1]) for k in state_dict if (m := _KEY.match(k))}
    last = max(indices, default=0)
    with_bn = any(k.endswith(_BN_BUFFERS) for k in state_dict)
    stride = 3 if with_bn else 2

    def rename(key: str) -> str:
        m = _KEY.match(key)
        if m is None:
            return key
        index, name = int(m[1]), m[2]
        if index == 0:
            return f"first.{name}"
        if index == last:
            return f"last.{name}"
        layer, offset = divmod(index - 2, stride)
        if index >= 2 and offset == 0:
            return f"body.{layer}.conv.{name}"
        if index >= 2 and offset == 1 and with_bn:
            return f"body.{layer}.norm.{name}"
        return key  # at an activation's index: nothing of ours lives there

    out: dict[str, Tensor] = {}
    source: dict[str, str] = {}
    for key, value in state_dict.items():
        new = rename(key)
        if new in out:
            raise ValueError(f"official keys {source[new]!r} and {key!r} both map to {new!r}")
        out[new], source[new] = value, key
    return out
