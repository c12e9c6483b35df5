"""bf16 for training steps only, kept only where it is faster: what ``trainer.precision: auto`` means on a CPU
with native bf16.

Lightning's ``bf16-mixed`` autocasts validation, test and predict steps too. On a CPU that computes bf16
natively (AMX/AVX512-BF16) bf16 trained Restormer-tiny and colour DnCNN 1.8-2.5x faster than fp32, but
inference ran 0.78x as fast, and the narrowest networks (NAFNet and SwinIR at width 8) trained *slower* in
bf16 (experiments/speed/README.md): the conversions cost more than the arithmetic saves. So only the training
step is cast, and only after a trial: the run's first steps alternate bf16 and fp32, each timed, and the run
settles on bf16 only where it was faster by a margin (:class:`PrecisionTrial`).
"""

from __future__ import annotations

import contextlib
import logging
import statistics
import time
from collections.abc import Generator

from lightning.pytorch.plugins.precision import MixedPrecision

log = logging.getLogger(__name__)

#: steps of each precision left out of the trial (the first steps pay one-time costs: allocator, thread pools)
TRIAL_WARMUP = 1
#: timed steps of each precision
TRIAL_STEPS = 3
#: bf16 is kept only when its median step is at least this much shorter (fp32 is exact: a tie goes to it)
TRIAL_MARGIN = 0.05


class PrecisionTrial:
    """Alternates bf16 and fp32 over a run's first steps, times each, then settles on the faster one.

    ``next_bf16()`` says how to run the coming step; ``record(seconds)`` gives the duration of the step it
    announced. After ``warmup`` untimed and ``steps`` timed steps of each, :attr:`decided` holds the choice.
    """

    def __init__(self, warmup: int = TRIAL_WARMUP, steps: int = TRIAL_STEPS, margin: float = TRIAL_MARGIN) -> None:
        if warmup < 0 or steps < 1 or not 0 <= margin < 1:
            raise ValueError(f"precision trial needs warmup >= 0, steps >= 1, 0 <= margin < 1; got {warmup}, "
                             f"{steps}, {margin}")
        self.warmup, self.steps, self.margin = warmup, steps, margin
        self.times: dict[str, list[float]] = {"bf16": [], "fp32": []}
        self._seen = {"bf16": 0, "fp32": 0}
        self._pending: str | None = None
        #: ``True``: bf16 from now on, ``False``: fp32; ``None`` while the trial runs
        self.decided: bool | None = None

    def next_bf16(self) -> bool:
        """Whether the coming step runs in bf16 (alternating during the trial, bf16 first)."""
        if self.decided is not None:
            return self.decided
        self._pending = "bf16" if self._seen["bf16"] <= self._seen["fp32"] else "fp32"
        return self._pending == "bf16"

    def record(self, seconds: float) -> None:
        """The duration of the step :meth:`next_bf16` last announced (ignored once decided)."""
        if self.decided is not None or self._pending is None:
            return
        kind, self._pending = self._pending, None
        self._seen[kind] += 1
        if self._seen[kind] > self.warmup:
            self.times[kind].append(seconds)
        if all(len(t) >= self.steps for t in self.times.values()):
            bf16, fp32 = (statistics.median(self.times[k]) for k in ("bf16", "fp32"))
            self.decided = bf16 <= fp32 * (1 - self.margin)
            log.info("precision trial: a training step took %.3g s in bf16 and %.3g s in fp32 (medians of %d); "
                     "training continues in %s", bf16, fp32, self.steps,
                     "bf16 (training steps only)" if self.decided else "fp32 (bf16 was not faster here)")

    def summary(self) -> dict[str, object]:
        """The trial's figures, for records."""
        medians = {k: statistics.median(v) if v else None for k, v in self.times.items()}
        return {"decided_bf16": self.decided, "median_s": medians, "times_s": self.times, "margin": self.margin}


def agreed(choice: bool) -> bool:
    """Under DDP every rank takes rank 0's choice (each timed its own steps; the ranks reach the decision at the
    same step, so the broadcast meets on all of them); alone, the choice itself."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return choice
    box = [choice]
    dist.broadcast_object_list(box, src=0)
    if box[0] != choice:
        log.info("precision trial: this rank's timing chose %s, rank 0's %s: following rank 0",
                 "bf16" if choice else "fp32", "bf16" if box[0] else "fp32")
    return bool(box[0])


class TrainingStepMixedPrecision(MixedPrecision):
    """bf16 autocast around ``training_step`` where a :class:`PrecisionTrial` of the first steps found it faster;
    validation, test and predict steps run in fp32.

    A step's duration is the time between the starts of consecutive training steps (backward, optimiser step
    and loading included: the same in both precisions, so the difference is the precision's).
    """

    def __init__(self, device: str = "cpu", trial: bool = True) -> None:
        super().__init__("bf16-mixed", device)
        self.trial = PrecisionTrial() if trial else None
        self._started: float | None = None

    @contextlib.contextmanager
    def train_step_context(self) -> Generator[None, None, None]:
        now = time.perf_counter()
        if self.trial is None:
            bf16 = True
        else:
            undecided = self.trial.decided is None
            if self._started is not None:
                self.trial.record(now - self._started)
            if undecided and self.trial.decided is not None:  # decided by this step's record: agree across ranks
                self.trial.decided = agreed(self.trial.decided)
            bf16 = self.trial.next_bf16()
            self._started = now if self.trial.decided is None else None
        if bf16:
            with self.forward_context():
                yield
        else:
            yield

    @contextlib.contextmanager
    def val_step_context(self) -> Generator[None, None, None]:
        self._started = None  # a validation between two training steps is not part of either
        yield

    @contextlib.contextmanager
    def test_step_context(self) -> Generator[None, None, None]:
        yield

    @contextlib.contextmanager
    def predict_step_context(self) -> Generator[None, None, None]:
        yield
