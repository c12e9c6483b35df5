"""RAM++ (Zhang, Qin et al., arXiv 2509.12039): masked pre-training with an adaptive, semantic-aware mask (AdaSAM).

RAM masks pixels at random; RAM++ learns *where* to mask. A small generator scores the degraded image's
``patch``-pixel squares (a convolutional patch embedding, a learned position embedding, one pre-norm ViT block,
a linear score per square; softmax over the squares), copies each square's probability to its pixels, and draws
the masked pixels from those probabilities without replacement (``torch.multinomial``): the share masked is
that of the squares, ``1 - int(N (1 - ratio)) / N``. The restoration network is trained as in RAM (masked L1 on
the masked pixels); the generator learns adversarially through REINFORCE: its loss,
``-w sum(|y.detach() - gt| m log(p + 1e-6)) / (sum(m) + 1e-5) / C``, raises the probability of masking where the
network restores worst, so the masks move to the hard, texture-rich regions. The generator has its own
learning rate (official: Adam at 1e-6 beside the network's 2e-4; here a parameter group of the one optimiser).

As the official code (DragonisCV/RAM, commit 372e3a5): the generator sees the degraded image in ImageNet
normalisation, its masked pixels are filled with the ImageNet mean colour (the official zero token in
normalised space; ``token: mean``), its block has no qkv bias, drops out 0.1 after the attention projection and
after the MLP (timm's block, its dropout after the MLP's activation removed), and its linear layers start
Xavier-uniform. Not reproduced: the official images and losses live in ImageNet-normalised space (here [0, 1]:
the same optimum, scaled terms), and its RestormerWoskip backbone without global residual (any backbone here).
The mask generator is part of the strategy, so it is saved in the checkpoint and ``src.analysis.mac`` can reveal
the input in its order (least likely masked first).

The fine-tuning stage of RAM++ (DINOv2 features fused into the decoder) is not built yet: it needs a frozen
DINOv2 and fusion points inside the decoder (see the issue notes); ``strategy=ram_finetune`` fine-tunes a RAM++
pre-trained network as RAM does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.strategies.ram import RamPretrain
from src.utils.errors import ConfigError

#: ImageNet statistics: the official generator's input normalisation, and its mask token (zero there)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class AdaptiveMaskGenerator(nn.Module):
    """AdaSAM: per-square masking probabilities of a degraded image, and pixel masks drawn from them."""

    def __init__(self, in_channels: int = 3, img_size: int = 128, patch: int = 8, embed_dim: int = 768,
                 num_heads: int = 8, mlp_ratio: float = 4.0, dropout: float = 0.1) -> None:
        super().__init__()
        from timm.layers import trunc_normal_
        from timm.models.vision_transformer import Block

        if img_size % patch:
            raise ConfigError(f"AdaSAM: img_size {img_size} is not a multiple of its patch {patch}")
        self.patch, self.grid = patch, img_size // patch
        self.embed = nn.Conv2d(in_channels, embed_dim, patch, stride=patch)
        self.position = nn.Parameter(torch.zeros(1, self.grid * self.grid, embed_dim))
        trunc_normal_(self.position, std=0.02)
        self.block = Block(embed_dim, num_heads, mlp_ratio, qkv_bias=False, proj_drop=dropout, attn_drop=0.0)
        self.block.mlp.drop1 = nn.Identity()  # the official MLP drops out once, after its second layer
        self.score = nn.Linear(embed_dim, 1)
        for module in [self.score, *self.block.modules()]:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        mean = torch.tensor(IMAGENET_MEAN[:in_channels] if in_channels == 3 else [0.5] * in_channels)
        std = torch.tensor(IMAGENET_STD[:in_channels] if in_channels == 3 else [0.25] * in_channels)
        self.register_buffer("mean", mean.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, -1, 1, 1), persistent=False)

    def _position(self, rows: int, cols: int) -> Tensor:
        """The position embedding for a ``rows x cols`` grid (bicubically resized from the training grid)."""
        if (rows, cols) == (self.grid, self.grid):
            return self.position
        grid = self.position.reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)
        resized = F.interpolate(grid, size=(rows, cols), mode="bicubic", align_corners=False)
        return resized.permute(0, 2, 3, 1).reshape(1, rows * cols, -1)

    def forward(self, image: Tensor) -> Tensor:
        """``B x C x H x W`` in [0, 1] -> ``B x 1 x H x W``: each pixel's square's probability (a square's
        probabilities sum to 1 over the image's squares)."""
        height, width = image.shape[-2:]
        if height % self.patch or width % self.patch:
            raise ConfigError(f"AdaSAM: the image ({height}x{width}) is not a multiple of its patch {self.patch}")
        tokens = self.embed((image - self.mean) / self.std)
        rows, cols = tokens.shape[-2:]
        tokens = tokens.flatten(2).transpose(1, 2) + self._position(rows, cols).to(tokens.dtype)
        logits = torch.nan_to_num(self.score(self.block(tokens)).squeeze(-1).float())
        probabilities = logits.softmax(dim=-1).reshape(-1, 1, rows, cols)
        return probabilities.repeat_interleave(self.patch, dim=2).repeat_interleave(self.patch, dim=3)

    @staticmethod
    def masked_count(height: int, width: int, patch: int, ratio: float) -> int:
        """Pixels masked: the share of squares masked, ``1 - int(N (1 - ratio)) / N``, of all pixels."""
        squares = (height // patch) * (width // patch)
        return int(height * width * (1 - int(squares * (1 - ratio)) / squares))

    def sample(self, probabilities: Tensor, ratio: float, generator: torch.Generator | None = None) -> Tensor:
        """``B x 1 x H x W`` 0/1 masks (1 = masked) drawn without replacement from ``probabilities``."""
        batch, _, height, width = probabilities.shape
        count = self.masked_count(height, width, self.patch, ratio)
        flat = probabilities.detach().reshape(batch, -1).float()
        chosen = torch.multinomial(flat.cpu(), count, replacement=False, generator=generator).to(flat.device)
        mask = torch.zeros_like(flat).scatter_(1, chosen, 1.0)
        return mask.reshape(batch, 1, height, width)


class RamPlusPretrain(RamPretrain):
    """RAM++ masked pre-training with the AdaSAM mask generator trained alongside (see the module docstring)."""

    def __init__(self, ratio: float = 0.5, patch: int = 8, img_size: int = 128, embed_dim: int = 768,
                 num_heads: int = 8, generator_weight: float = 1e-4, generator_lr: float | None = 1e-6,
                 token: str = "mean", test: str = "plain", seed: int = 0) -> None:
        if token not in ("mean", "learned", "zeros"):
            raise ConfigError(f"model.strategy.token={token!r}: expected 'mean' (the official zero token in "
                              "ImageNet-normalised space), 'learned' or 'zeros'")
        super().__init__(ratio=ratio, patch=1, token="zeros" if token == "mean" else token, test=test, seed=seed)
        self.token_kind = token
        self.square, self.img_size, self.embed_dim, self.num_heads = int(patch), int(img_size), int(embed_dim), \
            int(num_heads)
        if generator_weight < 0:
            raise ConfigError(f"model.strategy.generator_weight={generator_weight}: expected >= 0")
        self.generator_weight = float(generator_weight)
        self.generator_lr = None if generator_lr is None else float(generator_lr)
        self.mask_generator: AdaptiveMaskGenerator | None = None

    def bind(self, module: Any) -> None:
        super().bind(module)
        self.mask_generator = AdaptiveMaskGenerator(module.net.in_channels, self.img_size, self.square,
                                                    self.embed_dim, self.num_heads)

    def masked(self, lq: Tensor, mask: Tensor) -> Tensor:
        if self.token_kind != "mean":
            return super().masked(lq, mask)
        fill = self.mask_generator.mean.to(lq.dtype) if self.mask_generator is not None else 0.0
        return lq * (1 - mask) + fill * mask

    def draw(self, lq: Tensor, step: int, rank: int) -> tuple[Tensor, Tensor]:
        """The generator's pixel probabilities of ``lq`` and the masks drawn from them (seeded by the step and
        rank, so a resumed run draws the same masks from the same probabilities)."""
        probabilities = self.mask_generator(lq)
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + step * 7919 + rank) % 2**63)
        return probabilities, self.mask_generator.sample(probabilities, self.ratio, generator)

    def training_loss(self, module: Any, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        lq, gt = batch["lq"], batch["gt"]
        trainer = getattr(module, "_trainer", None)
        rank = trainer.global_rank if trainer is not None else 0
        probabilities, mask = self.draw(lq, int(module.global_step), rank)
        pred, aux, _, intent = module.network_outputs(batch, lq=self.masked(lq, mask))
        error = (pred.float() - gt.float()).abs()
        masked_pixels = mask.sum() + 1e-5
        masked_l1 = (error * mask).sum() / masked_pixels / lq.shape[1]
        # REINFORCE: the generator is pushed towards masking where the (detached) error is large
        log_p = torch.log(probabilities + 1e-6)
        generator_loss = -(error.detach() * mask * log_p).sum() / masked_pixels / lq.shape[1]
        total = masked_l1 + self.generator_weight * generator_loss
        terms = {"ram/masked_l1": masked_l1.detach(), "ram_plus/generator_loss": generator_loss.detach(),
                 "ram_plus/mask_entropy": -(probabilities * log_p).sum(dim=(1, 2, 3)).mean().detach()
                 / (self.square * self.square)}
        return module.complete_objective(total, terms, batch, aux, intent)

    def parameter_groups(self, module: Any, trainable: list[nn.Parameter]) -> list[dict[str, Any]] | None:
        if self.generator_lr is None or self.mask_generator is None:
            return None
        mine = {id(p) for p in self.mask_generator.parameters()}
        return [{"params": [p for p in trainable if id(p) not in mine]},
                {"params": [p for p in trainable if id(p) in mine], "lr": self.generator_lr, "weight_decay": 0.0}]

    def reveal_order(self, image: Tensor) -> np.ndarray:
        """Pixel indices of one ``C x H x W`` image, least likely to be masked first (RAM++'s MAC path)."""
        with torch.no_grad():
            probabilities = self.mask_generator(image[None]).flatten()
        return torch.argsort(probabilities.cpu(), stable=True).numpy()
