"""Official PromptIR (va1shn9v/PromptIR, ``net/model.py``, ``PromptIR(decoder=True)``) -> our Restormer + PromptHead.

The official network is Restormer with a prompt block after the latent and after decoder levels 3 and 2,
which are our head positions ``dec3``, ``dec2`` and ``dec1`` (prompt ``k`` sits at ``dec{k}``), in the same
order: prompt from the feature, concatenate, transformer block, 1x1 conv, then the level's upsampling.

Where it is not plain Restormer:

* the latent's prompt block reduces ``8 * dim + 320`` channels to ``4 * dim`` (not ``8 * dim``), so the
  deepest decoder level upsamples ``4 * dim`` channels and its 1x1 fuse takes ``2 * dim + 4 * dim``: our
  backbone is built with ``latent_out_channels = 4 * dim`` and the head returns that width at ``dec3``;
* prompt widths and sides are hard-coded for ``dim = 48`` (the class does not run otherwise), so only
  ``dim = 48`` is accepted;
* ``chnl_reduce1-3`` and ``reduce_noise_channel_1-3`` are saved but never used: built (frozen) when
  ``official_unused_modules`` is set, the default here.

The class default ``decoder=False`` does not run (channel mismatch in ``up4_3``); a missing ``decoder``
therefore means ``True``, the official training setting, and ``decoder=False`` is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor

from src.models.heads.prompt import PromptHead
from src.models.official import restormer
from src.models.official.wrapper import OfficialWrapper, rename_keys

#: official constructor arguments and the values used where they are missing.
OFFICIAL_DEFAULTS: dict[str, object] = {
    "inp_channels": 3,
    "out_channels": 3,
    "dim": 48,
    "num_blocks": (4, 6, 6, 8),
    "num_refinement_blocks": 4,
    "heads": (1, 2, 4, 8),
    "ffn_expansion_factor": 2.66,
    "bias": False,
    "LayerNorm_type": "WithBias",
    "decoder": True,
}

#: the official hard-coded sizes (for ``dim = 48``): what our defaults derive from ``feature_info``.
OFFICIAL_PROMPT_DIMS: dict[str, int] = {"dec1": 64, "dec2": 128, "dec3": 320}
OFFICIAL_PROMPT_SIZES: dict[str, int] = {"dec1": 64, "dec2": 32, "dec3": 16}


def build(official_kwargs: Mapping, official_unused_modules: bool = True) -> OfficialWrapper:
    """Our network configured like ``PromptIR(**official_kwargs)``; ``forward(x)`` returns the image."""
    unknown = sorted(set(official_kwargs) - set(OFFICIAL_DEFAULTS))
    if unknown:
        raise ValueError(
            f"unknown official PromptIR arguments: {', '.join(unknown)}; accepted: {', '.join(OFFICIAL_DEFAULTS)}"
        )
    kwargs = {**OFFICIAL_DEFAULTS, **official_kwargs}
    if not kwargs["decoder"]:
        raise ValueError("official PromptIR with decoder=False does not run (channel mismatch); use decoder=True")
    dim, heads = kwargs["dim"], tuple(kwargs["heads"])
    if dim != 48:
        raise ValueError(f"official PromptIR hard-codes its prompt sizes for dim=48 and does not run at dim={dim}")
    if len(heads) != 4 or len(kwargs["num_blocks"]) != 4:
        raise ValueError(f"official PromptIR has four levels: num_blocks and heads need 4 entries, got {kwargs}")

    net = restormer.build_backbone({k: v for k, v in kwargs.items() if k != "decoder"}, latent_out_channels=4 * dim)
    head = PromptHead(
        net.feature_info,
        prompt_len=5,
        prompt_size=128,
        num_heads=heads[2],
        ffn_expansion_factor=kwargs["ffn_expansion_factor"],
        bias=kwargs["bias"],
        layernorm_type=kwargs["LayerNorm_type"],
        out_channels={"dec3": 4 * dim},
        official_unused_modules=official_unused_modules,
    )
    return OfficialWrapper(net, head)


_HEAD_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^prompt([123])\.linear_layer\."), "blocks.dec{}.prompt.select."),
    (re.compile(r"^prompt([123])\.conv3x3\."), "blocks.dec{}.prompt.conv."),
    (re.compile(r"^reduce_noise_level([123])\."), "blocks.dec{}.reduce."),
    (re.compile(r"^chnl_reduce([123])\."), "unused.dec{}.prompt_reduce."),
    (re.compile(r"^reduce_noise_channel_([123])\."), "unused.dec{}.feature_reduce."),
]
_PROMPT_PARAM = re.compile(r"^prompt([123])\.prompt_param$")
_INTERACTION = re.compile(r"^noise_level([123])\.")


def _block_key(rest: str) -> str:
    """Our name inside a transformer block (``norm1.body.weight`` -> ``attn_norm.weight``), via the Restormer rules."""
    return restormer.convert_key(f"latent.{rest}").removeprefix("latent.")


def convert_pair(key: str, value: Tensor) -> tuple[str, Tensor]:
    """Our name (and value) for one official entry; keys of no known module go to ``net.`` for the Restormer rules.

    ``prompt_param`` is ``(1, len, dim, size, size)`` officially and ``(len, dim, size, size)`` here.
    """
    m = _PROMPT_PARAM.match(key)
    if m:
        value = value[0] if value.dim() == 5 and value.shape[0] == 1 else value
        return f"head.blocks.dec{m[1]}.prompt.components", value
    m = _INTERACTION.match(key)
    if m:
        return f"head.blocks.dec{m[1]}.interact.{_block_key(key[m.end() :])}", value
    for pattern, replace in _HEAD_RULES:
        m = pattern.match(key)
        if m:
            return "head." + replace.format(m[1]) + key[m.end() :], value
    return "net." + restormer.convert_key(key), value


def convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename an official PromptIR state dict to our ``net.*``/``head.*`` keys (strictness is load_strict's job)."""
    return rename_keys(state_dict, convert_pair)
