"""``python -m src.analysis.compare``: several evaluated runs side by side, as a table and as pictures.

    python -m src.analysis.compare logs/quickstart/runs/<A> logs/eval/runs/<B> --labels fp32 bf16 --out cmp
    python -m src.analysis.compare logs/eval/runs/<A> --published 3deg --methods PromptIR AirNet

Reads each run folder's ``metrics.json`` (and its ``val_history.csv`` where training wrote one) and writes to
``--out``: ``compare.md`` and ``compare.csv`` (one row per benchmark, one column per run, the difference of
every run from the first), ``compare_bars.png`` (grouped bars per benchmark, with the published numbers of
``--published SETTING`` beside ours) and ``learning_curves.png`` (validation per benchmark over the steps,
one line per run). A quantity missing from a run (NIQE where it was off) is left empty, not invented.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from src.results.plots import HISTORY_NAME, curves_by_benchmark, plot_bars, plot_curves, read_history
from src.results.published import load_published
from src.results.report import format_cell, markdown_table, write_csv
from src.utils.atomic import write_text_atomic

QUANTITIES = ("psnr", "ssim", "lpips", "niqe")


@dataclass
class Run:
    """One evaluated run: its label, record and validation history (empty where none was written)."""

    label: str
    folder: Path
    record: dict[str, Any]
    history: list[dict[str, float]]

    def value(self, benchmark: str, quantity: str) -> float:
        row = self.record["average"] if benchmark == "average" else self.record["benchmarks"].get(benchmark, {})
        value = row.get(quantity)
        return float(value) if value is not None else math.nan


def read_run(path: Path, label: str | None = None) -> Run:
    """A run folder (or its ``metrics.json``); a clear error where there is none."""
    folder = path if path.is_dir() else path.parent
    record_path = folder / "metrics.json"
    if not record_path.is_file():
        raise FileNotFoundError(f"{path}: no metrics.json (a run folder of src.train or src.eval)")
    record = json.loads(record_path.read_text())
    history_path = folder / HISTORY_NAME
    history = read_history(history_path) if history_path.is_file() else []
    return Run(label or folder.name, folder, record, history)


def benchmarks_of(runs: Sequence[Run]) -> list[str]:
    """Every benchmark of any run, in first-seen order, then ``average``."""
    names = list(dict.fromkeys(b for run in runs for b in run.record["benchmarks"]))
    return [*names, "average"]


def table_rows(runs: Sequence[Run], quantity: str) -> list[dict[str, Any]]:
    """One row per benchmark: each run's value and its difference from the first run's."""
    rows = []
    for benchmark in benchmarks_of(runs):
        row: dict[str, Any] = {"benchmark": benchmark}
        first = runs[0].value(benchmark, quantity)
        for i, run in enumerate(runs):
            value = run.value(benchmark, quantity)
            row[run.label] = value
            if i:
                row[f"{run.label} - {runs[0].label}"] = value - first
        rows.append(row)
    return rows


def published_series(setting: str, methods: Sequence[str], benchmarks: Sequence[str],
                     quantity: str) -> dict[str, list[float]]:
    """``{"<method> (published)": values per benchmark}`` from the published tables (NaN where a cell is absent)."""
    table = load_published()
    if setting not in table:
        raise KeyError(f"--published {setting!r}: no published table of that name; known: {', '.join(table)}")
    known = table[setting].methods
    unknown = [m for m in methods if m not in known]
    if unknown:
        raise KeyError(f"--methods {unknown}: not in the published {setting} table; known: {', '.join(known)}")
    series = {}
    for method in methods:
        entry = known[method]
        values = []
        for benchmark in benchmarks:
            score = entry.average if benchmark == "average" else entry.results.get(benchmark)
            value = getattr(score, quantity, None) if score is not None and quantity in ("psnr", "ssim") else None
            values.append(math.nan if value is None else float(value))
        series[f"{method} (published)"] = values
    return series


def compare(runs: Sequence[Run], out: Path, quantity: str = "psnr", published: str | None = None,
            methods: Sequence[str] = ()) -> dict[str, Path]:
    """Write the table, the bar chart and (where histories exist) the learning curves; returns their paths."""
    rows = table_rows(runs, quantity)
    columns = list(rows[0])
    written = {"csv": write_csv(rows, out / "compare.csv", columns)}
    title = f"{quantity.upper()} per benchmark ({', '.join(run.label for run in runs)})"
    digits = 2 if quantity == "psnr" else 4
    cells = ([format_cell(r[c], digits) for c in columns] for r in rows)
    text = "\n".join([f"# {title}", "", markdown_table(columns, cells), ""])
    written["markdown"] = write_text_atomic(out / "compare.md", text)
    names = [r["benchmark"] for r in rows]
    series: dict[str, Sequence[float]] = {run.label: [r[run.label] for r in rows] for run in runs}
    if published:
        series = {**series, **published_series(published, methods, names, quantity)}
    written["bars"] = plot_bars(names, series, out / "compare_bars.png", quantity.upper(), title=title)
    with_history = [run for run in runs if run.history]
    if with_history:
        panels: dict[str, dict[str, list[tuple[int, float]]]] = {}
        for run in with_history:
            for benchmark, points in curves_by_benchmark(run.history, quantity).items():
                panels.setdefault(benchmark, {})[run.label] = points
        if panels:
            written["curves"] = plot_curves(panels, out / "learning_curves.png", f"validation {quantity.upper()}")
    return written


def _labels(parser: argparse.ArgumentParser, labels: Sequence[str] | None, count: int) -> list[str | None]:
    if labels and len(labels) != count:
        parser.error(f"--labels gives {len(labels)} labels for {count} runs")
    if labels and len(set(labels)) != len(labels):
        parser.error("--labels must differ from each other")
    return list(labels) if labels else [None] * count


def _unique(runs: list[Run]) -> None:
    """Runs whose folders share a name get the parent's name too, so the columns stay apart."""
    seen = Counter(run.label for run in runs)
    for run in runs:
        if seen[run.label] > 1:
            run.label = f"{run.folder.parent.name}/{run.folder.name}"


def main(argv: Sequence[str] | None = None) -> dict[str, Path]:
    parser = argparse.ArgumentParser(prog="python -m src.analysis.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (or their metrics.json) of src.eval/src.train")
    parser.add_argument("--labels", nargs="*", default=None, help="one label per run (default: the folder names)")
    parser.add_argument("--quantity", choices=QUANTITIES, default="psnr")
    parser.add_argument("--published", default=None, metavar="SETTING",
                        help="add the published numbers of this setting (src/results/published.yaml: 3deg, 5deg, ...)")
    parser.add_argument("--methods", nargs="*", default=None, help="published methods to add (default: all of it)")
    parser.add_argument("--out", type=Path, default=Path("compare"), help="folder for the files")
    args = parser.parse_args(argv)
    labels = _labels(parser, args.labels, len(args.runs))
    try:
        runs = [read_run(path, label) for path, label in zip(args.runs, labels)]
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.labels is None:
        _unique(runs)
    methods = args.methods
    if args.published and methods is None:
        table = load_published()
        methods = list(table[args.published].methods) if args.published in table else []
    try:
        written = compare(runs, args.out, args.quantity, args.published, methods or ())
    except KeyError as err:
        parser.error(str(err.args[0]))
    print((args.out / "compare.md").read_text())
    print("written " + ", ".join(str(p) for p in written.values()))
    return written


if __name__ == "__main__":
    main()
