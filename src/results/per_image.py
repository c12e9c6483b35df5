"""Per-image test results: every image's scores (``per_image.csv``) and the images at both ends of each
benchmark's ranking, kept for panels (the worst and best restored images are where a method's failures and
strengths show).

Filled by the LightningModule's test step; written by the test ending (:mod:`src.run.test_table`). Only
``keep`` images per end and benchmark are held, as 8-bit copies, so a test over thousands of images holds a
few of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from src.results.report import write_csv

CSV_NAME = "per_image.csv"


def _u8(image: Tensor) -> Tensor:
    return (image.detach().float().clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu()


@dataclass
class Ranked:
    """One image kept for a panel: its score and its three images (8-bit)."""

    score: float
    name: str
    lq: Tensor
    pred: Tensor
    gt: Tensor


@dataclass
class PerImageLog:
    """Scores of every test image and the ``keep`` lowest and highest by ``key`` per benchmark."""

    keep: int = 2
    key: str = "psnr"
    rows: list[dict[str, Any]] = field(default_factory=list)
    ends: dict[str, dict[str, list[Ranked]]] = field(default_factory=dict)

    def reset(self) -> None:
        self.rows.clear()
        self.ends.clear()

    def add(self, benchmark: str, names: Sequence[str], restored: Mapping[str, Tensor],
            degraded: Mapping[str, Tensor], lq: Tensor, pred: Tensor, gt: Tensor | None) -> None:
        """One batch: its per-image scores (``restored``, ``degraded``: quantity -> (B,)) and images."""
        for i, name in enumerate(names):
            row: dict[str, Any] = {"benchmark": benchmark, "image": name}
            for q in restored:
                row[f"input_{q}"] = float(degraded[q][i])
                row[q] = float(restored[q][i])
            self.rows.append(row)
            score = row.get(self.key, math.nan)
            if gt is None or not math.isfinite(score) or self.keep <= 0:
                continue
            ranked = Ranked(score, name, _u8(lq[i]), _u8(pred[i]), _u8(gt[i]))
            ends = self.ends.setdefault(benchmark, {"worst": [], "best": []})
            ends["worst"] = sorted([*ends["worst"], ranked], key=lambda r: r.score)[: self.keep]
            ends["best"] = sorted([*ends["best"], ranked], key=lambda r: -r.score)[: self.keep]

    def disjoint_ends(self, benchmark: str) -> tuple[list[Ranked], list[Ranked]]:
        """The worst and the best images of ``benchmark`` with no image in both (a benchmark of fewer than
        ``2 * keep`` images is split: the lower half worst, the upper best)."""
        ends = self.ends.get(benchmark, {"worst": [], "best": []})
        count = sum(1 for row in self.rows if row["benchmark"] == benchmark and math.isfinite(row.get(self.key,
                                                                                                      math.nan)))
        best = ends["best"][: min(self.keep, count // 2)]
        names = {r.name for r in best}
        worst = [r for r in ends["worst"] if r.name not in names][: min(self.keep, count - len(best))]
        return worst, best

    def write_csv(self, output_dir: str | Path) -> Path | None:
        """``per_image.csv``: benchmark, image, then input and restored value of each quantity."""
        if not self.rows:
            return None
        columns = list(dict.fromkeys(k for row in self.rows for k in row))
        return write_csv(self.rows, Path(output_dir) / CSV_NAME, columns)
