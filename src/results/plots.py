"""Pictures of results a researcher would rather look at than read: learning curves and grouped bar charts.

Shared by the training callback that draws a run's own validation curves (:mod:`src.callbacks.metric_history`)
and by ``python -m src.analysis.compare``, which draws several runs side by side. matplotlib with the Agg
backend (no display); files are written atomically.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from src.utils.atomic import write_atomic, write_text_atomic

#: the validation history of a run, beside its metrics.json
HISTORY_NAME = "val_history.csv"
#: a point of a curve: (optimiser step, value)
Point = tuple[int, float]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    plt = _pyplot()
    try:
        return write_atomic(path, lambda handle: fig.savefig(handle, format="png", dpi=110, bbox_inches="tight"))
    finally:
        plt.close(fig)


def write_history(rows: Sequence[Mapping[str, float]], path: str | Path) -> Path:
    """Rows of ``{"step", "epoch", "val/psnr/<benchmark>", ...}`` as CSV (columns: step, epoch, then sorted)."""
    keys = sorted({k for row in rows for k in row} - {"step", "epoch"})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["step", "epoch", *keys], lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: row.get(k, "") for k in ["step", "epoch", *keys]} for row in rows)
    return write_text_atomic(Path(path), buffer.getvalue())


def read_history(path: str | Path) -> list[dict[str, float]]:
    """A history CSV back as rows of floats (empty cells left out)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(handle)]


def curves_by_benchmark(rows: Sequence[Mapping[str, float]], quantity: str = "psnr") -> dict[str, list[Point]]:
    """``val/<quantity>/<benchmark>`` columns of a history as one curve per benchmark."""
    prefix = f"val/{quantity}/"
    curves: dict[str, list[Point]] = {}
    for row in rows:
        for key, value in row.items():
            if key.startswith(prefix) and math.isfinite(value):
                curves.setdefault(key.removeprefix(prefix), []).append((int(row["step"]), value))
    return curves


def plot_curves(panels: Mapping[str, Mapping[str, Sequence[Point]]], path: str | Path, ylabel: str,
                title: str | None = None) -> Path:
    """One subplot per ``panels`` key, one line per inner key (a benchmark, or a run), x = optimiser step."""
    plt = _pyplot()
    count = max(len(panels), 1)
    columns = min(count, 3)
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    for ax, (name, lines) in zip(axes.flat, panels.items()):
        for label, points in lines.items():
            if points:
                steps, values = zip(*points)
                ax.plot(steps, values, marker="o", markersize=3, label=label)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if len(lines) > 1:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return _save(fig, Path(path))


def plot_bars(groups: Sequence[str], series: Mapping[str, Sequence[float]], path: str | Path, ylabel: str,
              title: str | None = None) -> Path:
    """Grouped bars: one group per ``groups`` entry (a benchmark), one bar per ``series`` key (a run, or the
    published number); a NaN value leaves its bar out."""
    plt = _pyplot()
    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(groups) * max(len(series), 1) * 0.6 + 2), 4.2))
    for index, (label, values) in enumerate(series.items()):
        xs = [g + (index - (len(series) - 1) / 2) * width for g in range(len(groups))]
        kept = [(x, v) for x, v in zip(xs, values) if math.isfinite(v)]
        if kept:
            ax.bar([x for x, _ in kept], [v for _, v in kept], width=width, label=label)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    finite = [v for values in series.values() for v in values if math.isfinite(v)]
    if finite:  # PSNR bars start near the lowest value, so differences of a few tenths stay visible
        low, high = min(finite), max(finite)
        ax.set_ylim(max(0.0, low - 0.15 * (high - low + 1.0)), high + 0.1 * (high - low + 1.0))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return _save(fig, Path(path))
