"""The test table: printed after every train/eval run and written as ``metrics.json`` in the run folder."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from src.utils.atomic import write_text_atomic

COLUMNS = ("input_psnr", "input_ssim", "psnr", "ssim")
#: present only where the protocol computed LPIPS (``metrics.lpips``); lower is better
LPIPS_COLUMNS = ("input_lpips", "lpips")


def has_lpips(results: dict[str, dict[str, float]]) -> bool:
    """True when the rows carry LPIPS, so tables grow its columns (and only then: old tables stay as they were)."""
    return any("lpips" in row for row in results.values())


def average(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean over benchmarks of each column (finite values only)."""
    out = {}
    for col in COLUMNS + (LPIPS_COLUMNS if has_lpips(results) else ()):
        values = [row[col] for row in results.values() if col in row and math.isfinite(row[col])]
        out[col] = sum(values) / len(values) if values else float("nan")
    return out


def to_record(
    results: dict[str, dict[str, float]], protocol: str, lpips: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The ``metrics.json`` document: per benchmark input and restored PSNR/SSIM, their mean, the protocol.

    ``lpips`` (the LPIPS network, when the protocol computed it) is recorded beside the protocol's name; without
    it the document is exactly what it was before LPIPS existed.
    """
    head = {"protocol": protocol} if lpips is None else {"protocol": protocol, "lpips": lpips}
    if not extra.get("skipped"):
        extra.pop("skipped", None)  # only where images were left out: other records stay as they were
    return {**head, **extra, "benchmarks": results, "average": average(results)}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "inf"/"nan": JSON has no literal for them
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def write_json(record: dict[str, Any], path: str | Path) -> Path:
    """Write atomically (temporary file, then rename) so a crash never leaves a half-written file."""
    return write_text_atomic(path, json.dumps(_json_safe(record), indent=2) + "\n")


def read_json(path: str | Path) -> dict[str, Any]:
    def restore(value: Any) -> Any:
        if value in ("inf", "-inf", "nan"):
            return float(value)
        if isinstance(value, dict):
            return {k: restore(v) for k, v in value.items()}
        return value

    return restore(json.loads(Path(path).read_text()))


def render_table(record: dict[str, Any], title: str = "test results", description: str | None = None) -> Table:
    """The rich table; ``description`` defaults to the protocol's (plus the LPIPS note where the record has it)."""
    from src.utils.report import LPIPS_HEADERS, protocol_caption

    caption = protocol_caption(record["protocol"], description, lpips=record.get("lpips"))
    table = Table(title=f"{title}\n{caption}")
    table.add_column("benchmark")
    lpips = has_lpips(record["benchmarks"])
    for col in ("input PSNR", "input SSIM", "restored PSNR", "restored SSIM", "gain (dB)"):
        table.add_column(col, justify="right")
    for col in LPIPS_HEADERS if lpips else ():
        table.add_column(col, justify="right")
    rows = [*record["benchmarks"].items(), ("average", record["average"])]
    for name, row in rows:
        gain = row["psnr"] - row["input_psnr"]
        cells = [name, f"{row['input_psnr']:.2f}", f"{row['input_ssim']:.4f}", f"{row['psnr']:.2f}",
                 f"{row['ssim']:.4f}", f"{gain:+.2f}"]
        if lpips:
            cells += [f"{row.get(col, float('nan')):.4f}" for col in LPIPS_COLUMNS]
        table.add_row(*cells)
    return table


def print_table(record: dict[str, Any], title: str = "test results", description: str | None = None) -> None:
    console = Console(width=160 if has_lpips(record["benchmarks"]) else 120)
    console.print(render_table(record, title, description))
    for benchmark, images in record.get("skipped", {}).items():
        console.print(f"{benchmark}: {len(images)} image(s) left out of the means: "
                      + "; ".join(f"{name} ({why})" for name, why in images.items()))
