"""Official Zero-DCE (Li-Chongyi/Zero-DCE, ``Zero-DCE_code/model.py``, ``enhance_net_nopool``) -> :class:`ZeroDCE`.

The official class takes no arguments (32 features, 8 curve steps, RGB). Its forward returns
``(image after 4 steps, enhanced image, curve maps)``; the module built here returns the enhanced image
(what the official test script saves). A key no rule recognises comes back unchanged so that
:func:`~src.models.official.load_strict` names it.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from src.models.backbones.zero_dce import ZeroDCE

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


class ZeroDCEImage(ZeroDCE):
    """Our DCE-Net whose ``forward(x)`` returns only the enhanced image (the official second output)."""

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        return super().forward(x)[0]


def build(official_kwargs: Mapping, **options) -> ZeroDCEImage:
    """Our DCE-Net like ``enhance_net_nopool()``; the official class has no arguments, so any is refused."""
    if official_kwargs:
        raise ValueError(
            f"unknown official Zero-DCE arguments: {', '.join(sorted(official_kwargs))}; enhance_net_nopool takes none"
        )
    return ZeroDCEImage(**options)


def convert_key(key: str) -> str:
    """Our name for one official key; an unrecognised key comes back unchanged."""
    layer, _, rest = key.partition(".")
    return f"{LAYER_NAMES[layer]}.{rest}" if layer in LAYER_NAMES and rest in ("weight", "bias") else key


def convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename an official state dict to our keys; two official keys landing on one name is an error."""
    out: dict[str, Tensor] = {}
    source: dict[str, str] = {}
    for key, value in state_dict.items():
        new = convert_key(key)
        if new in out:
            raise ValueError(f"official keys {source[new]!r} and {key!r} both map to {new!r}")
        out[new], source[new] = value, key
    return out
