"""Perceive-IR's released objective and caption plumbing (the default strategy of ``model=perceive_ir``).

The network reads each image's caption through CLIP's text encoder; captions are data (the batch's ``caption``
field, empty where the data has none). Training sums the L1 losses of every decoder pass (the release's
``ImageCleanModel_IterSup_Vec``: the averaged output itself is not supervised).

The paper's quality-aware terms are not in the release; two of them are built from the paper's description, off by
default (the release's objective) and on with the paper's weights (``clip_weight=0.05``, ``dpl_weight=0.1``):

* the CLIP quality term: CLIP's image feature of the restored image against the text features of the quality
  levels "Excellent", "Mediocre", "Terrible" (fixed prompts: the paper learns them in a first stage that is not
  released), a cross-entropy towards "Excellent" over the cosine similarities scaled by 100;
* the difficulty-adaptive perceptual loss: a contrastive VGG16 term (relu1_2, relu2_2, relu3_3), the L1 distance
  of the restored image's features to the clean image's over their distance to negatives': the degraded input
  (the paper's easy negative) and, as the harder one, the first pass's output when grading the second (the
  paper's proxy-model outputs are not available).

The paper's third term (a contrastive loss on its degradation code) has no counterpart in the released network.
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


#: the quality levels of the paper's CLIP term, best first
QUALITY_LEVELS = ("Excellent", "Mediocre", "Terrible")


class PerceiveIRTraining(Strategy):
    """L1 of every pass, with the batch's captions given to the network; optionally the quality-aware terms."""

    def __init__(self, clip_weight: float = 0.0, dpl_weight: float = 0.0, vgg_weights: str | None = None) -> None:
        super().__init__()
        self.clip_weight, self.dpl_weight, self.vgg_weights = float(clip_weight), float(dpl_weight), vgg_weights
        self.__dict__["vgg"] = None

    def feature_network(self) -> Any:
        if self.vgg is None:
            from src.models.layers.vgg import vgg_features

            self.__dict__["vgg"] = vgg_features(self.vgg_weights)
        return self.vgg

    def contrastive_perceptual(self, restored: Tensor, clean: Tensor, negatives: list[Tensor]) -> Tensor:
        """Sum over VGG16's relu1_2, relu2_2, relu3_3 of |f(r) - f(clean)| / (mean over negatives |f(r) - f(n)|)."""
        from src.models.layers.vgg import FEATURE_LAYERS

        vgg = self.feature_network().to(restored.device)
        total = restored.new_zeros(())
        x, y, ns = restored, clean, list(negatives)
        for index, layer in enumerate(vgg):
            x, y, ns = layer(x), layer(y).detach(), [layer(n).detach() for n in ns]
            if index in FEATURE_LAYERS:
                away = sum(F.l1_loss(x, n) for n in ns) / len(ns)
                total = total + F.l1_loss(x, y) / (away + 1e-7)
        return total

    def clip_quality(self, net: Any, restored: Tensor) -> Tensor:
        """Cross-entropy towards "Excellent" of CLIP's quality-level similarities of the restored image."""
        with torch.no_grad():
            levels = F.normalize(net.clip.text(list(QUALITY_LEVELS), restored.device).float(), dim=-1)
        image = F.normalize(net.clip.image(restored).float(), dim=-1)
        logits = 100.0 * image @ levels.T
        return F.cross_entropy(logits, torch.zeros(len(restored), dtype=torch.long, device=restored.device))

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
        if self.dpl_weight:
            dpl = sum(self.contrastive_perceptual(out, gt, [batch["lq"]] + ([outputs[i - 1].detach()] if i else []))
                      for i, out in enumerate(outputs))
            terms["perceive_ir/dpl"] = dpl
            total = total + self.dpl_weight * dpl
        if self.clip_weight:
            quality = sum(self.clip_quality(net, out) for out in outputs)
            terms["perceive_ir/clip_quality"] = quality
            total = total + self.clip_weight * quality
        return module.complete_objective(total, {k: v.detach() for k, v in terms.items()}, batch, {}, None)

    def predict(self, module: Any, batch: Mapping[str, Any]) -> Tensor | None:
        module.net.set_captions(_captions(batch, batch["lq"].shape[0]))
        try:
            return module.predict(batch)
        finally:
            module.net.set_captions(None)
