"""DA-CLIP as a degradation classifier: the cosine similarity of its degradation embedding with CLIP's text
embeddings of the degradation names (the release's ``evaluate.py``: the raw names, no prompt template).

The text side is open_clip's ``TextTransformer`` and tokenizer (the ``clip`` extra: ``pip install
'aioir[clip]'``; the BPE vocabulary ships inside the package, nothing is downloaded), filled from the text-tower
keys of DA-CLIP's checkpoint (``clip.token_embedding``, ``clip.transformer``, ``clip.ln_final``,
``clip.text_projection``, ``clip.positional_embedding``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

#: DA-CLIP's ten degradation names, in its order
DACLIP_DEGRADATIONS = ("motion-blurry", "hazy", "jpeg-compressed", "low-light", "noisy", "raindrop", "rainy",
                       "shadowed", "snowy", "uncompleted")
#: the suite's families -> DA-CLIP's name for them
FAMILY_NAMES = {"blur": "motion-blurry", "haze": "hazy", "jpeg": "jpeg-compressed", "lowlight": "low-light",
                "noise": "noisy", "raindrop": "raindrop", "rain": "rainy", "shadow": "shadowed", "snow": "snowy",
                "inpainting": "uncompleted"}
#: open_clip's ViT-B-32 text tower
TEXT_B_32 = {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12, "output_dim": 512}
TEXT_KEYS = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.", "text_projection")


def require_open_clip() -> ModuleType:
    try:
        import open_clip
    except ImportError:
        raise ImportError("DA-CLIP's text side (classifying degradations by name) needs open_clip: pip install "
                          "'aioir[clip]' (or pip install open_clip_torch)") from None
    return open_clip


def text_tower_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The CLIP text tower's tensors of a DA-CLIP checkpoint, under open_clip ``TextTransformer``'s names."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.").removeprefix("clip.")
        if key.startswith(TEXT_KEYS):
            out[key] = value
    return out


def name_embeddings(state: Mapping[str, Tensor], names: Sequence[str],
                    text: Mapping[str, Any] | None = None) -> Tensor:
    """L2-normalised text embeddings (N x D) of ``names`` by the checkpoint's text tower (``text``: its sizes,
    default ViT-B/32's)."""
    from src.models.official import load_strict

    open_clip = require_open_clip()
    from open_clip.tokenizer import SimpleTokenizer
    from open_clip.transformer import TextTransformer

    sizes = {**TEXT_B_32, **(dict(text) if text else {})}
    tower = TextTransformer(**sizes).eval()
    tower_state = text_tower_state(state)
    if not tower_state:
        raise ValueError("this DA-CLIP checkpoint holds no CLIP text tower (clip.token_embedding, clip.transformer, "
                         "...): it cannot classify by name")
    load_strict(tower, tower_state, source="DA-CLIP's text tower")
    tokenizer = SimpleTokenizer(context_length=sizes["context_length"])
    del open_clip  # imported for the message when absent; the classes come from its modules
    with torch.no_grad():
        return F.normalize(tower(tokenizer(list(names))), dim=-1)


def zero_shot(degradation: Tensor, names: Tensor) -> Tensor:
    """Per image, the cosine similarity of its degradation embedding with each name's (B x N)."""
    return F.normalize(degradation.float(), dim=-1) @ names.T
