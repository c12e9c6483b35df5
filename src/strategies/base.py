"""The strategy contract, and the pieces strategies share (batch subsets, a feature tap).

A strategy is an ``nn.Module`` so that what it learns (a classifier, a mask token) is part of the model's state
dict, moves with it between devices and is optimised with it. It never holds the LightningModule (that would
make the module its own child); each hook receives it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from src.models.backbones.base import Head
from src.utils.errors import ConfigError


class Strategy(nn.Module):
    """How a network is trained. The defaults are the plain objective; a strategy overrides what it changes."""

    def bind(self, module: Any) -> None:
        """Called once the module holds its network, head and loaded weights (build parts that depend on them,
        freeze layers)."""

    def training_loss(self, module: Any, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """The objective of one training batch and its logged terms."""
        pred, aux, outputs, intent = module.network_outputs(batch)
        total, terms = module.loss.objective(pred, batch, outputs)
        return module.complete_objective(total, terms, batch, aux, intent)

    def parameter_groups(self, module: Any, trainable: Sequence[nn.Parameter]) -> list[dict[str, Any]] | None:
        """The optimiser's parameter groups (own learning rates), or ``None`` for one group of ``trainable``."""
        return None

    def before_optimizer_step(self, module: Any, optimizer: torch.optim.Optimizer) -> None:
        """Called before each optimiser step, gradients in hand (a phase that trains only some parameters
        sets the others' ``grad`` to ``None``, which the optimiser skips)."""

    def network_head(self, module: Any) -> nn.Module | None:
        """The head the network runs with, in training and inference: the model's own, unless the strategy adds
        to what the network computes (RAM++'s feature fusion)."""
        return module.head

    def predict(self, module: Any, batch: Mapping[str, Any]) -> Tensor | None:
        """Restored images of an evaluation batch where the strategy restores differently; ``None``: as usual."""
        return None

    def example_fields(self, batch: int) -> dict[str, Any]:
        """Batch fields besides the images that :meth:`training_loss` reads, for ``batch`` made-up images (the
        memory preflight and the benchmark time the objective on them)."""
        return {}

    def checkpoint_state(self) -> dict[str, Any]:
        """State that is not a tensor of the model, as plain numbers (saved in every checkpoint)."""
        return {}

    def load_checkpoint_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`checkpoint_state` when a run resumes."""


def require_same_size(net: Any, what: str) -> None:
    """Refuse a network whose output is not its input's size and kind (super-resolution, gray -> colour), which
    ``what`` (a strategy that restores an input at its own size) needs."""
    if net.scale != 1 or net.in_channels != net.out_channels:
        raise ConfigError(f"{what}, which needs a network whose output is its input's size and kind (this one: "
                          f"scale {net.scale}, {net.in_channels} -> {net.out_channels} channels)")


def batch_subset(batch: Mapping[str, Any], index: Sequence[int], size: int) -> dict[str, Any]:
    """The entries of ``batch`` for the samples ``index``: tensors and lists whose first axis is the batch's
    (``size``) are indexed; everything else is kept as it is."""
    rows = torch.as_tensor(list(index), dtype=torch.long)
    subset: dict[str, Any] = {}
    for key, value in batch.items():
        if isinstance(value, Tensor) and value.dim() and value.shape[0] == size:
            subset[key] = value[rows.to(value.device)]
        elif isinstance(value, list | tuple) and len(value) == size:
            subset[key] = [value[i] for i in index]
        else:
            subset[key] = value
    return subset


class FeatureTap(Head):
    """A head that keeps the feature at chosen positions (with their gradients) and then applies the model's
    own head, so the network computes what it computes without the tap."""

    def __init__(self, inner: Head | None, positions: Sequence[str]) -> None:
        super().__init__()
        self.inner = inner
        self.positions = set(positions)
        self.context_keys = inner.context_keys if inner is not None else ()
        self.features: dict[str, Tensor] = {}

    def forward(self, name: str, feature: Tensor, image: Tensor, **context: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        if name in self.positions:
            self.features[name] = feature
        if self.inner is None:
            return feature, {}
        return self.inner(name, feature, image, **context)
