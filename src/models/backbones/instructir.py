"""InstructIR (Conde et al., ECCV 2024; mv-lab/InstructIR): NAFNet guided by an instruction embedding.

The image network is NAFNet (:class:`~src.models.backbones.nafnet.NAFNet`) with an instruction-conditioned block
(ICB) after the blocks of every encoder level (before its skip is kept and before it is down-sampled) and after
the blocks of every decoder level. An ICB gates the features per channel with ``sigmoid(fc(embedding))``,
modulates them with its own ``gamma``/``beta``, runs one NAFBlock and adds its input. ``gamma``, ``beta`` and every
NAFBlock's scales start at zero, so at initialisation each ICB is the identity and the instruction has no
effect: training makes it matter.

The embedding (``condition``, B x ``text_dim``) is the instruction's: a frozen sentence encoder and the
instruction head give it in the official code; :mod:`src.models.heads.instruction` holds the suite's ways
of making it. ``condition_dim`` tells the training module that this backbone wants one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from src.models.backbones.base import Head, crop_to, pad_to_multiple
from src.models.backbones.nafnet import NAFBlock, NAFNet


class InstructionBlock(nn.Module):
    """ICB: ``NAFBlock((x * gamma + beta) * sigmoid(fc(embedding))) + x``."""

    def __init__(self, channels: int, text_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(text_dim, channels)
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.block = NAFBlock(channels)

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        gate = torch.sigmoid(self.fc(embedding))[:, :, None, None]
        return self.block((x * self.gamma + self.beta) * gate) + x


class InstructIR(NAFNet):
    """NAFNet with an ICB per encoder and decoder level; ``forward(lq, condition=embedding)``.

    Defaults are the released model (``configs/eval5d.yml``): width 32, encoder blocks (2, 2, 4, 8), 4 middle
    blocks, decoder blocks (2, 2, 2, 2), 256-d instruction embeddings.
    """

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 32,
        enc_blk_nums: Sequence[int] = (2, 2, 4, 8),
        middle_blk_num: int = 4,
        dec_blk_nums: Sequence[int] = (2, 2, 2, 2),
        text_dim: int = 256,
    ) -> None:
        super().__init__(in_channels, width, enc_blk_nums, middle_blk_num, dec_blk_nums)
        widths = self.channels_per_level
        levels = len(self.encoders)
        self.condition_dim = int(text_dim)
        self.enc_cond = nn.ModuleList(InstructionBlock(widths[i], text_dim) for i in range(levels))
        # indexed by level like the decoders (the official list runs deepest first)
        self.dec_cond = nn.ModuleList(InstructionBlock(widths[i], text_dim) for i in range(levels))
        self.feature_info = []  # the ICBs are its conditioning; no further head positions

    def forward(self, lq: Tensor, head: Head | None = None,
                condition: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        if condition is None:
            raise ValueError("InstructIR restores by instruction: pass condition=<B x text_dim embedding> (the "
                             "model's instruction encoder makes it from the batch or from instruction=...)")
        if condition.shape != (lq.shape[0], self.condition_dim):
            raise ValueError(f"InstructIR's condition must be {lq.shape[0]} x {self.condition_dim}, got "
                             f"{tuple(condition.shape)}")
        image, size = pad_to_multiple(lq, self.multiple, mode="constant")
        x, skips = self.intro(image), []
        for encoder, cond in zip(self.encoders, self.enc_cond):
            x = cond(encoder.blocks(x), condition)
            skips.append(x)
            x = encoder.down(x)
        x = self.middle(x)
        for level in range(len(self.decoders) - 1, -1, -1):
            decoder = self.decoders[level]
            x = self.dec_cond[level](decoder.blocks(decoder.up(x) + skips[level]), condition)
        return crop_to(self.ending(x) + image, size), {}

    def forward_train(self, lq: Tensor, head: Head | None = None,
                      condition: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
        image, aux = self(lq, head=head, condition=condition)
        return image, aux, {}
