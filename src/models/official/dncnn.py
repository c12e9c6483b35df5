"""Official DnCNN (cszn/KAIR, ``models/network_dncnn.py``) -> our :class:`DnCNN`.

KAIR flattens its layers into one ``nn.Sequential`` named ``model``, so convolutions, batch norms and
activations share one index space: with ``act_mode='BR'`` the layers run conv, ReLU, then (conv, BN, ReLU)
blocks, then conv (``model.0``, ``model.2``, ``model.3``, ..., ``model.<last>``); with the batch-norm-folded
``'R'`` (the released ``dncnn_*.pth``) the blocks are (conv, ReLU). The layout is read from the keys
(batch-norm statistics present or not). Our keys are ``net.*`` (:class:`~src.models.official.wrapper.OfficialWrapper`);
a key no rule recognises comes back unchanged so that :func:`~src.models.official.load_strict` names it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor

from src.models.backbones.dncnn import DnCNN
from src.models.official.wrapper import OfficialWrapper, rename_keys

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


def build(official_kwargs: Mapping, **options) -> OfficialWrapper:
    """Our DnCNN configured like KAIR's ``DnCNN(**official_kwargs)`` (official defaults for missing ones).

    Returned as :class:`OfficialWrapper`: ``forward(x)`` returns the denoised image; keys are ``net.*``.
    """
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
    return OfficialWrapper(DnCNN(**{**kwargs, **options}))


def convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename KAIR's ``model.<index>.*`` keys to our ``net.*``; two keys landing on one name is an error.

    Index 0 is the first convolution and the highest index the last; in between, hidden layer ``k`` starts at
    ``2 + stride * k`` with stride 3 (conv, BN, act) when batch-norm keys are present, else 2 (conv, act).
    """
    indices = {int(m[1]) for k in state_dict if (m := _KEY.match(k))}
    last = max(indices, default=0)
    with_bn = any(k.endswith(_BN_BUFFERS) for k in state_dict)
    stride = 3 if with_bn else 2

    def ours(key: str) -> str | None:
        m = _KEY.match(key)
        if m is None:
            return None
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
        return None  # at an activation's index: nothing of ours lives there

    def rename(key: str, value: Tensor) -> tuple[str, Tensor]:
        new = ours(key)
        return (key if new is None else f"net.{new}"), value

    return rename_keys(state_dict, rename)
