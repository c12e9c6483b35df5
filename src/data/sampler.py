"""The training sampler: which sample of which family fills each slot of an epoch.

It yields ``(epoch, index)`` keys into a concatenation of family datasets, so a dataset derives every
random choice (crop, flip, degradation) from ``(seed, epoch, index)`` and the same seed gives the same
patches in any process. Sharding across DDP ranks happens here (Lightning's own distributed sampler is
switched off with ``use_distributed_sampler: false``), and a resumed run can skip the batches its
interrupted epoch had already trained on, so that resuming reproduces an uninterrupted run.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class MixSampler(Sampler[tuple[int, int]]):
    """Epoch-seeded mixing of families.

    ``mode="concat"`` is the official recipe: every sample of every (repeated) family list once an
    epoch, shuffled together. ``mode="weighted"`` draws the family of each slot with probabilities
    proportional to ``weights`` (independent of dataset sizes) and ``num_samples`` slots an epoch.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        weights: Sequence[float] | None = None,
        num_samples: int | None = None,
        mode: str = "weighted",
        seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        if mode not in ("weighted", "concat"):
            raise ValueError(f"unknown mixing mode {mode!r}; expected 'weighted' or 'concat'")
        if any(s <= 0 for s in sizes):
            raise ValueError(f"every family needs at least one sample, got sizes {list(sizes)}")
        self.sizes = list(sizes)
        self.offsets = [0, *torch.tensor(self.sizes).cumsum(0).tolist()[:-1]]
        self.mode = mode
        self.seed = seed
        self.shuffle = shuffle
        if mode == "weighted":
            if weights is None or len(weights) != len(sizes) or min(weights) < 0 or sum(weights) <= 0:
                raise ValueError(f"weighted mixing needs one non-negative weight per family, got {weights}")
            self.weights = torch.tensor([float(w) for w in weights], dtype=torch.float64)
            self.num_samples = int(num_samples) if num_samples else sum(self.sizes)
        else:
            self.weights = None
            self.num_samples = sum(self.sizes)
        self.epoch = 0
        self._resume: tuple[int, int] | None = None  # (epoch, samples to skip on this rank)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume(self, epoch: int, skip: int) -> None:
        """Start ``epoch`` after its first ``skip`` samples on this rank (used once, by a resumed run)."""
        self.epoch = epoch
        self._resume = (epoch, skip)

    def epoch_indices(self, epoch: int) -> torch.Tensor:
        """All global indices of ``epoch``, before rank sharding."""
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        if self.mode == "concat":
            total = sum(self.sizes)
            return torch.randperm(total, generator=gen) if self.shuffle else torch.arange(total)
        families = torch.multinomial(self.weights, self.num_samples, replacement=True, generator=gen)
        out = torch.empty(self.num_samples, dtype=torch.long)
        for f, (size, offset) in enumerate(zip(self.sizes, self.offsets)):
            slots = (families == f).nonzero().flatten()
            if len(slots) == 0:
                continue
            order = torch.cat(
                [torch.randperm(size, generator=gen) for _ in range(math.ceil(len(slots) / size))]
            )[: len(slots)]
            out[slots] = order + offset
        return out

    def family_counts(self, epoch: int = 0) -> list[int]:
        """How many slots each family fills in ``epoch`` (logged at the start of training)."""
        idx = self.epoch_indices(epoch)
        bounds = [*self.offsets, sum(self.sizes)]
        return [int(((idx >= lo) & (idx < hi)).sum()) for lo, hi in zip(bounds[:-1], bounds[1:])]

    def __len__(self) -> int:
        _, world = _rank_world()
        return math.ceil(self.num_samples / world)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rank, world = _rank_world()
        epoch = self.epoch
        indices = self.epoch_indices(epoch)
        per_rank = math.ceil(len(indices) / world)
        if per_rank * world > len(indices):  # pad by wrapping so every rank takes the same number of steps
            indices = torch.cat([indices, indices[: per_rank * world - len(indices)]])
        mine = indices[rank::world].tolist()
        if self._resume is not None and self._resume[0] == epoch:
            mine = mine[self._resume[1] :]
        self._resume = None
        for index in mine:
            yield epoch, index
