"""RAM (Qin et al., ECCV 2024, "Restore Anything with Masks"): masked pre-training, then fine-tuning the layers
that matter.

**Pre-training** (``strategy=ram_pretrain``): a share ``ratio`` of the degraded input's pixels (in squares of
``patch`` pixels) is replaced by a mask token, ``x * (1 - m) + token * m``, and the network restores the clean
image, scored on the masked pixels only (``sum(|y - gt| m) / (sum(m) + 1e-5) / C``, the official MaskL1Loss).
As the official model: one mask per batch, drawn as ``permutation(tokens)[:ceil(tokens * ratio)]`` (the official
``MaskGenerator``; here from a generator seeded by ``seed``, the step and the rank, so a resumed run draws the
same masks). The official token is all zeros and not learned (``token: zeros``); ``token: learned`` (the default,
as the paper describes it) learns one value per channel, starting at zero. Evaluation restores the unmasked input
(the official model with its EMA) or, with ``test: composite``, each pixel from the pass in which it was masked.

**Fine-tuning** (``strategy=ram_finetune``): the layers ranked by Mask Attribute Conductance
(``python -m src.analysis.mac``, :mod:`src.analysis.mac`) are read from its ranking file and only the top
``ratio`` of them train (the paper: 0.3 for PromptIR, 0.1 for SwinIR; ``ratio: null`` picks by backbone); every
other parameter is frozen. A layer is a module that owns parameters, selected with exactly its own parameters,
as the official fine-tuning does (DragonisCV/RAM; an older snapshot ranked nothing and froze nothing).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from src.strategies.base import Strategy, require_same_size
from src.utils.errors import ConfigError

log = logging.getLogger(__name__)

#: the paper's fine-tuned share of ranked layers, by backbone class; other backbones take DEFAULT_RATIO
PAPER_RATIOS = {"SwinIR": 0.1, "Restormer": 0.3}
DEFAULT_RATIO = 0.3


def pixel_mask(height: int, width: int, ratio: float, patch: int, rng: np.random.RandomState) -> np.ndarray:
    """A ``height x width`` array of 0/1, 1 = masked: ``ceil(tokens * ratio)`` of the ``patch``-pixel squares
    chosen by one ``rng.permutation`` (with ``np.random.seed(s)`` and a square side, the official
    ``MaskGenerator`` gives the same mask)."""
    if height % patch or width % patch:
        raise ConfigError(f"model.strategy.patch={patch} must divide the training patch ({height}x{width})")
    rows, cols = height // patch, width // patch
    tokens = rows * cols
    chosen = rng.permutation(tokens)[: int(math.ceil(tokens * ratio))]
    grid = np.zeros(tokens, dtype=np.float32)
    grid[chosen] = 1.0
    return grid.reshape(rows, cols).repeat(patch, axis=0).repeat(patch, axis=1)


def check_ratio(ratio: Any, key: str) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio <= 1:
        raise ConfigError(f"{key}={ratio!r}: expected a share in (0, 1]")
    return float(ratio)


class RamPretrain(Strategy):
    """Masked image modelling on the degraded input (see the module docstring)."""

    def __init__(self, ratio: float = 0.5, patch: int = 1, token: str = "learned", test: str = "plain",
                 seed: int = 0) -> None:
        super().__init__()
        self.ratio = check_ratio(ratio, "model.strategy.ratio")
        if isinstance(patch, bool) or not isinstance(patch, int) or patch < 1:
            raise ConfigError(f"model.strategy.patch={patch!r}: expected a side in pixels >= 1")
        if token not in ("learned", "zeros"):
            raise ConfigError(f"model.strategy.token={token!r}: expected 'learned' or 'zeros' (the official code)")
        if test not in ("plain", "composite"):
            raise ConfigError(f"model.strategy.test={test!r}: expected 'plain' or 'composite'")
        self.patch, self.token, self.test, self.seed = patch, token, test, int(seed)
        self.mask_token: nn.Parameter | None = None

    def bind(self, module: Any) -> None:
        net = module.net
        require_same_size(net, "RAM's masked pre-training restores the masked input at its own size")
        if self.token == "learned":
            self.mask_token = nn.Parameter(torch.zeros(1, net.in_channels, 1, 1))

    def mask(self, height: int, width: int, step: int, rank: int, device: torch.device) -> Tensor:
        """The ``1 x 1 x H x W`` mask of a training step (the same for a step whenever it is run)."""
        rng = np.random.RandomState((self.seed * 1_000_003 + step * 7919 + rank) % 2**32)
        return torch.from_numpy(pixel_mask(height, width, self.ratio, self.patch, rng)).to(device)[None, None]

    def masked(self, lq: Tensor, mask: Tensor) -> Tensor:
        token = self.mask_token if self.mask_token is not None else torch.zeros((), device=lq.device)
        return lq * (1 - mask) + token.to(lq.dtype) * mask

    def training_loss(self, module: Any, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        lq, gt = batch["lq"], batch["gt"]
        trainer = getattr(module, "_trainer", None)
        rank = trainer.global_rank if trainer is not None else 0
        mask = self.mask(lq.shape[-2], lq.shape[-1], int(module.global_step), rank, lq.device)
        pred, aux, _, intent = module.network_outputs(batch, lq=self.masked(lq, mask))
        error = (pred.float() - gt.float()).abs() * mask
        masked_l1 = error.sum() / (mask.expand(lq.shape[0], 1, -1, -1).sum() + 1e-5) / lq.shape[1]
        terms = {"ram/masked_l1": masked_l1.detach()}
        return module.complete_objective(masked_l1, terms, batch, aux, intent)

    def predict(self, module: Any, batch: Mapping[str, Any]) -> Tensor | None:
        if self.test == "plain":
            return None
        lq = batch["lq"]
        mask = self.mask(lq.shape[-2], lq.shape[-1], step=0, rank=0, device=lq.device)
        first = module.predict({**batch, "lq": self.masked(lq, mask)})
        second = module.predict({**batch, "lq": self.masked(lq, 1 - mask)})
        return first * mask + second * (1 - mask)


def read_ranking(path: str | Path) -> list[str]:
    """Layer names, most important first, from ``mac_ranking.json`` (``src.analysis.mac``) or a text file with
    one name per line (the official ``filter_name.txt`` layout)."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"model.strategy.ranking={path}: no such file (python -m src.analysis.mac writes "
                          "mac_ranking.json in its run folder)")
    if file.suffix == ".json":
        record = json.loads(file.read_text())
        ranked = record.get("ranked") if isinstance(record, dict) else None
        if not isinstance(ranked, list) or not all(isinstance(r, dict) and "layer" in r for r in ranked):
            raise ConfigError(f"model.strategy.ranking={path}: expected src.analysis.mac's JSON (a 'ranked' list of "
                              "{'layer': ...})")
        return [str(r["layer"]) for r in ranked]
    return [line.strip() for line in file.read_text().splitlines() if line.strip()]


def owned_parameters(module: nn.Module, prefix: str) -> dict[str, list[nn.Parameter]]:
    """Module name (under ``prefix``) -> the parameters it owns directly."""
    owned: dict[str, list[nn.Parameter]] = {}
    for name, child in module.named_modules():
        own = list(child.parameters(recurse=False))
        if own:
            owned[f"{prefix}.{name}" if name else prefix] = own
    return owned


class RamFinetune(Strategy):
    """Fine-tune only the top ``ratio`` of the MAC-ranked layers (see the module docstring)."""

    def __init__(self, ranking: str | None = None, ratio: float | None = None) -> None:
        super().__init__()
        if not ranking:
            raise ConfigError("strategy=ram_finetune needs model.strategy.ranking=<mac_ranking.json of "
                              "python -m src.analysis.mac>")
        self.ranking = str(ranking)
        self.ratio = None if ratio is None else check_ratio(ratio, "model.strategy.ratio")
        self.selected: list[str] = []

    def bind(self, module: Any) -> None:
        ratio = self.ratio if self.ratio is not None else PAPER_RATIOS.get(type(module.net).__name__, DEFAULT_RATIO)
        names = read_ranking(self.ranking)
        owned = owned_parameters(module.net, "net")
        if module.head is not None:
            owned.update(owned_parameters(module.head, "head"))
        unknown = [n for n in names if n not in owned]
        if unknown:
            raise ConfigError(f"model.strategy.ranking={self.ranking} names {len(unknown)} layer(s) this model does "
                              f"not have (e.g. {', '.join(unknown[:3])}): rank this model with src.analysis.mac")
        self.selected = names[: int(len(names) * ratio)]
        if not self.selected:
            raise ConfigError(f"model.strategy.ratio={ratio} of {len(names)} ranked layers selects none")
        chosen = {id(p) for name in self.selected for p in owned[name]}
        for parameter in module.parameters():
            parameter.requires_grad_(id(parameter) in chosen)
        trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
        total = sum(p.numel() for p in module.parameters())
        log.info("RAM fine-tuning: %d of %d ranked layers train (ratio %g), %d of %d parameters; the rest frozen",
                 len(self.selected), len(names), ratio, trainable, total)
