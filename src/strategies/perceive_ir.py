"""Perceive-IR's two stages as strategies (``model=perceive_ir``; the second is its default).

The network reads each image's caption through CLIP's text encoder; captions are data (the batch's ``caption``
field, empty where the data has none). The release's objective sums the L1 losses of every decoder pass (its
``ImageCleanModel_IterSup_Vec``: the averaged output itself is not supervised).

The paper's quality-aware learning is not in the release; it is built from the paper's description:

* stage 1, ``strategy=perceive_ir_prompts``: a quality perceiver. Learned context vectors (CoOp's form: ``length``
  vectors shared by the levels, then the level's word) make CLIP text prompts of three quality levels
  ("Excellent", "Mediocre", "Terrible"); they learn, CLIP frozen, by a cross-entropy over CLIP's similarities
  (scaled by 100) that puts each clean image at "Excellent", the network's restored image at "Mediocre" and the
  degraded input at "Terrible". The restorer trains beside them by its own objective (``restorer_weight``; the
  paper's figure marks it learnable) or, at 0, stays as ``model.pretrained`` gave it.
* stage 2, ``strategy=perceive_ir``: the release's objective plus, where weighted (the paper's ``clip_weight=0.05``,
  ``dpl_weight=0.1``; 0 by default, the release's), the CLIP quality term (a cross-entropy towards "Excellent"
  over the quality prompts' similarities with the restored image: stage 1's learned prompts from ``prompts=<its
  checkpoint>``, or the level words alone without it) and the difficulty-adaptive perceptual loss (a contrastive
  VGG16 term over relu1_2, relu2_2, relu3_3: the L1 distance of the restored image's features to the clean
  image's over their distance to negatives': the degraded input, the paper's easy negative, and, as the harder
  one, the first pass's output when grading the second; the paper's proxy-model outputs are not available).

The paper's third term (a contrastive loss on its degradation code) has no counterpart in the released network.
Stage 1's context length and initialisation are not published: 16 vectors from N(0, 0.02) (CoOp's defaults).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.models.backbones.base import crop_to, pad_to_multiple
from src.strategies.base import Strategy
from src.utils.errors import ConfigError


def _captions(batch: Mapping[str, Any], size: int) -> list[str]:
    captions = batch.get("caption")
    return [str(c) for c in captions] if captions is not None else [""] * size


#: the quality levels of the paper's CLIP term, best first
QUALITY_LEVELS = ("Excellent", "Mediocre", "Terrible")
#: the scale of CLIP's similarities in the quality terms (CLIP's trained logit scale, exp(4.6052))
QUALITY_SCALE = 100.0
#: where a checkpoint keeps the learned quality context
PROMPTS_KEY = "strategy.quality.context"


class QualityPrompts(nn.Module):
    """Learned text prompts of the quality levels: ``length`` context vectors shared by the levels, then each
    level's word (``X X ... X Excellent.`` with the ``X`` tokens' embeddings replaced by ``context``)."""

    def __init__(self, width: int, length: int = 16, levels: Sequence[str] = QUALITY_LEVELS, seed: int = 0) -> None:
        super().__init__()
        self.levels, self.length = tuple(levels), int(length)
        generator = torch.Generator().manual_seed(seed)
        self.context = nn.Parameter(torch.randn(self.length, width, generator=generator) * 0.02)

    def features(self, clip: Any, device: torch.device) -> Tensor:
        """The levels' text features (levels x 512), with gradients to ``context``."""
        texts = [" ".join(["X"] * self.length) + f" {level}." for level in self.levels]
        embeddings, ends = clip.prompt_embeddings(texts, device)
        context = self.context.to(device=device, dtype=embeddings.dtype).expand(len(texts), -1, -1)
        prompts = torch.cat([embeddings[:, :1], context, embeddings[:, 1 + self.length :]], dim=1)
        return clip.encode_embeddings(prompts, ends)


def quality_logits(image: Tensor, levels: Tensor) -> Tensor:
    """The scaled cosine similarities of CLIP's image features with the levels' text features."""
    return QUALITY_SCALE * F.normalize(image.float(), dim=-1) @ F.normalize(levels.float(), dim=-1).T


class PerceiveIRTraining(Strategy):
    """L1 of every pass, with the batch's captions given to the network; optionally the quality-aware terms."""

    name, learns_prompts, prompt_seed = "perceive_ir", False, 0

    def __init__(self, clip_weight: float = 0.0, dpl_weight: float = 0.0, vgg_weights: str | None = None,
                 prompts: str | None = None, prompt_length: int = 16) -> None:
        super().__init__()
        self.clip_weight, self.dpl_weight, self.vgg_weights = float(clip_weight), float(dpl_weight), vgg_weights
        self.prompts, self.prompt_length = prompts, int(prompt_length)
        self.__dict__["vgg"] = None
        self.__dict__["prompts_read"] = False

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

    def level_features(self, net: Any, device: torch.device) -> Tensor:
        """The quality levels' text features: stage 1's learned prompts where given, else the level words."""
        if self.prompts is None:
            return net.clip.text(list(QUALITY_LEVELS), device)
        self.read_prompts()
        with torch.no_grad():
            return self.quality.features(net.clip, device)

    def read_prompts(self) -> None:
        """Stage 1's learned context from ``prompts`` (once, at the first training step: evaluation rebuilds it from
        the checkpoint and does not need the file)."""
        if self.prompts_read:
            return
        from src.utils.weights import load_state_dict_file

        state = load_state_dict_file(self.prompts)
        context = state.get(PROMPTS_KEY)
        if context is None:
            raise ConfigError(f"model.strategy.prompts={self.prompts} holds no {PROMPTS_KEY}: expected a checkpoint "
                              "of a strategy=perceive_ir_prompts run (Perceive-IR's first stage)")
        if context.shape != self.quality.context.shape:
            raise ConfigError(f"model.strategy.prompts={self.prompts}: its context is {tuple(context.shape)}, this "
                              f"model's {tuple(self.quality.context.shape)} (model.strategy.prompt_length and the "
                              "CLIP of both stages must agree)")
        with torch.no_grad():
            self.quality.context.copy_(context)
        self.__dict__["prompts_read"] = True

    def clip_quality(self, net: Any, restored: Tensor) -> Tensor:
        """Cross-entropy towards "Excellent" of CLIP's quality-level similarities of the restored image."""
        with torch.no_grad():
            levels = self.level_features(net, restored.device)
        logits = quality_logits(net.clip.image(restored), levels)  # graded through CLIP: gradients to the image
        return F.cross_entropy(logits, torch.zeros(len(restored), dtype=torch.long, device=restored.device))

    def bind(self, module: Any) -> None:
        if not hasattr(module.net, "passes"):
            raise ConfigError(f"strategy={self.name} trains Perceive-IR (model=perceive_ir), not "
                              f"{type(module.net).__name__}")
        self.quality = QualityPrompts(module.net.clip.text_width, self.prompt_length, seed=self.prompt_seed)
        self.quality.requires_grad_(self.learns_prompts)

    def restored_passes(self, module: Any, batch: Mapping[str, Any]) -> tuple[list[Tensor], dict[str, Tensor]]:
        """Every pass's output (cropped to the input) and its L1 term."""
        net, gt = module.net, batch["gt"]
        lq, size = pad_to_multiple(batch["lq"], net.multiple)
        with torch.no_grad():
            text = net.clip.text(_captions(batch, lq.shape[0]), lq.device).to(lq.dtype)
            image = net.clip.image(lq).to(lq.dtype)
        outputs = [crop_to(out, size) for out in net.passes(lq, text, image)]
        return outputs, {f"perceive_ir/l1_pass{i}": F.l1_loss(out, gt) for i, out in enumerate(outputs)}

    def training_loss(self, module: Any, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        net, gt = module.net, batch["gt"]
        outputs, terms = self.restored_passes(module, batch)
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


class PerceiveIRPromptLearning(PerceiveIRTraining):
    """Stage 1: the quality prompts learn to rank clean > restored > degraded in CLIP's space; the restorer trains
    by its passes' L1 at ``restorer_weight`` (frozen at 0)."""

    name, learns_prompts = "perceive_ir_prompts", True

    def __init__(self, restorer_weight: float = 1.0, prompt_length: int = 16, seed: int = 0) -> None:
        super().__init__(prompt_length=prompt_length)
        self.restorer_weight, self.prompt_seed = float(restorer_weight), int(seed)

    def bind(self, module: Any) -> None:
        super().bind(module)
        if not self.restorer_weight:
            module.net.requires_grad_(False)

    def training_loss(self, module: Any, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        lq, gt, net = batch["lq"], batch["gt"], module.net
        with torch.set_grad_enabled(bool(self.restorer_weight)):
            outputs, terms = self.restored_passes(module, batch)
        restored = torch.stack(outputs).mean(0).detach().clamp(0, 1)
        images = torch.cat([gt, restored, lq])
        labels = torch.arange(len(QUALITY_LEVELS), device=lq.device).repeat_interleave(len(lq))
        with torch.no_grad():
            seen = net.clip.image(images)
        logits = quality_logits(seen, self.quality.features(net.clip, lq.device))
        ranking = F.cross_entropy(logits, labels)
        total = ranking + (self.restorer_weight * sum(terms.values()) if self.restorer_weight else 0.0)
        terms = {k: v.detach() for k, v in terms.items()}
        terms["perceive_ir/quality_ce"] = ranking.detach()
        terms["perceive_ir/quality_accuracy"] = (logits.argmax(1) == labels).float().mean()
        return module.complete_objective(total, terms, batch, {}, None)
