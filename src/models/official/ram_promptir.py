"""RAM's PromptIR (DragonisCV/RAM, ``ram/archs/promptir_arch.py``) -> our Restormer + PromptHead.

The network RAM pre-trains and fine-tunes is the official PromptIR with three differences: it has no
``chnl_reduce*`` / ``reduce_noise_channel_*`` modules (35,376,967 parameters at paper size, not 35,592,263); it
reflect-pads the input to a multiple of 16 and crops back (ours pads to 16 here); and its forward takes a pixel
mask and mask tokens, ``x * (1 - mask) + token * mask``, before the padding (the global residual then adds the
masked input). The masking is the pre-training's, not the network's: :mod:`src.strategies.ram` applies it to
the input of any backbone, so ``build`` returns the network without it. ``img_size`` (the side of the official
all-zero token) and ``finetune_type`` (passed down and never read) are accepted and have no effect here.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from src.models.official import promptir
from src.models.official.wrapper import OfficialWrapper

#: the official padding multiple (``check_image_size``)
PAD_MULTIPLE = 16
#: constructor arguments of RAM's PromptIR beyond the original's, without effect on the network
NO_EFFECT = ("img_size", "finetune_type")


def build(official_kwargs: Mapping, official_unused_modules: bool = False) -> OfficialWrapper:
    """Our network configured like RAM's ``PromptIR(**official_kwargs)``; ``forward(x)`` returns the image."""
    kwargs = {k: v for k, v in official_kwargs.items() if k not in NO_EFFECT}
    wrapper = promptir.build(kwargs, official_unused_modules=official_unused_modules)
    wrapper.net.multiple = PAD_MULTIPLE
    return wrapper


def convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename a RAM PromptIR state dict to our keys (the original PromptIR's names)."""
    return promptir.convert(state_dict)
