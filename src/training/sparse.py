"""Parameters a training step may leave unused (experts of a mixture), without DDP's unused-parameter search.

DDP with ``find_unused_parameters=False`` needs a gradient for every parameter in every backward; top-1
routing leaves experts without one. The official MoCE-IR code pays for ``find_unused_parameters=True`` (a
graph walk every step), under which an expert no rank used keeps ``grad=None``, so AdamW skips it: no weight
decay, no moment update. We keep that optimiser behaviour without the search:

1. a module whose parameter groups a step may skip implements :class:`SparselyUsed` (it lists the groups
   and counts, during training forwards, how often each group ran);
2. :func:`anchor` is a zero-weighted term touching every group parameter, added to the training loss: every
   parameter is in the graph, and gets an exactly zero extra gradient (``g + 0 == g``);
3. before the optimiser step, :func:`drop_unused_grads` sums the counts over ranks (so every rank decides
   alike) and sets ``grad=None`` on the groups that no rank used since the last step, which restores what
   the official run's optimiser sees. Counts accumulate over micro-batches, so gradient accumulation works.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn


@runtime_checkable
class SparselyUsed(Protocol):
    """A module whose parameter groups (e.g. experts) a training step may leave unused."""

    def usage_groups(self) -> Sequence[Sequence[nn.Parameter]]:
        """The groups: each is used or unused as a whole in a forward."""
        ...

    def usage_counts(self) -> Tensor:
        """Per group, how often it ran in training forwards since :meth:`reset_usage` (on the module's device)."""
        ...

    def reset_usage(self) -> None:
        """Forget the counts (after each optimiser step)."""
        ...


def sparse_modules(root: nn.Module) -> list[SparselyUsed]:
    """Every sub-module of ``root`` (itself included) that implements :class:`SparselyUsed`."""
    return [m for m in root.modules() if isinstance(m, SparselyUsed)]


def _first_element(p: Tensor) -> Tensor:
    return p[(0,) * p.dim()]


def anchor(modules: Iterable[SparselyUsed]) -> Tensor | None:
    """``0 *`` a sum over one element of every group parameter: all of them join the graph, none changes.

    Its gradient is an exact zero for every element (the backward of an indexed element is a zero tensor
    with one ``0 * 1`` in it), so adding it to the loss changes no gradient. ``None`` without groups.
    """
    terms = [
        _first_element(p)
        for module in modules
        for group in module.usage_groups()
        for p in group
        if p.requires_grad and p.numel()
    ]
    if not terms:
        return None
    return torch.stack([t.float() for t in terms]).sum() * 0.0


def drop_unused_grads(
    modules: Sequence[SparselyUsed], reduce: Callable[[Tensor], Tensor] | None = None
) -> list[tuple[int, int]]:
    """Set ``grad=None`` on the groups that ran on no rank since the last reset, then reset the counts.

    ``reduce`` sums a tensor over ranks (``strategy.reduce(t, reduce_op="sum")``; ``None``: one process).
    Returns ``(module index, group index)`` of the groups cleared. One small all-reduce and one host read
    per optimiser step.
    """
    if not modules:
        return []
    counts = [m.usage_counts().reshape(-1) for m in modules]
    sizes = [len(m.usage_groups()) for m in modules]
    for module, c, n in zip(modules, counts, sizes, strict=True):
        if c.numel() != n:
            raise ValueError(f"{type(module).__name__}.usage_counts() has {c.numel()} entries for {n} groups")
    device = counts[0].device
    total = torch.cat([c.to(device=device, dtype=torch.float32) for c in counts])
    if reduce is not None:
        total = reduce(total)
    used = total.tolist()
    cleared = []
    offset = 0
    for i, (module, n) in enumerate(zip(modules, sizes, strict=True)):
        for j, group in enumerate(module.usage_groups()):
            if used[offset + j] == 0:
                for p in group:
                    p.grad = None
                cleared.append((i, j))
        offset += n
        module.reset_usage()
    return cleared
