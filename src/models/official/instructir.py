"""Official InstructIR (mv-lab/InstructIR ``models/instructir.py``) -> our
:class:`~src.models.backbones.instructir.InstructIR`, and its instruction head (``text/models.py`` ``LMHead``)
-> our :class:`~src.models.heads.instruction.InstructionHead`.

The image network is NAFNet's (:mod:`src.models.official.nafnet` renames those keys) plus ``enc_cond.*`` and
``dec_cond.*`` (an ICB each: ``fc``, ``gamma``, ``beta``, ``block`` a NAFBlock); the official ``dec_cond`` list runs
deepest first, ours by level. ``build`` takes the official constructor's arguments (``img_channel``, ``width``,
``middle_blk_num``, ``enc_blk_nums``, ``dec_blk_nums``, ``txtdim``; the released model: ``configs/eval5d.yml``);
the wrapper is called as the official model, ``model(x, text_embedding)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor

from src.models.backbones.instructir import InstructIR
from src.models.official.nafnet import _block, convert_key, count_levels
from src.models.official.wrapper import OfficialWrapper, rename_keys

#: official argument -> ours
ARG_NAMES: dict[str, str] = {"img_channel": "in_channels", "width": "width", "middle_blk_num": "middle_blk_num",
                             "enc_blk_nums": "enc_blk_nums", "dec_blk_nums": "dec_blk_nums", "txtdim": "text_dim"}
#: the official class's defaults (not create_model's, and not the released configuration's)
DEFAULTS: dict[str, object] = {"img_channel": 3, "width": 16, "middle_blk_num": 1, "enc_blk_nums": [],
                               "dec_blk_nums": [], "txtdim": 768}
_COND = re.compile(r"^(enc|dec)_cond\.(\d+)\.(.+)$")


class ConditionedWrapper(OfficialWrapper):
    """``forward(x, embedding)`` as the official InstructIR is called."""

    def forward(self, x: Tensor, embedding: Tensor | None = None) -> Tensor:  # type: ignore[override]
        pred, _ = self.net(x, head=self.head, condition=embedding)
        return pred


def build(official_kwargs: Mapping, **options) -> ConditionedWrapper:
    """Our InstructIR configured like ``InstructIR(**official_kwargs)`` (missing ones at the class defaults)."""
    unknown = sorted(set(official_kwargs) - set(ARG_NAMES))
    if unknown:
        raise ValueError(f"unknown official InstructIR arguments: {', '.join(unknown)}; accepted: "
                         f"{', '.join(ARG_NAMES)}")
    args = {**DEFAULTS, **official_kwargs}
    kwargs = {ARG_NAMES[k]: tuple(v) if isinstance(v, list) else v for k, v in args.items()}
    clash = sorted(set(kwargs) & set(options))
    if clash:
        raise ValueError(f"options {', '.join(clash)} are already set by the official arguments")
    return ConditionedWrapper(InstructIR(**{**kwargs, **options}))


def _cond_key(key: str, levels: int) -> str | None:
    m = _COND.match(key)
    if m is None:
        return None
    side, index, rest = m[1], int(m[2]), m[3]
    level = index if side == "enc" else levels - 1 - index
    prefix = f"{side}_cond.{level}."
    if rest.startswith("block."):
        return _block(prefix + "block.", rest.removeprefix("block."))
    if re.match(r"^(fc\.(weight|bias)|gamma|beta)$", rest):
        return prefix + rest
    return None


def convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Official keys -> ours (``net.*``); an unrecognised key keeps its name so that a strict load names it."""
    levels = count_levels(state_dict)

    def rename(key: str, value: Tensor) -> tuple[str, Tensor]:
        new = _cond_key(key, levels) if key.split(".", 1)[0] in ("enc_cond", "dec_cond") else convert_key(key, levels)
        return (key if new is None else f"net.{new}"), value

    return rename_keys(state_dict, rename)

