"""After ``trainer.test``: the test record (``metrics.json``), the printed table and the CSV/Markdown reports.

``src.train`` and ``src.eval`` end the same way; this is that one ending.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from omegaconf import DictConfig

from src.results.per_image import PerImageLog
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
        images = getattr(model, "test_images", None)
        if images is not None:
            write_per_image(images, output_dir, loggers)
    return record


def write_per_image(images: PerImageLog, output_dir: Path, loggers: list[Any]) -> None:
    """``per_image.csv`` and, per benchmark with targets, one picture of its worst and best restored images
    (``panels/worst_best/<benchmark>.png``: degraded | restored | target rows, lowest PSNR first)."""
    from lightning.pytorch.loggers import WandbLogger
    from PIL import Image

    from src.callbacks.image_panels import make_panel
    from src.utils.atomic import write_atomic

    csv_path = images.write_csv(output_dir)
    if csv_path is not None:
        log.info("per-image scores written to %s", csv_path)
    for benchmark in images.ends:
        worst, best = images.disjoint_ends(benchmark)
        rows = []
        for end, ranked in (("worst", worst), ("best", best)):
            for place, r in enumerate(ranked, 1):
                rows.append(make_panel(r.lq.float() / 255, r.pred.float() / 255, r.gt.float() / 255, max_side=384,
                                       title=f"{benchmark}: {end} {place}, {r.name}, restored {images.key} "
                                             f"{r.score:.2f}", labels=("degraded", "restored", "target")))
        width = max(row.shape[1] for row in rows)
        stacked = np.concatenate([np.pad(row, ((0, 6), (0, width - row.shape[1]), (0, 0)), constant_values=255)
                                  for row in rows])
        path = output_dir / "panels" / "worst_best" / f"{benchmark}.png"
        write_atomic(path, lambda handle, picture=stacked: Image.fromarray(picture).save(handle, format="PNG"))
        for logger in loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key=f"worst_best/{benchmark}", images=[stacked])
