"""After ``trainer.test``: the test record (``metrics.json``), the printed table and the CSV/Markdown reports.

``src.train`` and ``src.eval`` end the same way; this is that one ending.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
from omegaconf import DictConfig

from src.results.record import to_record, write_json
from src.results.report import print_table, write_reports

log = logging.getLogger(__name__)


def report_test(trainer: L.Trainer, model: Any, cfg: DictConfig, loggers: list[Any], title: str = "test results",
                **extra: Any) -> dict[str, Any]:
    """The record of ``model``'s last test (with ``extra`` fields such as the checkpoint), written on rank 0.

    Benchmarks whose data is not the published set they are named after (the datamodule's ``benchmark_notes``)
    are marked in the record and every table, and compared with no published number.
    """
    notes = getattr(trainer.datamodule, "benchmark_notes", {}) if trainer.datamodule is not None else {}
    groups = getattr(trainer.datamodule, "benchmark_groups", {}) if trainer.datamodule is not None else {}
    record = to_record(model.test_results, cfg.metrics.name, lpips=model.protocol.lpips, skipped=model.test_skipped,
                       notes=notes, groups=groups, **extra, data=cfg.data.get("name", ""))
    if trainer.is_global_zero:
        output_dir = Path(cfg.paths.output_dir)
        path = write_json(record, output_dir / "metrics.json")
        print_table(record, title=title, description=model.protocol.summary)
        write_reports(record, output_dir, loggers=loggers, description=model.protocol.summary)
        log.info("test table written to %s", path)
    return record
