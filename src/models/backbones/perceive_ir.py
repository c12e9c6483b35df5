"""Perceive-IR's released restorer (House-yuyu/Perceive-IR ``cyclicPrompt``, stage 2): a Restormer whose decoder is
prompted by CLIP features and run twice.

The encoder runs once. In the first pass every decoder level first attends (LDM cross-attention, 8 heads of 64,
whatever the width) to a 9-token prompt: 8 learnable vectors each shifted by an MLP of CLIP's image feature of the
degraded input (``deg_aware``) and CLIP's text feature of the image's caption. The first output (with the global
residual) is then read twice: CLIP's image feature of it (through ``hq_mlp``) with the text feature is the second
pass's 2-token context, and its residual channel prior (the max minus the min over channels, through a small
CHIMB network) modulates each decoder level (``x + sigmoid(g) x + b``) after the cross-attention. The output is
the mean of the two passes. CLIP (OpenAI's ViT-B/32) is frozen and pluggable (:class:`ClipFeatures`); tests inject
fixed features. Module names are the release's, so its checkpoints load (``model_clip.*`` aside). Two quirks of the
release are kept: ``hq_mlp`` is linear-LayerNorm-ReLU-linear (its repeated names drop the other layers), and the
RCP network's instance norms exist but are not applied. One is not: the release averages the passes over the
batch too (a batch of two returns one image); here each image gets the mean of its own passes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.models.backbones.base import Backbone, Head, crop_to, pad_to_multiple
from src.models.layers.norm import ChannelLayerNorm
from src.models.layers.sampling import Downsample, Upsample
from src.models.layers.transformer import TransformerBlock

CLIP_DIM = 512


class ClipFeatures(nn.Module):
    """CLIP's features as Perceive-IR reads them: ``text(captions)`` and ``image(images in [0, 1])``, B x 512.

    The text side also runs from token embeddings (``prompt_embeddings`` then ``encode_embeddings``), so that
    learned context vectors can stand in some of them (the quality prompts of Perceive-IR's first stage); each
    text's start token comes first and each word of the form ``X`` is one token."""

    #: the width of the token embeddings
    text_width: int = CLIP_DIM

    @torch.no_grad()
    def text(self, captions: Sequence[str], device: torch.device) -> Tensor:
        return self.encode_embeddings(*self.prompt_embeddings(captions, device))

    def prompt_embeddings(self, texts: Sequence[str], device: torch.device) -> tuple[Tensor, Tensor]:
        """Token embeddings of ``texts`` (B x L x ``text_width``) and the position of each one's end token."""
        raise NotImplementedError

    def encode_embeddings(self, embeddings: Tensor, ends: Tensor) -> Tensor:
        """The text features (B x 512) of token embeddings, with gradients to them."""
        raise NotImplementedError

    def image(self, images: Tensor) -> Tensor:
        raise NotImplementedError


class StandInClip(ClipFeatures):
    """A seeded stand-in: the image pooled to 8 x 8 and projected by a fixed matrix; a text is a start vector and
    a fixed vector per whitespace-separated word (seeded by its bytes), averaged up to its end and projected.
    Frozen, outside the state dict."""

    text_width = 64

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("projection", torch.randn(3 * 64, CLIP_DIM, generator=generator) / 14.0,
                             persistent=False)
        self.register_buffer("text_projection", torch.randn(self.text_width, CLIP_DIM, generator=generator)
                             / self.text_width**0.5, persistent=False)  # a word's feature: unit-variance entries
        self.seed = seed

    def word(self, word: str) -> Tensor:
        generator = torch.Generator().manual_seed(self.seed + sum(word.encode()) * 7919 + len(word))
        return torch.randn(self.text_width, generator=generator)

    def prompt_embeddings(self, texts: Sequence[str], device: torch.device) -> tuple[Tensor, Tensor]:
        rows = [[self.word("<start>")] + [self.word(w) for w in text.split()] for text in texts]
        length = max(len(r) for r in rows)
        embeddings = torch.zeros(len(rows), length, self.text_width)
        for i, row in enumerate(rows):
            embeddings[i, : len(row)] = torch.stack(row)
        return embeddings.to(device), torch.tensor([len(r) - 1 for r in rows], device=device)

    def encode_embeddings(self, embeddings: Tensor, ends: Tensor) -> Tensor:
        mask = (torch.arange(embeddings.shape[1], device=embeddings.device)[None] <= ends[:, None]).float()
        mean = (embeddings.float() * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return mean @ self.text_projection.to(embeddings.device)

    def image(self, images: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(images.float(), 8).flatten(1) @ self.projection.to(images.device)


class OpenAIClip(ClipFeatures):
    """OpenAI's CLIP ViT-B/32 (what Perceive-IR's release loads) from a local state dict in open_clip's layout
    (``visual.*``, ``token_embedding``, ``transformer.*``, ``ln_final``, ``text_projection``; e.g. open_clip's
    ``ViT-B-32`` / ``openai`` safetensors), frozen: the vision tower of :mod:`src.models.layers.clip_vision`,
    open_clip's text transformer and tokenizer (the ``clip`` extra). Images are resized to 224 x 224 (no crop)
    and normalised, as the release's ``clip_input_preprocess``."""

    def __init__(self, weights: str, vision: dict | None = None, text: dict | None = None) -> None:
        super().__init__()
        from src.models.layers.clip_text import TEXT_B_32, require_open_clip, text_tower_state
        from src.models.layers.clip_vision import VIT_B_32, VisionTransformer, read_clip_state
        from src.models.official import load_strict

        require_open_clip()
        from open_clip.tokenizer import SimpleTokenizer
        from open_clip.transformer import TextTransformer

        state = read_clip_state(weights, "model.backbone.clip_weights must be OpenAI's CLIP ViT-B/32 as a state dict "
                                         "in open_clip's layout (e.g. open_clip_model.safetensors of "
                                         "timm/vit_base_patch32_clip_224.openai)")
        self.visual = VisionTransformer(**(vision or VIT_B_32)).eval().requires_grad_(False)
        load_strict(self.visual, {k.removeprefix("visual."): v for k, v in state.items() if k.startswith("visual.")},
                    source=f"model.backbone.clip_weights={weights} (vision)")
        sizes = {**TEXT_B_32, **(text or {})}
        self.text_tower = TextTransformer(**sizes).eval().requires_grad_(False)
        load_strict(self.text_tower, text_tower_state(state), source=f"model.backbone.clip_weights={weights} (text)")
        self.tokenizer = SimpleTokenizer(context_length=sizes["context_length"])

    @property
    def text_width(self) -> int:  # type: ignore[override]
        return self.text_tower.token_embedding.embedding_dim

    def prompt_embeddings(self, texts: Sequence[str], device: torch.device) -> tuple[Tensor, Tensor]:
        tower = self.text_tower.to(device)
        tokens = self.tokenizer(list(texts)).to(device)
        with torch.no_grad():
            return tower.token_embedding(tokens), tokens.argmax(dim=-1)  # the end token has the largest id

    def encode_embeddings(self, embeddings: Tensor, ends: Tensor) -> Tensor:
        """open_clip's ``TextTransformer.forward`` after its token embedding (CLIP's causal mask, no padding
        mask, the end token's feature projected)."""
        tower = self.text_tower.to(embeddings.device)
        x = embeddings + tower.positional_embedding[: embeddings.shape[1]].to(embeddings.dtype)
        x = tower.ln_final(tower.transformer(x, attn_mask=tower.attn_mask))
        return x[torch.arange(x.shape[0], device=x.device), ends] @ tower.text_projection

    def image(self, images: Tensor) -> Tensor:
        """With gradients to ``images`` (the quality term grades restored images through it); the network reads
        it under ``no_grad``."""
        from src.models.layers.clip_vision import CLIP_MEAN, CLIP_STD

        self.visual.to(images.device)
        size = self.visual.image_size
        x = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        mean, std = x.new_tensor(CLIP_MEAN).view(1, 3, 1, 1), x.new_tensor(CLIP_STD).view(1, 3, 1, 1)
        return self.visual((x - mean) / std)


def clip_features(kind: str = "stand_in", weights: str | None = None, seed: int = 0) -> ClipFeatures:
    """``stand_in`` (seeded, no weights) or ``openai`` (OpenAI's CLIP ViT-B/32 from ``weights``)."""
    if kind == "stand_in":
        return StandInClip(seed)
    if kind == "openai":
        if not weights:
            raise ValueError("model.backbone.clip=openai reads CLIP's weights: set model.backbone.clip_weights="
                             "<ViT-B-32 open_clip state dict, e.g. open_clip_model.safetensors of timm/"
                             "vit_base_patch32_clip_224.openai> (nothing is downloaded)")
        return OpenAIClip(weights)
    raise ValueError(f"model.backbone.clip={kind!r}: expected stand_in or openai")


class CrossAttention(nn.Module):
    """LDM cross-attention from image tokens to context tokens: 8 heads of 64, no bias but the output's."""

    def __init__(self, dim: int, context_dim: int = CLIP_DIM, heads: int = 8, dim_head: int = 64) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads, self.scale = heads, dim_head**-0.5
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(0.0))

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        b, n, _ = x.shape

        def split(t: Tensor) -> Tensor:
            return t.reshape(b, t.shape[1], self.heads, -1).transpose(1, 2)

        q, k, v = split(self.to_q(x)), split(self.to_k(context)), split(self.to_v(context))
        attention = (q @ k.transpose(-1, -2) * self.scale).softmax(dim=-1)
        return self.to_out((attention @ v).transpose(1, 2).reshape(b, n, -1))


class Modulation(nn.Module):
    """``(sigmoid(gamma), beta)`` of a prior feature: two 3x3 convolutions with LeakyReLU(0.2), two 1x1 heads."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1)
        self.conv_gama = nn.Conv2d(dim, dim, 1)
        self.conv_beta = nn.Conv2d(dim, dim, 1)

    def forward(self, prior: Tensor) -> tuple[Tensor, Tensor]:
        x = F.leaky_relu(self.conv2(F.leaky_relu(self.conv1(prior), 0.2)), 0.2)
        return self.conv_gama(x).sigmoid(), self.conv_beta(x)


class PromptedDecoderLevel(nn.Module):
    """Cross-attention to the pass's context (text prompt in pass 0, image context and RCP modulation after),
    then the level's Restormer blocks."""

    def __init__(self, dim: int, heads: int, blocks: int, ffn_expansion_factor: float, bias: bool,
                 norm_with_bias: bool) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.cross_att_text, self.cross_att_img = CrossAttention(dim), CrossAttention(dim)
        self.fuse_rcp = Modulation(dim)
        self.RestormerBlock = nn.Sequential(*(TransformerBlock(dim, heads, ffn_expansion_factor, bias, norm_with_bias)
                                              for _ in range(blocks)))

    def forward(self, x: Tensor, context: Tensor, prior: Tensor | None, first: bool) -> Tensor:
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        if first:
            tokens = self.cross_att_text(self.norm1(tokens), context) + tokens
        else:
            tokens = self.cross_att_img(self.norm2(tokens), context) + tokens
        x = tokens.transpose(1, 2).reshape(b, c, h, w)
        if not first:
            gamma, beta = self.fuse_rcp(prior)
            x = x + gamma * x + beta
        return self.RestormerBlock(x)


class ReflectConv(nn.Module):
    """Reflection pad, 3x3 convolution, ReLU; ``ins`` exists (the release's) but is not applied (as released)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3)
        # kept so the release's checkpoints load; never applied, so never trained
        self.ins = nn.InstanceNorm2d(cout, affine=True).requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv(F.pad(x, (1, 1, 1, 1), mode="reflect")))


class LargeKernelAttention(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.conv_spatial = nn.Conv2d(dim, dim, 7, padding=9, groups=dim, dilation=3)
        self.conv1 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.conv1(self.conv_spatial(self.conv0(x)))


class CHIMB(nn.Module):
    """A NAFNet-like block with large-kernel and channel attention (the RCP network's)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.conv1 = nn.Conv2d(c, 2 * c, 1)
        self.conv2 = nn.Conv2d(2 * c, 2 * c, 3, padding=1, groups=2 * c)
        self.conv3 = nn.Conv2d(c, c, 1)
        self.sca1 = LargeKernelAttention(c)
        self.sca2 = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c, 1))
        self.conv4 = nn.Conv2d(c, 2 * c, 1)
        self.conv5 = nn.Conv2d(2 * c, 2 * c, 3, padding=1, groups=2 * c)
        self.conv6 = nn.Conv2d(c, c, 1)
        self.norm1, self.norm2 = ChannelLayerNorm(c, eps=1e-6), ChannelLayerNorm(c, eps=1e-6)

    def forward(self, inp: Tensor) -> Tensor:
        x1, x2 = self.conv2(self.conv1(self.norm1(inp))).chunk(2, dim=1)
        x = x1 * x2
        x = self.conv3(self.sca2(x) * x + self.sca1(x))
        y = inp + x * self.beta
        x1, x2 = self.conv5(self.conv4(self.norm2(y))).chunk(2, dim=1)
        return y + self.conv6(F.gelu(x1) * x2) * self.gamma


class ResidualInResidual(nn.Module):
    def __init__(self, c: int, blocks: int = 2) -> None:
        super().__init__()
        self.module_body = nn.Sequential(*(CHIMB(c) for _ in range(blocks)), nn.Conv2d(c, c, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.module_body(x) + x)


class ChannelPrior(nn.Module):
    """The residual channel prior's features: two reflect convolutions (3 -> C/2 -> C) and two CHIMBs."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv_init1 = ReflectConv(3, dim // 2)
        self.conv_init2 = ReflectConv(dim // 2, dim)
        self.extra = ResidualInResidual(dim)

    def forward(self, image: Tensor) -> Tensor:
        residue = image.amax(dim=1, keepdim=True) - image.amin(dim=1, keepdim=True)
        return self.extra(self.conv_init2(self.conv_init1(residue.repeat(1, 3, 1, 1))))


def _stage(dim: int, heads: int, blocks: int, ffn: float, bias: bool, norm_with_bias: bool) -> nn.Sequential:
    return nn.Sequential(*(TransformerBlock(dim, heads, ffn, bias, norm_with_bias) for _ in range(blocks)))


class PerceiveIR(Backbone):
    """``forward(lq)`` restores with the captions set by :meth:`set_captions` (or none: empty captions)."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, dim: int = 48,
                 num_blocks: Sequence[int] = (4, 6, 6, 8), num_refinement_blocks: int = 4,
                 heads: Sequence[int] = (1, 2, 4, 8), ffn_expansion_factor: float = 2.66, bias: bool = False,
                 layernorm_type: str = "WithBias", num_vector: int = 8, iterations: int = 2,
                 clip: str | ClipFeatures = "stand_in", clip_weights: str | None = None) -> None:
        super().__init__()
        if iterations < 1:
            raise ValueError(f"Perceive-IR runs its decoder at least once, got iterations={iterations}")
        norm_bias = layernorm_type == "WithBias"
        args = (ffn_expansion_factor, bias, norm_bias)
        self.learnable_vector = nn.Parameter(torch.randn(num_vector, CLIP_DIM) * 0.02) if num_vector else None
        self.deg_aware = nn.Sequential(OrderedDict([("linear1", nn.Linear(CLIP_DIM, 32)),
                                                    ("layernorm", nn.LayerNorm(32)), ("relu", nn.ReLU()),
                                                    ("linear2", nn.Linear(32, CLIP_DIM))]))
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(in_channels, dim, 3, padding=1, bias=False)
        self.encoder_level1 = _stage(dim, heads[0], num_blocks[0], *args)
        self.down1_2 = Downsample(dim)
        self.encoder_level2 = _stage(2 * dim, heads[1], num_blocks[1], *args)
        self.down2_3 = Downsample(2 * dim)
        self.encoder_level3 = _stage(4 * dim, heads[2], num_blocks[2], *args)
        self.down3_4 = Downsample(4 * dim)
        self.latent = _stage(8 * dim, heads[3], num_blocks[3], *args)
        self.up4_3 = Upsample(8 * dim)
        self.reduce_chan_level3 = nn.Conv2d(8 * dim, 4 * dim, 1, bias=bias)
        self.decoder_level3 = PromptedDecoderLevel(4 * dim, heads[2], num_blocks[2] // 2, *args)
        self.up3_2 = Upsample(4 * dim)
        self.reduce_chan_level2 = nn.Conv2d(4 * dim, 2 * dim, 1, bias=bias)
        self.decoder_level2 = PromptedDecoderLevel(2 * dim, heads[1], num_blocks[1] // 2, *args)
        self.up2_1 = Upsample(2 * dim)
        self.decoder_level1 = PromptedDecoderLevel(2 * dim, heads[0], num_blocks[0] // 2, *args)
        self.refinement = _stage(2 * dim, heads[0], num_refinement_blocks, *args)
        self.output = nn.Conv2d(2 * dim, out_channels, 3, padding=1, bias=bias)
        self.rcp_extractor = ChannelPrior(dim)
        self.rcp_down1 = Downsample(dim)
        self.rcp_down2 = Downsample(2 * dim)
        self.rcp_ch = nn.Conv2d(dim, 2 * dim, 3, padding=1)
        self.hq_mlp = nn.Sequential(OrderedDict([("linear1", nn.Linear(CLIP_DIM, CLIP_DIM)),
                                                 ("layernorm", nn.LayerNorm(CLIP_DIM)), ("relu1", nn.ReLU()),
                                                 ("linear2", nn.Linear(CLIP_DIM, CLIP_DIM))]))
        self.iterations = int(iterations)
        # frozen and read from its own file: outside the state dict and the optimiser
        self.__dict__["clip"] = clip if isinstance(clip, ClipFeatures) else clip_features(clip, clip_weights)
        self.captions: list[str] | None = None
        self.in_channels, self.out_channels = in_channels, out_channels
        self.multiple = 8

    def set_captions(self, captions: Sequence[str] | None) -> None:
        """The captions of the next batch (the data's ``caption`` field); ``None``: empty captions."""
        self.captions = list(captions) if captions is not None else None

    def passes(self, lq: Tensor, text: Tensor, image: Tensor,
               second_image: Callable[[Tensor], Tensor] | None = None) -> list[Tensor]:
        """The outputs of the decoder's passes for CLIP features ``text`` and ``image`` (B x 512); the image feature
        of the first output comes from ``second_image(out0)`` (default: this model's CLIP)."""
        prompt = text[:, None]
        if self.learnable_vector is not None:
            shifted = self.learnable_vector[None] + self.deg_aware(image)[:, None]
            prompt = torch.cat([shifted, text[:, None]], dim=1)
        x1 = self.encoder_level1(self.patch_embed.proj(lq))
        x2 = self.encoder_level2(self.down1_2(x1))
        x3 = self.encoder_level3(self.down2_3(x2))
        latent = self.latent(self.down3_4(x3))
        entry3 = self.reduce_chan_level3(torch.cat([self.up4_3(latent), x3], dim=1))
        outputs: list[Tensor] = []
        context, priors = prompt, (None, None, None)
        for index in range(self.iterations):
            first = index == 0
            d3 = self.decoder_level3(entry3, context, priors[2], first)
            d2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(d3), x2], dim=1)), context,
                                     priors[1], first)
            d1 = self.decoder_level1(torch.cat([self.up2_1(d2), x1], dim=1), context, priors[0], first)
            out = self.output(self.refinement(d1)) + lq
            outputs.append(out)
            if first:
                prior = self.rcp_extractor(out)
                level2 = self.rcp_down1(prior)
                priors = (self.rcp_ch(prior), level2, self.rcp_down2(level2))
                with torch.no_grad():
                    seen = second_image(out) if second_image is not None else self.clip.image(out)
                context = torch.cat([self.hq_mlp(seen)[:, None], text[:, None]], dim=1)
        return outputs

    def forward(self, lq: Tensor, head: Head | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        x, size = pad_to_multiple(lq, self.multiple)
        given = self.captions is not None and len(self.captions) == x.shape[0]
        captions = self.captions if given else [""] * x.shape[0]
        with torch.no_grad():
            text, image = self.clip.text(captions, x.device), self.clip.image(x)
        outputs = self.passes(x, text.to(x.dtype), image.to(x.dtype))
        return crop_to(torch.stack(outputs).mean(dim=0), size), {}
