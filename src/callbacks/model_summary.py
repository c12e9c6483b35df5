"""Lightning's rich model summary with a FLOPs column that is right, not zero.

Lightning counts FLOPs only for a module with an ``example_input_array``; without one its summary prints a
FLOPs column of zeros. This callback gives the module an input of ``input_size`` squared (the official training
patch size by default) before the summary runs, so the column and the total are the FLOPs of one forward at that
size, the figure ``python -m src.summary resolution=[128,128]`` prints.
"""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import RichModelSummary
from typing_extensions import override


class ModelSummaryWithFlops(RichModelSummary):
    """``RichModelSummary`` whose FLOPs are counted on a ``1 x C x input_size x input_size`` input."""

    def __init__(self, max_depth: int = 1, input_size: int = 128) -> None:
        super().__init__(max_depth=max_depth)
        if input_size < 1:
            raise ValueError(f"callbacks.model_summary.input_size must be >= 1, got {input_size}")
        self.input_size = input_size

    @override
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if pl_module.example_input_array is None and hasattr(pl_module, "net"):
            size = self.input_size
            image = torch.zeros(1, pl_module.net.in_channels, size, size)
            dim = getattr(pl_module.net, "condition_dim", 0)  # a conditioned network: (image, condition)
            pl_module.example_input_array = (image, torch.zeros(1, dim)) if dim else image
        super().on_fit_start(trainer, pl_module)
