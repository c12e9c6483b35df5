"""ConStyle v2's prompter (Fan et al., "ConStyle v2: A Strong Prompter for All-in-One Image Restoration";
Dongqi-Fan/ConStyle_v2 ``MyBaseEncoder``): a small convolutional encoder whose pooled features, through two
linear-BN-GELU layers, are the image's style embeddings (``q0``, ``q1``: ``q1`` prompts the restorer) and whose
intermediate maps (after stages 1-3: 32, 64 and 128 channels at 1/2, 1/4, 1/8) feed the restorer's encoder.

Four stages of bias-free 3x3 convolutions with LeakyReLU(0.1) (widths 16-16-32 / 32-64 / 128-128 / 256-256, the
last convolution of each stage with stride 2), a global average pool, ``mlp1`` (256 -> 128) and ``mlp2`` (128 ->
128), and, in v2, a classifier (256 -> 512 -> ReLU -> dropout 0.5 -> ``classes``) used by its pre-training. Module
names are the release's (``stage1.0.0``, ``mlp1.1.running_mean``, ``classifier.3``), so its checkpoints load.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

#: (in, out, stride) of each stage's convolutions
STAGES = (((3, 16, 1), (16, 16, 1), (16, 32, 2)), ((32, 32, 1), (32, 64, 2)), ((64, 128, 1), (128, 128, 2)),
          ((128, 256, 1), (256, 256, 2)))
EMBED_DIM = 128


def conv_act(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    """A bias-free convolution and LeakyReLU(0.1) (the release's ``ConvAct``)."""
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, bias=False), nn.LeakyReLU(0.1))


def linear_bn_act(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(cin, cout), nn.BatchNorm1d(cout), nn.GELU())


class StyleEncoder(nn.Module):
    """``forward(x)`` -> ``((q0, q1), (fea1, fea2, fea3), logits or None)``; nothing is L2-normalised."""

    def __init__(self, classes: int | None = 1000) -> None:
        super().__init__()
        for index, stage in enumerate(STAGES, 1):
            setattr(self, f"stage{index}", nn.Sequential(*(conv_act(cin, cout, 3, s) for cin, cout, s in stage)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.mlp1 = linear_bn_act(256, EMBED_DIM)
        self.mlp2 = linear_bn_act(EMBED_DIM, EMBED_DIM)
        self.classifier = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, classes)) \
            if classes else None

    #: a frozen prompter (the restoration stage) keeps its batch norms in evaluation mode whatever ``train()`` says
    frozen: bool = False

    def train(self, mode: bool = True) -> StyleEncoder:
        return super().train(mode and not self.frozen)

    def encode(self, x: Tensor) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor, Tensor], Tensor]:
        """The prompts, the feature maps and the pooled 256-d features (what a classifier reads)."""
        fea1 = self.stage1(x)
        fea2 = self.stage2(fea1)
        fea3 = self.stage3(fea2)
        pooled = self.pool(self.stage4(fea3)).flatten(1)
        q0 = self.embed(self.mlp1, pooled)
        return (q0, self.embed(self.mlp2, q0)), (fea1, fea2, fea3), pooled

    def embed(self, layer: nn.Sequential, x: Tensor) -> Tensor:
        """A linear-BN-GELU layer; a single image in training (where batch statistics do not exist and the release
        fails) is normalised with the running statistics."""
        norm = layer[1]
        if not (self.training and x.shape[0] == 1):
            return layer(x)
        norm.eval()
        try:
            return layer(x)
        finally:
            norm.train()

    def forward(self, x: Tensor) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor, Tensor], Tensor | None]:
        prompts, features, pooled = self.encode(x)
        logits = self.classifier(pooled) if self.classifier is not None else None
        return prompts, features, logits


class MomentumKeys(nn.Module):
    """MoCo's training-only parts: the momentum (key) encoder, a copy of the query encoder updated as
    ``k = m k + (1 - m) q``, and the queue of past query prompts (``dim x size``, not normalised, as the release)."""

    def __init__(self, classes: int | None = 1000, queue_size: int = 65760) -> None:
        super().__init__()
        self.encoder_k = StyleEncoder(classes).requires_grad_(False)
        self.register_buffer("queue", torch.randn(EMBED_DIM, queue_size))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def momentum_update(self, encoder_q: nn.Module, momentum: float) -> None:
        for key, query in zip(self.encoder_k.parameters(), encoder_q.parameters()):
            key.mul_(momentum).add_(query.detach(), alpha=1 - momentum)

    @torch.no_grad()
    def enqueue(self, prompts: Tensor) -> tuple[Tensor, Tensor]:
        """Put a batch of query prompts (B x dim) in the queue at its pointer; returns the release's two negatives
        for the style term: the B entries after the new pointer and the B entries just replaced (B x dim each)."""
        size, batch = self.queue.shape[1], prompts.shape[0]
        if size % batch:
            raise ValueError(f"the ConStyle queue ({size}) must be a multiple of the batch size ({batch})")
        start = int(self.queue_ptr)
        replaced = self.queue[:, start : start + batch].T.clone()
        self.queue[:, start : start + batch] = prompts.detach().T
        pointer = (start + batch) % size
        self.queue_ptr[0] = pointer
        following = self.queue[:, pointer : pointer + batch].T.clone()
        return following, replaced


class ConStyleMoCo(MomentumKeys):
    """ConStyle v2's pre-training form (the release's ``ConStyle_v2``): the query encoder with its classifier,
    and (``train``) the momentum encoder and queue; state-dict names the release's."""

    def __init__(self, classes: int | None = 1000, queue_size: int = 65760, train: bool = True) -> None:
        nn.Module.__init__(self)
        self.encoder_q = StyleEncoder(classes)
        if train:
            self.encoder_k = StyleEncoder(classes).requires_grad_(False)
            self.encoder_k.load_state_dict(self.encoder_q.state_dict())
            self.register_buffer("queue", torch.randn(EMBED_DIM, queue_size))
            self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))
