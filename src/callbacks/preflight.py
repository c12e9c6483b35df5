"""Before the first training step: will the run fit in this machine's memory, and about how long will it take?

Prints both, and stops a run whose estimated peak exceeds ``fraction`` of the memory available (or
``memory_limit_gib``) with the overrides that would fit, instead of being killed by the kernel with nothing
printed. The estimate is :mod:`src.training.footprint`'s (two tiny measured steps, scaled).
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from typing import Any

import lightning as L
import torch

from src.training.footprint import (
    GIB,
    Footprint,
    footprint,
    left_as_found,
    optimizer_state_bytes,
    probe_sides,
    probe_steps,
)
from src.training.precision import TrainingStepMixedPrecision
from src.training.speed import bf16_supported
from src.utils.errors import UserError
from src.utils.memory import available_bytes, current_mib

log = logging.getLogger(__name__)


class RunTooLargeError(UserError, MemoryError):
    """The run's estimated peak memory exceeds what this machine has; the message names overrides that fit."""


def _gib(value: float) -> str:
    return f"{value / GIB:.1f} GiB"


class Preflight(L.Callback):
    """Estimate peak memory and duration at fit start; refuse (``refuse``) a run that cannot fit.

    Args:
        batch_size, patch_size: of the training batches (``${data.batch_size}``, ``${data.patch_size}``);
            ``patch_size: null`` (no training patches known) skips the check.
        fraction: of the available memory a run may plan to use (the rest: loader workers, validation images).
        memory_limit_gib: plan against this many GiB for the whole process instead of what is available.
        refuse: stop a run that does not fit (``false``: warn and go on).
        margin: the estimate is multiplied by this before it is compared. The probes' line came out 10% under
            the measured peak of paper-size PromptIR (batch 2, 128x128, CPU: 7.6 GiB estimated with what the
            process held, 8.4 GiB peak RSS measured), the optimiser step's temporaries and the first real step's
            per-shape choices being outside it.
    """

    def __init__(self, batch_size: int, patch_size: int | None, fraction: float = 0.9,
                 memory_limit_gib: float | None = None, refuse: bool = True, margin: float = 1.15) -> None:
        super().__init__()
        if not 0 < fraction <= 1:
            raise ValueError(f"callbacks.preflight.fraction must be in (0, 1], got {fraction}")
        self.batch_size = int(batch_size)
        self.patch_size = None if patch_size is None else int(patch_size)
        self.fraction = float(fraction)
        self.memory_limit_gib = memory_limit_gib
        self.refuse = refuse
        self.margin = float(margin)
        #: the last estimate and its verdict (for the record and tests)
        self.report: dict[str, Any] | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """After a resumed run's state is restored and the loaders are made (so counting the steps changes
        nothing), before the first step. The probes run on a copy of the module: its parameters carry no
        DDP hooks (a backward through the original's would all-reduce outside the training step) and the
        run's own weights, buffers and gradients are never touched."""
        if self.patch_size is None or not hasattr(pl_module, "training_loss"):
            return
        if trainer.fast_dev_run:  # a one-batch check runs the real step at once: no estimate to wait for
            log.info("preflight: skipped (fast_dev_run)")
            return
        device = pl_module.device
        settings = getattr(pl_module, "speed", None)
        dtype = settings.autocast_dtype if settings is not None else None
        if isinstance(getattr(trainer, "precision_plugin", None), TrainingStepMixedPrecision):
            dtype = None  # its trial may settle on fp32: plan for that, the larger footprint
        channels_last = bool(settings and settings.channels_last)
        multiple = int(getattr(getattr(pl_module, "net", None), "multiple", 1) or 1)
        held = current_mib(device.type) * 2**20
        try:
            probe = copy.deepcopy(pl_module)
            with left_as_found(probe, device):
                probes = probe_steps(probe, device, probe_sides(multiple, self.patch_size), dtype, channels_last,
                                     scale=int(getattr(getattr(pl_module, "net", None), "scale", 1) or 1),
                                     fields=pl_module.example_fields(1) if hasattr(pl_module, "example_fields")
                                     else {})
            del probe
        except (KeyError, TypeError, NotImplementedError) as err:  # an objective that needs more than lq/gt
            log.warning("preflight: no estimate for this model (%s: %s)", type(err).__name__, err)
            return
        if probes is None:
            log.warning("preflight: peak memory cannot be measured in this process; no estimate")
            return
        parameter_bytes = sum(p.numel() * p.element_size() for p in pl_module.parameters() if p.requires_grad)
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        state = optimizer_state_bytes(optimizer, parameter_bytes)
        self._judge(trainer, footprint(probes, self.batch_size, self.patch_size, state, held), device, dtype)

    def _judge(self, trainer: L.Trainer, estimate: Footprint, device: torch.device, dtype: torch.dtype | None) -> None:
        steps = trainer.estimated_stepping_batches
        duration = estimate.seconds_per_step * steps if steps not in (None, float("inf")) else None
        new_bytes = (estimate.peak_bytes - estimate.held_bytes) * self.margin
        budget: float | None = None
        where = ""
        if self.memory_limit_gib is not None:
            budget = float(self.memory_limit_gib) * GIB - estimate.held_bytes
            where = f"the {self.memory_limit_gib} GiB limit less what is held"
        elif (free := available_bytes(device)) is not None:
            budget, where = self.fraction * free, f"{self.fraction:.0%} of {_gib(free)} available on {device}"
        precision = "bf16" if dtype is not None else "fp32"
        lines = [
            f"preflight: one training step of batch {self.batch_size} at {self.patch_size}x{self.patch_size} "
            f"({precision}) needs about {_gib(new_bytes)} more on {device} (x{self.margin:g} margin; "
            f"activations {_gib(estimate.activation_bytes)}, gradients and workspace {_gib(estimate.fixed_bytes)}, "
            f"optimiser state {_gib(estimate.optimizer_bytes)}; "
            f"{_gib(estimate.held_bytes)} held already)"
            + (f"; budget {_gib(budget)} ({where})" if budget is not None else "; available memory unknown"),
        ]
        if duration is not None:
            lines.append(f"preflight: {steps} training steps take roughly {dt.timedelta(seconds=round(duration))} "
                         f"({estimate.seconds_per_step:.2f} s a step, extended from two measured batch-1 steps; "
                         "validation and loading not counted)")
        fits = budget is None or new_bytes <= budget
        self.report = {"peak_bytes": estimate.peak_bytes, "new_bytes": new_bytes, "budget_bytes": budget,
                       "seconds_per_step": estimate.seconds_per_step, "steps": steps, "fits": fits}
        for line in lines:
            log.info("%s", line)
        if fits or budget is None:
            return
        advice = self._advice(estimate, budget, device, dtype)
        message = (f"{lines[0]}.\nThis run does not fit. Overrides that would: {advice}; or "
                   "callbacks.preflight.refuse=false to try anyway.")
        if self.refuse:
            raise RunTooLargeError(message)
        log.warning("%s", message)

    def _advice(self, estimate: Footprint, budget: float, device: torch.device, dtype: torch.dtype | None) -> str:
        """The overrides under which the estimate fits the budget: batch, patch, a GPU, bf16."""
        per_sample = estimate.activation_bytes / self.batch_size
        room = budget / self.margin - estimate.fixed_bytes - estimate.optimizer_bytes
        options = []
        batch = int(room // per_sample) if per_sample > 0 else 0
        if 1 <= batch < self.batch_size:
            options.append(f"data.batch_size={batch}")
        per_pixel = per_sample / (self.patch_size**2)
        side = int((room / (per_pixel * self.batch_size)) ** 0.5) // 16 * 16 if per_pixel > 0 and room > 0 else 0
        if 16 <= side < self.patch_size:
            options.append(f"data.patch_size={side} (batch {self.batch_size})")
        if device.type == "cpu" and torch.cuda.is_available():
            options.append("trainer=gpu")
        if dtype is None and bf16_supported(device):
            options.append("trainer.precision=bf16-mixed (about half the activation memory)")
        if not options:
            options.append("a machine with more memory (even batch 1 at a 16x16 patch does not fit)")
        return "; ".join(options)
