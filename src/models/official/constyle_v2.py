"""Official ConStyle v2 (Dongqi-Fan/ConStyle_v2: ``ConStyle_v2`` prompter, ``ConStyleNAFNet``) -> ours.

``net_g`` keys map to :class:`ConStyleNAFNet` by module (``Preprocess_Module.0`` -> ``intro``,
``Process_Module_l<i>`` -> ``encoders.<i-1>``, ``DC<i>.down.0`` -> ``downs.<i-1>.conv``, ``Process_Module_bottom``
-> ``middle``, ``local_fusion`` -> ``fusion``, ``UC<i>.up.0`` / ``UC<i>.down`` -> ``ups.<i-1>.conv`` / ``.merge``,
``Process_Module_r<i>`` -> ``decoders.<i-1>``, ``Finetune_Module.0`` -> ``outro``, ``mlp.0`` -> ``prompt_proj``,
``AffineTransform<i>.0`` -> ``feature_proj.<i>.0``, ``ConStyle.encoder_q`` -> ``prompter``) and NAFBlock parts as
NAFNet's converter names them; the training form's momentum encoder and queue (``ConStyle.encoder_k``,
``queue``, ``queue_ptr``) go beside the restorer (:class:`TrainingRestorer`). A pre-trained prompter (the
``ConStyle_v2`` checkpoint: ``encoder_q.*``) maps to :class:`~src.models.layers.constyle.StyleEncoder` by dropping
``encoder_q.`` (:func:`convert_prompter`), or whole to :class:`ConStyleMoCo`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor, nn

from src.models.backbones.constyle_nafnet import ConStyleNAFNet
from src.models.layers.constyle import ConStyleMoCo, MomentumKeys
from src.models.official.nafnet import _BLOCK_PART, _BLOCK_PARTS
from src.models.official.wrapper import OfficialWrapper, rename_keys

ARG_NAMES = {"img_channel": "in_channels", "dim": "width", "left_blk_num": "left_blocks",
             "bottom_blk_num": "bottom_blocks", "right_blk_num": "right_blocks"}
_MODULES = [
    (re.compile(r"^ConStyle\.encoder_q\."), "prompter."),
    (re.compile(r"^Preprocess_Module\.0\."), "intro."),
    (re.compile(r"^local_fusion\."), "fusion."),
    (re.compile(r"^Finetune_Module\.0\."), "outro."),
    (re.compile(r"^mlp\.0\."), "prompt_proj."),
]
_BLOCKS = re.compile(r"^Process_Module_(l1|l2|l3|bottom|r1|r2|r3)\.(\d+)\.(.+)$")
_STAGE = {"l1": "encoders.0", "l2": "encoders.1", "l3": "encoders.2", "bottom": "middle", "r1": "decoders.0",
          "r2": "decoders.1", "r3": "decoders.2"}
_OTHER = [(re.compile(r"^DC(\d)\.down\.0\.(.+)$"), lambda m: f"downs.{int(m[1]) - 1}.conv.{m[2]}"),
          (re.compile(r"^UC(\d)\.up\.0\.(.+)$"), lambda m: f"ups.{int(m[1]) - 1}.conv.{m[2]}"),
          (re.compile(r"^UC(\d)\.down\.(.+)$"), lambda m: f"ups.{int(m[1]) - 1}.merge.{m[2]}"),
          (re.compile(r"^AffineTransform(\d)\.0\.(.+)$"), lambda m: f"feature_proj.{m[1]}.0.{m[2]}")]
#: the release's training-only parts of net_g's prompter
TRAINING_ONLY = re.compile(r"^ConStyle\.(encoder_k\.|queue$|queue_ptr$)")


class TrainingRestorer(OfficialWrapper):
    """The release's ``ConStyleNAFNet(Train=True)``: our restorer and, beside it, the training-only momentum
    encoder and queue its prompter carried (``momentum``), so such checkpoints load strictly."""

    def __init__(self, net: ConStyleNAFNet) -> None:
        super().__init__(net)
        self.momentum = MomentumKeys(classes=None)


def build(official_kwargs: Mapping, **options) -> nn.Module:
    """Ours configured like the release's class ``official_class`` (default ``ConStyleNAFNet``) with its arguments:
    the restorer (``Train``: with the training-only parts beside it), or the ``ConStyle_v2`` prompter in its
    pre-training form (:class:`ConStyleMoCo`; ``Train=False``: the query encoder only)."""
    kwargs = dict(official_kwargs)
    official_class = kwargs.pop("official_class", "ConStyleNAFNet")
    train = bool(kwargs.pop("Train", True))
    if official_class == "ConStyle_v2":
        unknown = sorted(set(kwargs) - {"dim", "K", "m", "T"})
        if unknown:
            raise ValueError(f"unknown official ConStyle_v2 arguments: {', '.join(unknown)}")
        return ConStyleMoCo(queue_size=int(kwargs.get("K", 65760)), train=train)
    if official_class != "ConStyleNAFNet":
        raise ValueError(f"official_class={official_class!r}: expected ConStyleNAFNet or ConStyle_v2")
    unknown = sorted(set(kwargs) - set(ARG_NAMES))
    if unknown:
        raise ValueError(f"unknown official ConStyleNAFNet arguments: {', '.join(unknown)}")
    net = ConStyleNAFNet(**{ARG_NAMES[k]: v for k, v in kwargs.items()}, **options)
    return TrainingRestorer(net) if train else OfficialWrapper(net)


def _ours(key: str) -> str:
    for pattern, target in _MODULES:
        if pattern.match(key):
            return pattern.sub(target, key)
    match = _BLOCKS.match(key)
    if match:
        part = _BLOCK_PART.match(match[3])
        if part:
            name = match[3].rsplit(".", 1) if match[3] not in ("beta", "gamma") else [match[3]]
            inner = _BLOCK_PARTS[name[0]] + (f".{name[1]}" if len(name) > 1 else "")
            return f"{_STAGE[match[1]]}.{match[2]}.{inner}"
    for pattern, rename in _OTHER:
        found = pattern.match(key)
        if found:
            return rename(found)
    return key


def convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Official keys -> ours: a ``ConStyle_v2`` prompter checkpoint (``encoder_q.*``) keeps its names; ``net_g`` keys
    go under ``net.``, its training-only momentum encoder and queue under ``momentum.``."""
    if any(k.startswith("encoder_q.") for k in state_dict):
        return dict(state_dict)

    def rename(key: str, value: Tensor) -> tuple[str, Tensor]:
        if TRAINING_ONLY.match(key):
            return f"momentum.{key.removeprefix('ConStyle.')}", value
        return f"net.{_ours(key)}", value

    return rename_keys(state_dict, rename)


def convert_prompter(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The pre-trained ``ConStyle_v2`` prompter's keys -> :class:`StyleEncoder`'s (``encoder_q.`` dropped; the
    momentum encoder and queue left out)."""
    return {k.removeprefix("encoder_q."): v for k, v in state_dict.items() if k.startswith("encoder_q.")}
