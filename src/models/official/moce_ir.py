"""Official MoCE-IR (eduardzamfir/MoCE-IR, ``src/net/moce_ir.py``, ``MoCEIR``) -> our MoCEIR + ExpertsHead.

Each official ``DecoderBlock`` holds its ``adapter`` (the experts and their router); ours holds a head slot
where :class:`~src.models.heads.experts.ExpertsHead` puts one :class:`ExpertLayer` per block (position
``dec{level}_{block}``). The official ``freq_embed`` (computed once from the latent) belongs to the head,
which computes it from the ``latent=`` the backbone hands over. Official decoder groups count from the
deepest (``dec.0``); ours by level (``decoders[levels - 2]``).

Where it is not a plain rename:

* the router noise is drawn in eval mode too; ``router_noise=False`` makes it exactly zero (the official
  ``noise_std = 0``), and each router's ``router_noise_source`` can be replaced (``set_router_noise``);
* the official eval path only works for batch size 1; ours routes each image on its own in train and eval;
* ``depth_type`` and ``stage_depth`` are checked but change nothing: the official expert loop recomputes one
  pass ``depth`` times from the same input and keeps the last;
* ``expert_layer`` other than ``FFTAttention`` (the only one in the file) is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor

from src.models.backbones.moce_ir import MoCEIR
from src.models.heads.experts import ExpertsHead
from src.models.official.wrapper import OfficialWrapper, rename_keys

#: official constructor arguments and the class defaults used where they are missing.
OFFICIAL_DEFAULTS: dict[str, object] = {
    "inp_channels": 3,
    "out_channels": 3,
    "dim": 32,
    "levels": 4,
    "heads": (1, 1, 1, 1),
    "num_blocks": (1, 1, 1, 3),
    "num_dec_blocks": (1, 1, 1),
    "ffn_expansion_factor": 2,
    "num_refinement_blocks": 1,
    "LayerNorm_type": "WithBias",
    "bias": False,
    "rank": 2,
    "num_experts": 4,
    "depth_type": "lin",
    "stage_depth": (3, 2, 1),
    "rank_type": "constant",
    "topk": 1,
    "expert_layer": "FFTAttention",
    "with_complexity": False,
    "complexity_scale": "max",
}

_DEPTH_TYPES = ("lin", "double", "exp", "fact", "constant")


def _check(kwargs: Mapping) -> None:
    """Refuse what the official class would not build, or what we do not reproduce."""
    levels = kwargs["levels"]
    sizes = {k: len(kwargs[k]) for k in ("heads", "num_blocks", "num_dec_blocks", "stage_depth")}
    if sizes["heads"] != levels or sizes["num_blocks"] != levels or sizes["num_dec_blocks"] != levels - 1:
        raise ValueError(
            f"levels={levels} needs {levels} heads and num_blocks and {levels - 1} num_dec_blocks, got {sizes}"
        )
    depth_type = kwargs["depth_type"]
    if not (isinstance(depth_type, int) or depth_type in _DEPTH_TYPES):
        raise ValueError(f"unknown official depth_type {depth_type!r}; accepted: {_DEPTH_TYPES} or an int")
    if sizes["stage_depth"] < levels - 1:
        raise ValueError(f"stage_depth needs {levels - 1} entries, got {kwargs['stage_depth']}")
    layer = kwargs["expert_layer"]
    if getattr(layer, "__name__", layer) != "FFTAttention":
        raise ValueError(f"only expert_layer=FFTAttention is reproduced, not {layer!r}")


def build(
    official_kwargs: Mapping,
    router_noise: bool = True,
    router_noise_in_eval: bool = True,
    balance_weight: float = 0.01,
) -> OfficialWrapper:
    """Our network configured like ``MoCEIR(**official_kwargs)``; ``forward(x)`` returns the image.

    ``router_noise`` (official: on, in eval too unless ``router_noise_in_eval`` is off) and ``balance_weight`` (the
    official training recipe's 0.01) are ours.
    """
    unknown = sorted(set(official_kwargs) - set(OFFICIAL_DEFAULTS))
    if unknown:
        raise ValueError(
            f"unknown official MoCEIR arguments: {', '.join(unknown)}; accepted: {', '.join(OFFICIAL_DEFAULTS)}"
        )
    kwargs = {**OFFICIAL_DEFAULTS, **official_kwargs}
    _check(kwargs)
    net = MoCEIR(
        in_channels=kwargs["inp_channels"],
        out_channels=kwargs["out_channels"],
        dim=kwargs["dim"],
        num_blocks=kwargs["num_blocks"],
        num_dec_blocks=kwargs["num_dec_blocks"],
        num_refinement_blocks=kwargs["num_refinement_blocks"],
        heads=kwargs["heads"],
        ffn_expansion_factor=kwargs["ffn_expansion_factor"],
        bias=kwargs["bias"],
        encoder_bias=True,
        layernorm_type=kwargs["LayerNorm_type"],
    )
    scale = kwargs["complexity_scale"]
    head = ExpertsHead(
        net.feature_info,
        num_experts=kwargs["num_experts"],
        top_k=kwargs["topk"],
        rank=kwargs["rank"],
        rank_type=kwargs["rank_type"],
        patch_size=4,
        use_complexity=kwargs["with_complexity"],
        complexity_scale=scale if scale in ("max", "min") else "none",
        frequency_source="latent",
        balance_weight=balance_weight,
        router_noise=router_noise,
        router_noise_in_eval=router_noise_in_eval,
    )
    return OfficialWrapper(net, head)


# Inside an encoder-style block (official EncoderBlock -> our TransformerBlock).
_ENCODER_BLOCK: list[tuple[str, str]] = [
    ("norms.0.body.", "attn_norm."),
    ("norms.1.body.", "ffn_norm."),
    ("mixer.temperature", "attn.temperature"),
    ("mixer.qkv.", "attn.qkv."),
    ("mixer.qkv_dwconv.", "attn.qkv_dw."),
    ("mixer.project_out.", "attn.proj."),
    ("ffn.project_in.", "ffn.proj_in."),
    ("ffn.dwconv.", "ffn.dw."),
    ("ffn.project_out.", "ffn.proj_out."),
]

# Inside a decoder block, outside its adapter (official DecoderBlock -> our ExpertDecoderBlock).
_DECODER_BLOCK: list[tuple[str, str]] = [
    ("norms.0.body.", "norm."),
    ("norms.1.body.", "ffn_norm."),
    ("proj.0.", "shared_proj."),
    ("proj.1.", "routed_proj."),
    ("shared.temperature", "shared.temperature"),
    ("shared.qkv.", "shared.qkv."),
    ("shared.qkv_dwconv.", "shared.qkv_dw."),
    ("shared.project_out.", "shared.proj."),
    ("mixer.temperature", "cross.temperature"),
    ("mixer.q.", "cross.q."),
    ("mixer.q_dwconv.", "cross.q_dw."),
    ("mixer.kv.", "cross.kv."),
    ("mixer.kv_dwconv.", "cross.kv_dw."),
    ("mixer.project_out.", "cross.proj."),
    ("ffn.project_in.", "ffn.proj_in."),
    ("ffn.dwconv.", "ffn.dw."),
    ("ffn.project_out.", "ffn.proj_out."),
]

# Inside an adapter (official AdapterLayer -> our ExpertLayer); ``E`` stands for the expert index.
_ADAPTER: list[tuple[str, str]] = [
    ("proj.0.", "down."),
    ("proj.1.", "modulation."),
    ("proj.2.", "up."),
    ("body.q.", "body.q."),
    ("body.q_dwconv.", "body.q_dw."),
    ("body.kv.", "body.kv."),
    ("body.kv_dwconv.", "body.kv_dw."),
    ("body.norm.body.", "body.norm."),
    ("body.proj_out.", "body.proj."),
]
_ADAPTER_TOP: list[tuple[str, str]] = [
    ("proj_out.", "proj."),
    ("routing.complexity", "router.complexity"),
    ("routing.gate.2.", "router.gate."),
    ("routing.freq_gate.", "router.frequency_gate."),
]
_FREQ: list[tuple[str, str]] = [("high_conv.0.conv.", "highpass."), ("mlp.", "mlp.")]

_ENC = re.compile(r"^enc\.(\d+)\.0\.layers\.(\d+)\.(.*)$")
_DOWN = re.compile(r"^enc\.(\d+)\.1\.body\.0\.(.*)$")
_STAGE = re.compile(r"^(latent|refinement)\.layers\.(\d+)\.(.*)$")
_UP = re.compile(r"^dec\.(\d+)\.0\.body\.0\.(.*)$")
_FUSE = re.compile(r"^dec\.(\d+)\.1\.(.*)$")
_DEC_BLOCK = re.compile(r"^dec\.(\d+)\.2\.layers\.(\d+)\.(.*)$")
_EXPERT = re.compile(r"^experts\.(\d+)\.0\.(.*)$")
_TOP = {"patch_embed.proj.": "embed.", "output.": "output."}


def _rename(rest: str, table: list[tuple[str, str]]) -> str | None:
    """``rest`` with the first matching official prefix replaced, or ``None`` when none matches."""
    for old, new in table:
        if rest.startswith(old):
            return new + rest[len(old) :]
    return None


def _adapter_key(rest: str) -> str | None:
    m = _EXPERT.match(rest)
    if m:
        inner = _rename(m[2], _ADAPTER)
        return None if inner is None else f"experts.{m[1]}.{inner}"
    return _rename(rest, _ADAPTER_TOP)


def convert_key(key: str, decoder_groups: int) -> str:
    """Our name (``net.*``/``head.*``) for one official key; an unknown one goes to ``net.`` unchanged.

    ``decoder_groups`` is the number of official ``dec.*`` groups (``levels - 1``), to turn them into levels.
    """
    for old, new in _TOP.items():
        if key.startswith(old):
            return "net." + new + key[len(old) :]
    if key.startswith("freq_embed."):
        inner = _rename(key.removeprefix("freq_embed."), _FREQ)
        if inner is not None:
            return "head.frequency." + inner
    if m := _ENC.match(key):
        inner = _rename(m[3], _ENCODER_BLOCK)
        if inner is not None:
            return f"net.encoders.{m[1]}.blocks.{m[2]}.{inner}"
    if m := _DOWN.match(key):
        return f"net.encoders.{m[1]}.down.conv.{m[2]}"
    if m := _STAGE.match(key):
        inner = _rename(m[3], _ENCODER_BLOCK)
        if inner is not None:
            return f"net.{m[1]}.{m[2]}.{inner}"
    if m := _UP.match(key):
        return f"net.decoders.{decoder_groups - 1 - int(m[1])}.up.conv.{m[2]}"
    if m := _FUSE.match(key):
        return f"net.decoders.{decoder_groups - 1 - int(m[1])}.fuse.{m[2]}"
    if m := _DEC_BLOCK.match(key):
        level, block, rest = decoder_groups - 1 - int(m[1]), m[2], m[3]
        if rest.startswith("adapter."):
            inner = _adapter_key(rest.removeprefix("adapter."))
            if inner is not None:
                return f"head.layers.dec{level}_{block}.{inner}"
        else:
            inner = _rename(rest, _DECODER_BLOCK)
            if inner is not None:
                return f"net.decoders.{level}.blocks.{block}.{inner}"
    return "net." + key


def convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename an official MoCEIR state dict to our ``net.*``/``head.*`` keys (strictness is load_strict's job)."""
    groups = {int(m[1]) for k in state_dict if (m := re.match(r"^dec\.(\d+)\.", k))}
    decoder_groups = max(groups) + 1 if groups else 0
    return rename_keys(state_dict, lambda k, v: (convert_key(k, decoder_groups), v))
