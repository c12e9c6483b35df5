"""ConStyle v2's two stages as strategies on a prompted network (``model=constyle_v2_nafnet``).

* ``strategy=constyle_pretrain``: only the prompter trains, MoCo-style. The query is the degraded image, the key
  the clean one through a momentum copy of the prompter (``k = m k + (1 - m) q``); the objective is the sum of
  InfoNCE of the prompt ``q1`` against the key and a queue of past prompts (temperature ``temperature``), a
  classification cross-entropy of the pooled features (for ``classify_steps`` steps), the KL divergence of the
  query's class prediction from the key's (momentum classifier), the MSE between query and key prompts (content)
  and a negated MSE between batch Gram matrices of the prompts and of queue entries (style: pushed away). The
  release classifies ImageNet's 1000 object classes; here the classes are the degradation families of the data
  (no object labels in a restoration set), so the classification teaches the prompter the degradations. The
  query and key are the two aligned crops of one pair (the release crops them apart). The classifier, the
  momentum encoder and the queue are the strategy's (checkpoints carry them; a later run drops them).
* ``strategy=constyle_frozen``: restoration with the pre-trained prompter frozen (weights and batch norms: the
  release's stage 2 leaves its batch norms in training mode, which keeps changing their statistics; here they
  stay as pre-trained unless ``release_batch_norm=true``), the rest trained with the model's loss. Start from
  ``model.pretrained=<pretrain ckpt>``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.models.layers.constyle import MomentumKeys, StyleEncoder
from src.strategies.base import Strategy
from src.utils.errors import ConfigError


def prompter_of(module: Any, what: str) -> StyleEncoder:
    """The style encoder that prompts the model: ConStyle's NAFNet's own, or the ConStyle head's."""
    for owner in (module.net, module.head):
        prompter = getattr(owner, "prompter", None)
        if isinstance(prompter, StyleEncoder):
            return prompter
    raise ConfigError(f"{what} needs a network prompted by ConStyle's style encoder (model=constyle_v2_nafnet, or "
                      f"model/head=constyle on a backbone with head positions), not {type(module.net).__name__}")


def gram(x: Tensor) -> Tensor:
    """The release's batch Gram matrix of prompts (B x dim): ``x x^T / (dim * B)``."""
    return x @ x.T / x.numel()


class ConStylePretrain(Strategy):
    """MoCo pre-training of the prompter with ConStyle v2's classification, KL, content and style terms."""

    def __init__(self, families: Sequence[str], queue_size: int = 65760, momentum: float = 0.999,
                 temperature: float = 0.07, classify_steps: int = 50000, weights: Mapping[str, float] | None = None,
                 ) -> None:
        super().__init__()
        self.families = [str(f) for f in families or []]
        self.momentum, self.temperature, self.classify_steps = float(momentum), float(temperature), int(classify_steps)
        self.weights = {"infonce": 1.0, "classify": 1.0, "kl": 1.0, "content": 1.0, "style": 1.0, **(weights or {})}
        unknown = sorted(set(self.weights) - {"infonce", "classify", "kl", "content", "style"})
        if unknown:
            raise ConfigError(f"model.strategy.weights names unknown terms {unknown}")
        self.keys = MomentumKeys(classes=None, queue_size=queue_size)
        classes = max(len(self.families), 1)
        self.classifier = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, classes))
        self.classifier_k = copy.deepcopy(self.classifier).requires_grad_(False)

    def bind(self, module: Any) -> None:
        prompter = prompter_of(module, "strategy=constyle_pretrain")
        self.keys.encoder_k.load_state_dict(prompter.state_dict())
        chosen = {id(p) for p in prompter.parameters()} | {id(p) for p in self.classifier.parameters()}
        for param in module.parameters():
            param.requires_grad_(id(param) in chosen)

    def example_fields(self, batch: int) -> dict[str, Any]:
        return {"family": [self.families[0] if self.families else "probe"] * batch}

    def training_loss(self, module: Any, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        prompter = prompter_of(module, "strategy=constyle_pretrain")
        (q0, q1), _, pooled = prompter.encode(batch["lq"])
        with torch.no_grad():
            self.keys.momentum_update(prompter, self.momentum)
            for key, query in zip(self.classifier_k.parameters(), self.classifier.parameters()):
                key.mul_(self.momentum).add_(query.detach(), alpha=1 - self.momentum)
            (_, k1), _, pooled_k = self.keys.encoder_k.encode(batch["gt"])
            predict_k = self.classifier_k(pooled_k)
        positive = (q1 * k1).sum(dim=1, keepdim=True)
        negatives = self.keys.queue.detach().clone().to(q1.dtype)  # the queue changes below, after this step
        logits = torch.cat([positive, q1 @ negatives], dim=1) / self.temperature
        terms = {"infonce": F.cross_entropy(logits, torch.zeros(len(q1), dtype=torch.long, device=q1.device))}
        predict_q = self.classifier(pooled)
        if self.families and int(module.global_step) < self.classify_steps:
            unknown = sorted(set(batch["family"]) - set(self.families))
            if unknown:
                raise ConfigError(f"the batch has families {unknown} that model.strategy.families lacks")
            labels = torch.tensor([self.families.index(f) for f in batch["family"]], device=q1.device)
            terms["classify"] = F.cross_entropy(predict_q, labels)
        terms["kl"] = F.kl_div(F.log_softmax(predict_q, dim=1), F.softmax(predict_k, dim=1), reduction="batchmean")
        terms["content"] = F.mse_loss(q1, k1)
        following, replaced = self.keys.enqueue(q1)
        terms["style"] = -F.mse_loss(gram(q0), gram(following.to(q0.dtype))) \
            - F.mse_loss(gram(q1), gram(replaced.to(q1.dtype)))
        total = sum(self.weights[name] * value for name, value in terms.items())
        return total, {f"constyle/{name}": value.detach() for name, value in terms.items()}


class ConStyleFrozen(Strategy):
    """Restoration with the prompter's weights frozen, and its batch-norm statistics too (``release_batch_norm``:
    left in training mode, as the release's stage 2, so they follow the restoration data)."""

    def __init__(self, release_batch_norm: bool = False) -> None:
        super().__init__()
        self.release_batch_norm = bool(release_batch_norm)

    def bind(self, module: Any) -> None:
        prompter = prompter_of(module, "strategy=constyle_frozen")
        prompter.requires_grad_(False)
        if not self.release_batch_norm:
            prompter.frozen = True
            prompter.eval()
