"""Official DA-CLIP restorer (Algolzw/daclip-uir ``ConditionalUNet``, ``universal-ir.pth``) -> :class:`DaclipIRSDE`.

The U-Net's module names are the official ones, so its keys map by prefixing ``net.unet.``; the SDE holds no
weights. Official arguments: ``in_nc``, ``out_nc``, ``nf``, ``ch_mult``, ``context_dim``, ``use_degra_context``,
``use_image_context`` (``upscale`` is accepted and unused, as in the release).
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from src.models.backbones.daclip_irsde import DaclipIRSDE
from src.models.official.wrapper import OfficialWrapper, rename_keys

ARG_NAMES: dict[str, str] = {"in_nc": "in_channels", "nf": "width", "ch_mult": "multipliers",
                             "context_dim": "context_dim", "use_degra_context": "use_degradation",
                             "use_image_context": "use_image"}


def build(official_kwargs: Mapping, **options) -> OfficialWrapper:
    """Our restorer with the U-Net configured like ``ConditionalUNet(**official_kwargs)``."""
    kwargs = dict(official_kwargs)
    kwargs.pop("upscale", None)
    if kwargs.pop("out_nc", kwargs.get("in_nc", 3)) != kwargs.get("in_nc", 3):
        raise ValueError("ConditionalUNet's out_nc must equal in_nc (it predicts the noise of its input)")
    unknown = sorted(set(kwargs) - set(ARG_NAMES))
    if unknown:
        raise ValueError(f"unknown official ConditionalUNet arguments: {', '.join(unknown)}")
    return OfficialWrapper(DaclipIRSDE(**{ARG_NAMES[k]: v for k, v in kwargs.items()}, **options))


def convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Official U-Net keys -> ours (``net.unet.<key>``)."""
    return rename_keys(state_dict, lambda key, value: (f"net.unet.{key}", value))
