"""CLIP's vision transformer (open_clip's layout and names) and DA-CLIP's controlled version of it.

The ViT: a patch convolution without bias, a class token and learned positions, a pre-norm, residual blocks
(``nn.MultiheadAttention`` and a GELU MLP ``c_fc``/``c_proj``, each after a layer norm), a post-norm of the class
token and a projection to the embedding. DA-CLIP (Luo et al., ICLR 2024) adds a *controller*: a trainable copy of
the vision tower whose blocks also emit, through zero-initialised linear layers, one hidden state each; the
frozen tower adds them to its own stream after its blocks, the controller's last one after the first block (the
release pops them from the end). The controller's own embedding is the *degradation* embedding; the frozen
tower's, with control, the *content* embedding.

State-dict names are open_clip's under DA-CLIP's attributes (``visual.*``, ``visual_control.*`` with
``transformer.transformer.resblocks.*`` and ``transformer.zero_modules.*``), so DA-CLIP's checkpoint loads through
:func:`from_daclip_state` (which drops the release's duplicate ``clip.visual`` alias and its text tower).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: CLIP's image normalisation (open_clip's OPENAI_DATASET_MEAN / STD)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
#: open_clip's ViT-B-32 vision tower (DA-CLIP's ``daclip_ViT-B-32.json``)
VIT_B_32 = {"image_size": 224, "patch_size": 32, "width": 768, "layers": 12, "heads": 12, "mlp_ratio": 4.0,
            "output_dim": 512}


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(width, hidden)), ("gelu", nn.GELU()),
                                              ("c_proj", nn.Linear(hidden, width))]))

    def forward(self, x: Tensor) -> Tensor:
        """``x``: tokens x batch x width (the sequence first, as open_clip's transformer runs)."""
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(ResidualAttentionBlock(width, heads, mlp_ratio) for _ in range(layers))

    def forward(self, x: Tensor, control: list[Tensor] | None = None) -> Tensor:
        """``control``: the controller's hidden states; the last is added after the first block, and so on."""
        pending = list(control) if control is not None else None
        for block in self.resblocks:
            x = block(x)
            if pending is not None:
                x = x + pending.pop()
        return x


class ControlTransformer(nn.Module):
    """The controller's transformer: its blocks, and after each a zero-initialised linear layer whose output is
    one hidden state for the frozen tower (the controller's own stream does not receive it)."""

    def __init__(self, transformer: Transformer, width: int) -> None:
        super().__init__()
        self.transformer = transformer
        self.zero_modules = nn.ModuleList(nn.Linear(width, width) for _ in transformer.resblocks)
        for layer in self.zero_modules:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        hiddens = []
        for block, zero in zip(self.transformer.resblocks, self.zero_modules):
            x = block(x)
            hiddens.append(zero(x))
        return x, hiddens


class VisionTransformer(nn.Module):
    """open_clip's ``VisionTransformer`` (class-token pooling, no attentional pool)."""

    def __init__(self, image_size: int = 224, patch_size: int = 32, width: int = 768, layers: int = 12,
                 heads: int = 12, mlp_ratio: float = 4.0, output_dim: int = 512) -> None:
        super().__init__()
        grid = image_size // patch_size
        scale = width**-0.5
        self.image_size, self.patch_size = image_size, patch_size
        self.conv1 = nn.Conv2d(3, width, patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer: nn.Module = Transformer(width, layers, heads, mlp_ratio)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def tokens(self, image: Tensor) -> Tensor:
        x = self.conv1(image).flatten(2).transpose(1, 2)  # B x patches x width
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        return self.ln_pre(torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype))

    def pooled(self, tokens: Tensor) -> Tensor:
        return self.ln_post(tokens[:, 0]) @ self.proj

    def forward(self, image: Tensor, control: list[Tensor] | None = None) -> Tensor:
        x = self.transformer(self.tokens(image).transpose(0, 1), control=control)
        return self.pooled(x.transpose(0, 1))


class ControlledVision(nn.Module):
    """DA-CLIP's image side: the frozen CLIP tower ``visual`` and its controller ``visual_control``;
    ``forward(image)`` -> ``(content, degradation)`` embeddings (not normalised, as the release's restorer
    reads them)."""

    def __init__(self, **vision: float) -> None:
        super().__init__()
        self.visual = VisionTransformer(**vision)
        self.visual_control = copy.deepcopy(self.visual)
        width = self.visual.conv1.out_channels
        self.visual_control.transformer = ControlTransformer(self.visual_control.transformer, width)
        self.logit_scale = nn.Parameter(torch.ones([]) * torch.log(torch.tensor(1 / 0.07)))

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        control = self.visual_control
        x, hiddens = control.transformer(control.tokens(image).transpose(0, 1))
        degradation = control.pooled(x.transpose(0, 1))
        return self.visual(image, control=hiddens), degradation


def clip_preprocess(image: Tensor, size: int = 224) -> Tensor:
    """B x 3 x H x W in [0, 1] -> CLIP's input: the shorter side resized to ``size`` (bicubic, antialiased),
    centre-cropped to ``size`` x ``size``, normalised with CLIP's mean and std, in float on the image's device
    (the release goes through PIL on 8-bit values: :func:`clip_preprocess_release`)."""
    height, width = image.shape[-2:]
    scale = size / min(height, width)
    resized = F.interpolate(image.float(), size=(max(size, round(height * scale)), max(size, round(width * scale))),
                            mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    top, left = (resized.shape[-2] - size) // 2, (resized.shape[-1] - size) // 2
    crop = resized[..., top : top + size, left : left + size]
    mean = crop.new_tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = crop.new_tensor(CLIP_STD).view(1, 3, 1, 1)
    return (crop - mean) / std


def clip_preprocess_release(image: Tensor, size: int = 224) -> Tensor:
    """DA-CLIP's release (``data/util.py``'s ``clip_transform``): each image to 8 bits by truncation
    (``(x * 255).astype(uint8)``), then torchvision's transforms on the PIL image (the shorter side resized to
    ``size``, bicubic, a centre crop, CLIP's normalisation). On the CPU, one image at a time, as the release."""
    from torchvision.transforms import functional as TF

    out = []
    for pil in release_8bit(image):
        pil = TF.center_crop(TF.resize(pil, size, interpolation=TF.InterpolationMode.BICUBIC), size)
        out.append(TF.normalize(TF.to_tensor(pil), CLIP_MEAN, CLIP_STD))
    return torch.stack(out).to(image.device)


def release_8bit(image: Tensor) -> list:
    """A batch in [0, 1] as DA-CLIP's release hands images to PIL: ``(x * 255).astype(uint8)`` (truncation)."""
    from PIL import Image

    return [Image.fromarray((one.permute(1, 2, 0).numpy() * 255).astype(np.uint8))
            for one in image.detach().float().clamp(0, 1).cpu()]


#: CLIP's preprocessing by name: ``float`` (on the image's device) or ``release`` (DA-CLIP's, through PIL)
CLIP_PREPROCESS = {"float": clip_preprocess, "release": clip_preprocess_release}


def from_daclip_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """DA-CLIP's checkpoint keys -> :class:`ControlledVision`'s: ``clip.visual.*`` -> ``visual.*`` (the release's
    ``visual.*`` alias is the same tensor), ``visual_control.*`` and ``logit_scale`` as they are; the text tower
    (``clip.transformer``, ``clip.token_embedding``, ...) and ``clip.logit_scale`` are left out."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith("clip.visual."):
            out["visual." + key.removeprefix("clip.visual.")] = value
        elif key.startswith(("visual_control.", "visual.")) or key == "logit_scale":
            out.setdefault(key, value)
    return out


#: where a run of ``strategy=daclip_controller`` keeps DA-CLIP's tensors (under the release's names)
DACLIP_RUN_PREFIX = "strategy.daclip."


def read_clip_state(path: str | Path, hint: str) -> Mapping[str, Tensor]:
    """The tensors of a CLIP checkpoint (:func:`src.utils.weights.load_state_dict_file`: weights only, never code);
    an absent file is named with ``hint`` (which file it should be, where it comes from). A checkpoint of a
    ``strategy=daclip_controller`` run gives its DA-CLIP tensors, under the release's names."""
    from src.utils.weights import load_state_dict_file

    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist: {hint} (nothing is downloaded here)")
    state = load_state_dict_file(file)
    if any(k.startswith(DACLIP_RUN_PREFIX) for k in state):  # a run of strategy=daclip_controller
        return {k.removeprefix(DACLIP_RUN_PREFIX): v for k, v in state.items() if k.startswith(DACLIP_RUN_PREFIX)}
    return state
