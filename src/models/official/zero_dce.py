"""Official Zero-DCE (Li-Chongyi/Zero-DCE, ``Zero-DCE_code/model.py``, ``enhance_net_nopool``) -> :class:`ZeroDCE`.

The official class takes no arguments (32 features, 8 curve steps, RGB). Its forward returns
``(image after 4 steps, enhanced image, curve maps)``; the module built here returns the enhanced image
(what the official test script saves), and ``.net.curves(x)`` the curve maps. Our keys are ``net.*``
(:class:`~src.models.official.wrapper.OfficialWrapper`); a key no rule recognises comes back unchanged so that
:func:`~src.models.official.load_strict` names it.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from src.models.backbones.zero_dce import ZeroDCE
from src.models.official.wrapper import OfficialWrapper, rename_keys

#: official layer -> ours.
LAYER_NAMES: dict[str, str] = {
    "e_conv1": "enc1",
    "e_conv2": "enc2",
    "e_conv3": "enc3",
    "e_conv4": "enc4",
    "e_conv5": "dec3",
    "e_conv6": "dec2",
    "e_conv7": "to_curves",
}


def build(official_kwargs: Mapping, **options) -> OfficialWrapper:
    """Our DCE-Net like ``enhance_net_nopool()``; the official class has no arguments, so any is refused.

    Returned as :class:`OfficialWrapper` (keys ``net.*``); ``.net.curves(x)`` gives the official third output.
    """
    if official_kwargs:
        raise ValueError(
            f"unknown official Zero-DCE arguments: {', '.join(sorted(official_kwargs))}; enhance_net_nopool takes none"
        )
    return OfficialWrapper(ZeroDCE(**options))


def convert_key(key: str) -> str | None:
    """Our backbone's name for one official key, ``None`` when unrecognised."""
    layer, _, rest = key.partition(".")
    return f"{LAYER_NAMES[layer]}.{rest}" if layer in LAYER_NAMES and rest in ("weight", "bias") else None


def convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename an official state dict to our ``net.*`` keys; two official keys landing on one name is an error."""

    def rename(key: str, value: Tensor) -> tuple[str, Tensor]:
        new = convert_key(key)
        return (key if new is None else f"net.{new}"), value

    return rename_keys(state_dict, rename)
