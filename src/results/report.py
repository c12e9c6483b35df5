"""The test table and the published comparison as files and tables: CSV, Markdown, rich, W&B.

``write_reports`` is the one call an entry point needs after ``metrics.json`` is written: it writes
``results.csv``, ``results.md`` and (for the 3deg/5deg settings) ``comparison.csv`` in the run folder,
prints the comparison, and logs both tables to any W&B logger. Every table is headed by the metric
protocol's name and description, because numbers under different protocols are different quantities.
Where the protocol computed LPIPS (``metrics.lpips``), the test table gains ``input_lpips``/``lpips``
columns after the others (lower is better, as the headers and the caption say); otherwise it is unchanged.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from src.metrics.protocols import lpips_note
from src.results.published import ComparisonRow, comparison_rows, load_published, setting_of
from src.results.record import optional_columns
from src.utils.atomic import write_text_atomic

RESULT_COLUMNS = ("benchmark", "input_psnr", "input_ssim", "psnr", "ssim", "gain_psnr")
COMPARISON_COLUMNS = tuple(f.name for f in dataclasses.fields(ComparisonRow))


def protocol_caption(protocol: str, description: str | None = None, lpips: str | None = None) -> str:
    """``metric protocol: <name> (<description>)``; without a description (a record read back alone) the name,
    plus the LPIPS note where the record has LPIPS. A given description is used as it is
    (``MetricProtocol.summary`` already carries the LPIPS note)."""
    if description is None and lpips is not None:
        description = lpips_note(lpips)
    return f"metric protocol: {protocol}" + (f" ({description})" if description else "")


def result_columns(record: Mapping[str, Any]) -> tuple[str, ...]:
    """The CSV/W&B columns of a record: ``RESULT_COLUMNS``, then the LPIPS and NIQE ones where it has them."""
    return RESULT_COLUMNS + optional_columns(record["benchmarks"])


def summary_rows(record: Mapping[str, Any]) -> list[tuple[str, Mapping[str, float]]]:
    """(name, row) of each benchmark, then each group's average (``average (unseen family)``), then the average."""
    groups = [(f"average ({g})", row) for g, row in record.get("group_averages", {}).items()]
    return [*record["benchmarks"].items(), *groups, ("average", record["average"])]


def result_rows(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``metrics.json`` as flat rows: one per benchmark, then the group averages and the average, with the PSNR
    gain over the input."""
    rows = []
    extra = optional_columns(record["benchmarks"])
    for name, row in summary_rows(record):
        values = {k: row.get(k, float("nan")) for k in RESULT_COLUMNS[1:-1]}
        rows.append({"benchmark": name, **values, "gain_psnr": values["psnr"] - values["input_psnr"],
                     **{k: row.get(k, float("nan")) for k in extra}})
    return rows


def _as_dict(row: Any) -> dict[str, Any]:
    return dataclasses.asdict(row) if dataclasses.is_dataclass(row) else dict(row)


def write_csv(rows: Sequence[Any], path: str | Path, columns: Sequence[str] | None = None) -> Path:
    """Rows (dicts or dataclasses) as CSV with a header; ``None`` becomes an empty cell. Atomic."""
    dicts = [_as_dict(r) for r in rows]
    columns = list(columns or (dicts[0] if dicts else []))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if d.get(k) is None else d.get(k) for k in columns} for d in dicts)
    return write_text_atomic(Path(path), buffer.getvalue())


def format_cell(value: Any, digits: int, signed: bool = False) -> str:
    """A table cell: floats to ``digits`` places (``signed``: with their sign), a missing value (None, NaN) as -."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def _result_cells(row: Mapping[str, Any]) -> list[str]:
    cells = [str(row["benchmark"]), format_cell(row["input_psnr"], 2), format_cell(row["input_ssim"], 4),
             format_cell(row["psnr"], 2), format_cell(row["ssim"], 4), format_cell(row["gain_psnr"], 2, signed=True)]
    return cells + [format_cell(row[k], 4) for k in optional_order(row)]


def _comparison_cells(row: ComparisonRow) -> list[str]:
    return [row.method, row.label, format_cell(row.ours_psnr, 2), format_cell(row.published_psnr, 2),
            format_cell(row.diff_psnr, 2, signed=True), format_cell(row.ours_ssim, 4),
            format_cell(row.published_ssim, 3), format_cell(row.diff_ssim, 4, signed=True), row.note]


#: said wherever a record of a network without weights is shown (``src.eval untrained=true``)
UNTRAINED_NOTE = "**Untrained weights** (untrained=true): randomly initialised, a baseline, not a trained model."
RESULT_HEADERS = ("benchmark", "input PSNR", "input SSIM", "restored PSNR", "restored SSIM", "gain (dB)")
#: headers of the optional columns (lower is better for both)
OPTIONAL_HEADERS = {"input_lpips": "input LPIPS ↓", "lpips": "restored LPIPS ↓", "input_niqe": "input NIQE ↓",
                    "niqe": "restored NIQE ↓"}


def optional_header(column: str) -> str:
    """The header of an optional column: LPIPS and NIQE by name, a pyiqa metric as ``restored pyiqa musiq``."""
    if column in OPTIONAL_HEADERS:
        return OPTIONAL_HEADERS[column]
    side, metric = ("input", column.removeprefix("input_")) if column.startswith("input_") else ("restored", column)
    return f"{side} {metric.replace('_', ' ', 1)}"


def optional_order(row: Mapping[str, Any]) -> list[str]:
    """The optional columns a flat result row holds, in table order."""
    return [k for k in optional_columns({"row": row}) if k in row]
COMPARISON_HEADERS = ("method", "benchmark", "ours PSNR", "published PSNR", "diff PSNR", "ours SSIM",
                      "published SSIM", "diff SSIM", "note")


def render_markdown(
    record: Mapping[str, Any], comparison: Sequence[ComparisonRow] = (), setting: str | None = None,
    description: str | None = None,
) -> str:
    """The test table, then the comparison with the published numbers, each under the protocol caption."""
    caption = f"*{protocol_caption(record['metrics'], description, lpips=record.get('lpips'))}*"
    headers = RESULT_HEADERS + tuple(optional_header(c) for c in optional_columns(record["benchmarks"]))
    results = markdown_table(headers, map(_result_cells, result_rows(record)))
    parts = ["# Test results", "", caption, "", results]
    parts += [f"\n*{b}: not the published set ({note}); no published number is compared with it.*"
              for b, note in record.get("notes", {}).items()]
    if record.get("untrained"):
        parts[1:1] = ["", UNTRAINED_NOTE]
    if comparison:
        title = f"## Compared with published numbers ({setting}: {load_published()[setting].description})"
        explain = "diff = ours - published; empty where the two are different quantities (see note)."
        table = markdown_table(COMPARISON_HEADERS, map(_comparison_cells, comparison))
        parts += ["", title, "", caption, "", explain, "", table]
    return "\n".join(parts) + "\n"


def write_markdown(record: Mapping[str, Any], path: str | Path, comparison: Sequence[ComparisonRow] = (),
                   setting: str | None = None, description: str | None = None) -> Path:
    return write_text_atomic(Path(path), render_markdown(record, comparison, setting, description))


def render_comparison(rows: Sequence[ComparisonRow], protocol: str, description: str | None = None) -> Table:
    table = Table(title=f"ours vs published\n{protocol_caption(protocol, description)}")
    for header in COMPARISON_HEADERS:
        table.add_column(header, justify="left" if header in ("method", "benchmark", "note") else "right")
    for row in rows:
        table.add_row(*_comparison_cells(row))
    return table


def log_wandb_tables(loggers: Iterable[Any], record: Mapping[str, Any], comparison: Sequence[ComparisonRow],
                     prefix: str = "test") -> None:
    """Both tables as W&B tables (``<prefix>/results``, ``<prefix>/published_comparison``) on every W&B logger."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if not isinstance(logger, WandbLogger):
            continue
        rows, columns = result_rows(record), result_columns(record)
        logger.log_table(key=f"{prefix}/results", columns=list(columns), data=[[r[c] for c in columns] for r in rows])
        if comparison:
            logger.log_table(key=f"{prefix}/published_comparison", columns=list(COMPARISON_COLUMNS),
                             data=[list(dataclasses.astuple(r)) for r in comparison])


def write_reports(
    record: Mapping[str, Any], output_dir: str | Path, loggers: Iterable[Any] = (), description: str | None = None,
    setting: str | None = None, console: Console | None = None,
) -> dict[str, Path]:
    """Write ``results.csv``/``results.md`` (and ``comparison.csv``), print and log the comparison.

    ``setting`` defaults to the record's ``data`` name when that is a published setting (``3deg``/``5deg``);
    synthetic data has no published counterpart, so no comparison is made. Returns the written paths.
    """
    output_dir = Path(output_dir)
    setting = setting or setting_of(record.get("data"))
    comparison = (comparison_rows(setting, record["benchmarks"], record["metrics"], refused=record.get("notes", {}))
                  if setting else [])
    written = {"results_csv": write_csv(result_rows(record), output_dir / "results.csv", result_columns(record))}
    written["results_md"] = write_markdown(record, output_dir / "results.md", comparison, setting, description)
    if comparison:
        written["comparison_csv"] = write_csv(comparison, output_dir / "comparison.csv", COMPARISON_COLUMNS)
        written["comparison_png"] = comparison_chart(comparison, output_dir / "comparison.png", setting)
        (console or Console(width=160)).print(render_comparison(comparison, record["metrics"], description))
        log_wandb_image(loggers, "comparison", written["comparison_png"])
    log_wandb_tables(loggers, record, comparison)
    return written


def comparison_chart(rows: Sequence[ComparisonRow], path: Path, setting: str | None) -> Path:
    """Our PSNR beside each method's published one, grouped by benchmark (the paper's labels); a cell a paper does
    not give is left out."""
    from src.results.plots import plot_bars

    labels = list(dict.fromkeys(r.label for r in rows))
    ours = {r.label: r.ours_psnr for r in rows}
    series: dict[str, list[float]] = {"ours": [_number(ours.get(label)) for label in labels]}
    for method in dict.fromkeys(r.method for r in rows):
        cells = {r.label: r.published_psnr for r in rows if r.method == method}
        series[f"{method} (published)"] = [_number(cells.get(label)) for label in labels]
    return plot_bars(labels, series, path, "PSNR (dB)", title=f"ours beside the published numbers ({setting})")


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def log_wandb_image(loggers: Iterable[Any], key: str, path: Path) -> None:
    """``path`` as an image under ``key`` on every W&B logger."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[str(path)])


def render_table(record: dict[str, Any], title: str = "test results", description: str | None = None) -> Table:
    """The rich table; ``description`` defaults to the protocol's (plus the LPIPS note where the record has it)."""
    caption = protocol_caption(record["metrics"], description, lpips=record.get("lpips"))
    if record.get("untrained"):
        title = f"{title} of UNTRAINED weights (untrained=true)"
    table = Table(title=f"{title}\n{caption}")
    table.add_column("benchmark")
    extra = optional_columns(record["benchmarks"])
    for col in ("input PSNR", "input SSIM", "restored PSNR", "restored SSIM", "gain (dB)"):
        table.add_column(col, justify="right")
    for col in extra:
        table.add_column(optional_header(col), justify="right")
    rows = summary_rows(record)
    noted = record.get("notes", {})
    for name, row in rows:
        gain = row["psnr"] - row["input_psnr"]
        label = f"{name} *" if name in noted else name
        cells = [label, format_cell(row["input_psnr"], 2), format_cell(row["input_ssim"], 4),
                 format_cell(row["psnr"], 2), format_cell(row["ssim"], 4), format_cell(gain, 2, signed=True)]
        cells += [format_cell(row.get(col, float("nan")), 4) for col in extra]
        table.add_row(*cells)
    return table


def print_table(record: dict[str, Any], title: str = "test results", description: str | None = None) -> None:
    console = Console(width=120 + 20 * len(optional_columns(record["benchmarks"])))
    console.print(render_table(record, title, description))
    for benchmark, note in record.get("notes", {}).items():
        console.print(f"{benchmark}: not the published set ({note}); no published number is compared with it")
    for benchmark, images in record.get("skipped", {}).items():
        console.print(f"{benchmark}: {len(images)} image(s) left out of the means: "
                      + "; ".join(f"{name} ({why})" for name, why in images.items()))
