"""The test record: per-benchmark input and restored metrics, their average, written as ``metrics.json``."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from src.utils.atomic import write_text_atomic

COLUMNS = ("input_psnr", "input_ssim", "psnr", "ssim")
#: present only where the protocol computed LPIPS (``metrics.lpips``); lower is better
LPIPS_COLUMNS = ("input_lpips", "lpips")
#: present only where the protocol computed NIQE (``metrics.niqe``, no reference); lower is better
NIQE_COLUMNS = ("input_niqe", "niqe")


def has_lpips(results: dict[str, dict[str, float]]) -> bool:
    """True when the rows carry LPIPS, so tables grow its columns (and only then: old tables stay as they were)."""
    return any("lpips" in row for row in results.values())


#: prefix of the columns of pyiqa metrics (``metrics.pyiqa``): ``pyiqa_musiq`` and ``input_pyiqa_musiq``
PYIQA_PREFIX = "pyiqa_"


def optional_columns(results: dict[str, dict[str, float]]) -> tuple[str, ...]:
    """The LPIPS, NIQE and pyiqa columns the rows carry, in that order (none: the table is as it always was)."""
    fixed = tuple(c for q, cols in (("lpips", LPIPS_COLUMNS), ("niqe", NIQE_COLUMNS))
                  if any(q in row for row in results.values()) for c in cols)
    pyiqa = sorted({k for row in results.values() for k in row if k.startswith(PYIQA_PREFIX)})
    return fixed + tuple(c for q in pyiqa for c in (f"input_{q}", q))


def average(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean over benchmarks of each column (finite values only)."""
    out = {}
    for col in COLUMNS + optional_columns(results):
        values = [row[col] for row in results.values() if col in row and math.isfinite(row[col])]
        out[col] = sum(values) / len(values) if values else float("nan")
    return out


def to_record(
    results: dict[str, dict[str, float]], metrics: str, lpips: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The ``metrics.json`` document: per benchmark input and restored PSNR/SSIM, their mean, and ``metrics``,
    the protocol's name as ``metrics=<name>`` selects it.

    ``lpips`` (the LPIPS network, when the protocol computed it) is recorded beside the protocol's name; without
    it the document is exactly what it was before LPIPS existed.
    """
    head = {"metrics": metrics} if lpips is None else {"metrics": metrics, "lpips": lpips}
    for optional in ("skipped", "notes", "groups"):  # only where there is something to say: others stay as they were
        if not extra.get(optional):
            extra.pop(optional, None)
    record = {**head, **extra, "benchmarks": results, "average": average(results)}
    if extra.get("groups"):
        record["group_averages"] = group_averages(results, extra["groups"])
    return record


def group_averages(results: dict[str, dict[str, float]], groups: Mapping[str, str]) -> dict[str, dict[str, float]]:
    """The mean of each group of benchmarks (``groups``: benchmark -> group; seen, unseen family, ...), in the
    order the groups first appear; benchmarks with no group are in none."""
    names: dict[str, None] = dict.fromkeys(groups[b] for b in results if b in groups)
    return {g: average({b: row for b, row in results.items() if groups.get(b) == g}) for g in names}


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

    record = restore(json.loads(Path(path).read_text()))
    if "protocol" in record and "metrics" not in record:  # written before the key was named as the option is
        record = {"metrics": record.pop("protocol"), **record}
    return record
