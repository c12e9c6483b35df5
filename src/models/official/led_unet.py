"""Official LED U-Net (Srameo/LED, ``led/archs/unet_arch.py``, ``UNetArch``; ``led/archs/repnr_utils.py``) ->
:class:`LedUNet`.

Our layer names are the official ones, so the plain and the RepNR state dicts map by prefixing ``net.``
(``RepNRBase.state_dict()`` is its RepNR module's: ``conv1_1.main_weight``, ``conv1_1.align_weights.0``, ...;
build that form with :func:`build_repnr`). Official arguments: ``inchannels``, ``outchannels``, ``channels``.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from src.models.backbones.led_unet import REPNR_KEEP, LedUNet
from src.models.layers.repnr import to_repnr
from src.models.official.wrapper import OfficialWrapper, rename_keys

ARG_NAMES: dict[str, str] = {"inchannels": "in_channels", "outchannels": "out_channels", "channels": "channels"}


def build(official_kwargs: Mapping, **options) -> OfficialWrapper:
    """Our U-Net configured like ``UNetArch(**official_kwargs)``."""
    unknown = sorted(set(official_kwargs) - set(ARG_NAMES))
    if unknown:
        raise ValueError(f"unknown official UNetArch arguments: {', '.join(unknown)}; accepted: {', '.join(ARG_NAMES)}")
    return OfficialWrapper(LedUNet(**{ARG_NAMES[k]: v for k, v in official_kwargs.items()}, **options))


def build_repnr(official_kwargs: Mapping, branches: int = 5, aux: bool = True,
                aux_bias: bool = True) -> OfficialWrapper:
    """The RepNR training form of :func:`build` (``branches`` virtual cameras plus the generalised one)."""
    wrapper = build(official_kwargs)
    to_repnr(wrapper.net, branches, REPNR_KEEP, aux, aux_bias)
    return wrapper


def convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Official keys (plain or RepNR) -> ours: the same names under ``net.``."""
    return rename_keys(state_dict, lambda key, value: (f"net.{key}", value))
