"""Art (Wu et al., ACM MM 2024, "Harmony in Diversity"): balance the degradation families inside each batch.

Each family ``k`` in the batch gets its own loss ``L_k`` (the run's objective on that family's images) and a
score from how that loss stands against its own history::

    s_k = (L_k / A_k) * (log10 M_k / log10 L_k) / T

``A_k`` is an exponential average of the family's batch losses (new value weight ``rate``), ``M_k`` the lowest
batch loss it has had, ``T`` the temperature; the weights are ``softmax(s)`` over the families present (on any
rank), detached, and the objective is ``sum_k w_k L_k``. A family whose loss has risen above its average and
sits far above its best gets more weight. The history is updated after the weights are taken, with the losses
averaged over every rank (so every rank holds the same state), and it is saved in checkpoints.

The history follows each family's L1 (``track: l1``, the release's loss, which always lies in (0, 1)), while the
weights multiply the family's share of the run's own objective; ``track: objective`` follows the objective itself
(only meaningful where it stays in (0, 1): a PSNR term makes it negative). Losses are held inside (0, 1) for the
logarithms, where the release would fail.

Defaults are the official release's (Aitical/Art: ``rate`` 0.01, ``T`` 0.1, history starting at 0.1, no
warm-up). Where the release differs from its own description it is an option, off by default:
``stale_average`` lists families whose average is never updated, as the release does for snow (its average is
written to a leftover attribute, so it stays at 0.1 while its minimum moves); ``strategy=art_official`` sets
``[snow]``. The release's resume, which reloads the haze and snow histories swapped, is not reproduced.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from src.strategies.base import Strategy, batch_subset
from src.utils.errors import ConfigError

log = logging.getLogger(__name__)
#: the score of a family absent from every rank's batch: softmax gives it weight 0 (as the release)
ABSENT = -1e5


def _inside(value: float) -> float:
    """``value`` held inside (0, 1), where the score's logarithms have the sign the method needs."""
    return min(max(value, 1e-12), 1.0 - 1e-6)


class Art(Strategy):
    """Per-family loss weights from each family's loss history (see the module docstring)."""

    def __init__(self, temperature: float = 0.1, rate: float = 0.01, initial: float = 0.1,
                 stale_average: Sequence[str] = (), families: Sequence[str] | None = None,
                 track: str = "l1") -> None:
        super().__init__()
        for key, value in (("temperature", temperature), ("rate", rate), ("initial", initial)):
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"model.strategy.{key}={value!r}: expected a number > 0")
        if not 0 < initial < 1:
            raise ConfigError(f"model.strategy.initial={initial}: the log ratio needs a loss history in (0, 1)")
        if rate > 1:
            raise ConfigError(f"model.strategy.rate={rate}: the new loss's weight in the average is at most 1")
        if track not in ("l1", "objective"):
            raise ConfigError(f"model.strategy.track={track!r}: expected 'l1' (the release) or 'objective'")
        self.track = track
        self.temperature, self.rate, self.initial = float(temperature), float(rate), float(initial)
        self.stale_average = tuple(stale_average)
        #: the families in a fixed order (every rank the same); more are added as batches bring them
        self.families: list[str] = list(families or [])
        self.average: dict[str, float] = {}
        self.minimum: dict[str, float] = {}

    # ------------------------------------------------------------------ weights
    def scores(self, losses: Mapping[str, float]) -> dict[str, float]:
        """Each known family's score from its (all-rank) batch loss; ``ABSENT`` for a family not in the batch."""
        scores = {}
        for family in self.families:
            loss = losses.get(family)
            if loss is None:
                scores[family] = ABSENT
                continue
            # log10 outside (0, 1) would flip the ratio's sign or fail (the release breaks there): held inside
            loss = _inside(loss)
            average = self.average.get(family, self.initial)
            minimum = _inside(self.minimum.get(family, self.initial))
            scores[family] = (loss / average) * (math.log10(minimum) / math.log10(loss)) / self.temperature
        return scores

    def weights(self, losses: Mapping[str, float]) -> dict[str, float]:
        """The softmax of :meth:`scores` (plain numbers: the weights carry no gradient)."""
        scores = self.scores(losses)
        values = torch.softmax(torch.tensor([scores[f] for f in self.families], dtype=torch.float64), dim=0)
        return dict(zip(self.families, values.tolist(), strict=True))

    def update(self, losses: Mapping[str, float]) -> None:
        """Move each present family's average and minimum by its batch loss."""
        for family, loss in losses.items():
            if family not in self.stale_average:
                previous = self.average.get(family, self.initial)
                self.average[family] = self.rate * loss + (1.0 - self.rate) * previous
            self.minimum[family] = min(self.minimum.get(family, self.initial), _inside(loss))

    # ------------------------------------------------------------------ training
    def _all_rank_means(self, module: Any, sums: Tensor, counts: Tensor) -> dict[str, float]:
        """Per known family, the mean of its batch loss over every rank that had it (one reduction)."""
        trainer = getattr(module, "_trainer", None)
        packed = torch.cat([sums, counts])
        if trainer is not None and trainer.world_size > 1:
            packed = trainer.strategy.reduce(packed, reduce_op="sum")
        n = len(self.families)
        sums, counts = packed[:n].tolist(), packed[n:].tolist()
        return {f: s / c for f, s, c in zip(self.families, sums, counts, strict=True) if c > 0}

    def _know(self, module: Any, present: Sequence[str]) -> None:
        if not self.families:  # the data's families first, so every rank orders them alike from the start
            datamodule = getattr(getattr(module, "_trainer", None), "datamodule", None)
            self.families = list(getattr(datamodule, "families", None) or [])
        for family in present:
            if family not in self.families:
                self.families.append(family)

    def training_loss(self, module: Any, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        pred, aux, outputs, intent = module.network_outputs(batch)
        families = list(batch["family"])
        present = list(dict.fromkeys(families))
        self._know(module, present)
        size = len(families)
        losses: dict[str, Tensor] = {}
        tracked: dict[str, Tensor] = {}
        for family in present:
            index = [i for i, f in enumerate(families) if f == family]
            rows = torch.as_tensor(index, device=pred.device)
            subset = batch_subset(batch, index, size)
            losses[family], _ = module.loss.objective(pred[rows], subset, batch_subset(outputs, index, size))
            tracked[family] = (F.l1_loss(pred[rows].detach().float(), subset["gt"].float()) if self.track == "l1"
                               else losses[family].detach())
        device = pred.device
        sums = torch.zeros(len(self.families), dtype=torch.float64, device=device)
        counts = torch.zeros_like(sums)
        for family, loss in tracked.items():
            i = self.families.index(family)
            sums[i], counts[i] = loss.double(), 1.0
        means = self._all_rank_means(module, sums, counts)
        weights = self.weights(means)
        total = sum(weights[f] * losses[f] for f in present)
        self.update(means)
        terms: dict[str, Tensor] = {}
        for family in self.families:
            terms[f"art/weight/{family}"] = torch.tensor(weights[family])
            if family in means:
                terms[f"art/loss/{family}"] = torch.tensor(means[family])
        return module.complete_objective(total, terms, batch, aux, intent)

    def example_fields(self, batch: int) -> dict[str, Any]:
        return {"family": [self.families[0] if self.families else "probe"] * batch}

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_state(self) -> dict[str, Any]:
        return {"families": list(self.families), "average": dict(self.average), "minimum": dict(self.minimum)}

    def load_checkpoint_state(self, state: Mapping[str, Any]) -> None:
        self.families = list(state.get("families", []))
        self.average = {str(k): float(v) for k, v in state.get("average", {}).items()}
        self.minimum = {str(k): float(v) for k, v in state.get("minimum", {}).items()}
