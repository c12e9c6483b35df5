"""IR-SDE training (DA-CLIP's ``DenoisingModel``): the noise network learns from states of the forward SDE.

Each training image draws a step ``t`` uniform in 1 ... T and a standard normal ``z``; the state is
``x_t = mu_bar(gt, t) + sigma_bar_t z`` with the degraded image as the SDE's mean; the U-Net predicts the noise
of ``x_t`` (conditioned on the image's content and degradation embeddings) and the objective is the L1 distance
between one reverse SDE step with that noise and the optimal ``x_{t-1}`` given the clean image (the release's
"matching" loss, weight ``weight``). The draws come from a generator keyed by the step and the rank, so a
resumed run draws what the uninterrupted one drew. Evaluation samples the SDE (the network's ``forward``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from src.strategies.base import Strategy
from src.utils.errors import ConfigError


class IRSDETraining(Strategy):
    """The matching loss of DA-CLIP's IR-SDE, for a network with ``sde``, ``unet`` and ``contexts``."""

    def __init__(self, weight: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        self.weight, self.seed = float(weight), int(seed)

    def bind(self, module: Any) -> None:
        if not all(hasattr(module.net, name) for name in ("sde", "unet", "contexts")):
            raise ConfigError(f"strategy=irsde trains an IR-SDE network (model=daclip_irsde), not "
                              f"{type(module.net).__name__}")

    def training_loss(self, module: Any, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        lq, gt = batch["lq"], batch["gt"]
        net = module.net
        trainer = getattr(module, "_trainer", None)
        rank = trainer.global_rank if trainer is not None else 0
        generator = torch.Generator(device=lq.device).manual_seed(
            (self.seed * 1_000_003 + int(module.global_step) * 7919 + rank) % 2**63)
        t = torch.randint(1, net.sde.steps + 1, (lq.shape[0], 1, 1, 1), generator=generator, device=lq.device)
        z = torch.randn(gt.shape, generator=generator, device=lq.device, dtype=gt.dtype)
        xt = net.sde.noisy_state(gt, lq, t, z)
        content, degradation = net.contexts(lq)
        noise = net.unet(xt, lq, t.reshape(-1), degradation, content)
        matching = net.sde.matching_loss(noise, xt, gt, lq, t)
        return module.complete_objective(self.weight * matching, {"irsde/matching_l1": matching.detach()}, batch,
                                         {}, None)
