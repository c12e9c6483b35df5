"""Perceive-IR's released objective and caption plumbing (the default strategy of ``model=perceive_ir``).

The network reads each image's caption through CLIP's text encoder; captions are data (the batch's ``caption``
field, empty where the data has none). Training sums the L1 losses of every decoder pass (the release's
``ImageCleanModel_IterSup_Vec``: the averaged output itself is not supervised). The paper's quality-aware terms
(CLIP quality prompts, the difficulty-adaptive perceptual loss, a contrastive degradation code) are not in the
release and are not built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from src.models.backbones.base import crop_to, pad_to_multiple
from src.strategies.base import Strategy
from src.utils.errors import ConfigError


def _captions(batch: Mapping[str, Any], size: int) -> list[str]:
    captions = batch.get("caption")
    return [str(c) for c in captions] if captions is not None else [""] * size


class PerceiveIRTraining(Strategy):
    """L1 of every pass, with the batch's captions given to the network."""

    def bind(self, module: Any) -> None:
        if not hasattr(module.net, "passes"):
            raise ConfigError(f"strategy=perceive_ir trains Perceive-IR (model=perceive_ir), not "
                              f"{type(module.net).__name__}")

    def training_loss(self, module: Any, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        net, gt = module.net, batch["gt"]
        lq, size = pad_to_multiple(batch["lq"], net.multiple)
        with torch.no_grad():
            text = net.clip.text(_captions(batch, lq.shape[0]), lq.device).to(lq.dtype)
            image = net.clip.image(lq).to(lq.dtype)
        outputs = [crop_to(out, size) for out in net.passes(lq, text, image)]
        terms = {f"perceive_ir/l1_pass{i}": F.l1_loss(out, gt) for i, out in enumerate(outputs)}
        total = sum(terms.values())
        return module.complete_objective(total, {k: v.detach() for k, v in terms.items()}, batch, {}, None)

    def predict(self, module: Any, batch: Mapping[str, Any]) -> Tensor | None:
        module.net.set_captions(_captions(batch, batch["lq"].shape[0]))
        try:
            return module.predict(batch)
        finally:
            module.net.set_captions(None)
