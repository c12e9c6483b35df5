"""Official AirNet (XLearning-SCU/2022-CVPR-AirNet, ``net/model.py``) -> our :class:`AirNet`.

The official constructor takes an options object and reads only ``opt.batch_size``: the MoCo queue holds
``256 * batch_size`` keys (1280 for the 5-task training, 768 or 256 in some released checkpoints). Every other
size is fixed in the official code and is our default. ``build`` takes that argument as ``{"opt": {"batch_size":
n}}`` (the form of ``meta.json``) or as ``{"batch_size": n}``.

Official names -> ours: ``R`` (DGRN) -> ``restorer``, ``R.body.<g>`` -> ``groups.<g>``, a group's last layer
``body.<n>`` -> ``conv``, ``R.body.<last>`` -> ``conv``; ``E.E`` (MoCo) -> ``encoder`` with ``encoder_q`` /
``encoder_k`` -> ``query`` / ``key``, ``E_pre`` -> ``stem``, ``E.<i>`` -> ``down.<i>``, a ResBlock's
``backbone`` -> ``residual``; ``dcn.conv_offset_mask`` -> ``dcn.offset_mask``; ``sft.conv_gamma``/``conv_beta``
-> ``sft.gamma``/``beta``. Our keys are ``net.*`` (:class:`~src.models.official.wrapper.OfficialWrapper`); a key
no rule recognises comes back unchanged so that :func:`~src.models.official.load_strict` names it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from torch import Tensor

from src.models.backbones.airnet import AirNet
from src.models.official.wrapper import OfficialWrapper, rename_keys

#: the official MoCo dimension: queue length = QUEUE_PER_SAMPLE * batch_size.
QUEUE_PER_SAMPLE = 256

_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


def _rule(pattern: str, replace: Callable[[re.Match[str]], str] | str) -> _Rule:
    return re.compile(pattern), replace if callable(replace) else (lambda m, r=replace: m.expand(r))


_BLOCK = r"^R\.body\.(\d+)\.body\.(\d+)\."
_SIDE = {"q": "query", "k": "key"}


def _encoder_block(m: re.Match[str]) -> str:
    """``E.E.encoder_q.E.1.backbone.4.weight`` -> ``encoder.query.down.1.residual.4.weight``."""
    part = "stem" if m[2] == "E_pre" else f"down.{m[2][-1]}"
    branch = "residual" if m[3] == "backbone" else "shortcut"
    return f"encoder.{_SIDE[m[1]]}.{part}.{branch}.{m[4]}.{m[5]}"


_RULES: list[_Rule] = [
    _rule(r"^R\.head\.0\.(weight|bias)$", r"restorer.head.\1"),
    _rule(r"^R\.tail\.0\.(weight|bias)$", r"restorer.tail.\1"),
    _rule(_BLOCK + r"(dgm[12])\.dcn\.weight$", r"restorer.groups.\1.blocks.\2.\3.dcn.weight"),
    _rule(_BLOCK + r"(dgm[12])\.dcn\.conv_offset_mask\.(weight|bias)$",
          r"restorer.groups.\1.blocks.\2.\3.dcn.offset_mask.\4"),
    _rule(_BLOCK + r"(dgm[12])\.sft\.conv_(gamma|beta)\.([02])\.weight$",
          r"restorer.groups.\1.blocks.\2.\3.sft.\4.\5.weight"),
    _rule(_BLOCK + r"(conv[12])\.(weight|bias)$", r"restorer.groups.\1.blocks.\2.\3.\4"),
    # a group's closing conv is a bare layer of its body; so is the body's closing conv
    _rule(r"^R\.body\.(\d+)\.body\.(\d+)\.(weight|bias)$", r"restorer.groups.\1.conv.\3"),
    _rule(r"^R\.body\.(\d+)\.(weight|bias)$", r"restorer.conv.\2"),
    _rule(r"^E\.E\.(queue|queue_ptr)$", r"encoder.\1"),
    _rule(r"^E\.E\.encoder_([qk])\.(E_pre|E\.[01])\.(backbone|shortcut)\.(\d)\."
          r"(weight|bias|running_mean|running_var|num_batches_tracked)$", _encoder_block),
    _rule(r"^E\.E\.encoder_([qk])\.mlp\.([02])\.(weight|bias)$", lambda m: f"encoder.{_SIDE[m[1]]}.mlp.{m[2]}.{m[3]}"),
]


def batch_size_of(official_kwargs: Mapping) -> int:
    """``opt.batch_size`` from ``{"opt": opt}`` (a mapping or an argparse namespace) or ``{"batch_size": n}``.

    Like the official class, other fields of ``opt`` are ignored; other top-level arguments are an error.
    """
    if "opt" in official_kwargs:
        unknown = sorted(set(official_kwargs) - {"opt"})
        opt = official_kwargs["opt"]
        opt = opt if isinstance(opt, Mapping) else vars(opt)
    else:
        unknown = sorted(set(official_kwargs) - {"batch_size"})
        opt = official_kwargs
    if unknown:
        raise ValueError(f"unknown official AirNet arguments: {', '.join(unknown)}; AirNet(opt) reads only "
                         "opt.batch_size: pass {'opt': {'batch_size': n}}")
    if "batch_size" not in opt:
        raise ValueError("official AirNet needs opt.batch_size (it sets the MoCo queue length 256 * batch_size)")
    return int(opt["batch_size"])


def build(official_kwargs: Mapping, **options) -> OfficialWrapper:
    """Our network configured like ``AirNet(opt)`` (keys ``net.*``; ``forward(x)`` gives the image in eval mode).

    ``options`` are our extra arguments (``contrastive_weight``, ``key_crop``, ...).
    """
    kwargs = {"queue_size": QUEUE_PER_SAMPLE * batch_size_of(official_kwargs)}
    clash = sorted(set(kwargs) & set(options))
    if clash:
        raise ValueError(f"options {', '.join(clash)} are already set by the official arguments")
    return OfficialWrapper(AirNet(**{**kwargs, **options}))


def convert_key(key: str) -> str | None:
    """Our backbone's name for one official key, ``None`` when no rule recognises it."""
    for pattern, replace in _RULES:
        if m := pattern.match(key):
            return replace(m)
    return None


def convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename an official state dict to our ``net.*`` keys; unrecognised keys keep their official name."""

    def rename(key: str, value: Tensor) -> tuple[str, Tensor]:
        new = convert_key(key)
        return (key if new is None else f"net.{new}"), value

    return rename_keys(state_dict, rename)
