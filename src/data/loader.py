"""A training DataLoader that Lightning can checkpoint, so a killed run resumes mid-epoch exactly.

Lightning saves ``state_dict()`` of a loader that has one and hands it back through ``load_state_dict``
before the resumed epoch's iterator is made. The state is the epoch and the number of batches already
trained on in it (read from the trainer when the checkpoint is written); on load, the sampler skips
those samples, so the resumed run sees exactly the batches the uninterrupted run would have.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.utils.data import DataLoader

from src.data.sampler import MixSampler


class ResumableLoader(DataLoader):
    """``DataLoader`` over a :class:`MixSampler` with checkpointable progress."""

    def __init__(self, *args: Any, progress: Callable[[], tuple[int, int]] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not isinstance(self.sampler, MixSampler):
            raise TypeError("ResumableLoader needs a MixSampler")
        self._progress = progress

    def state_dict(self) -> dict[str, int]:
        epoch, batches = self._progress() if self._progress else (self.sampler.epoch, 0)
        return {"epoch": int(epoch), "batches": int(batches), "batch_size": int(self.batch_size or 1)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        epoch, batches = int(state["epoch"]), int(state["batches"])
        if batches >= len(self):  # the checkpoint was written at the end of an epoch
            self.sampler.resume(epoch + 1, 0)
        else:
            self.sampler.resume(epoch, batches * int(state["batch_size"]))
