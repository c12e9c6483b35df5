"""DataModules for the published benchmark settings (3deg, 5deg) read from the user's folders."""

from __future__ import annotations

from typing import Any

from src.data.datamodule import RestorationDataModule
from src.data.layouts import require_folders


def benchmark_datamodule(
    setting: str, root: str | None, families: list[str], layout: str = "auto", **options: Any
) -> RestorationDataModule:
    """Check the folders of ``setting`` under ``root`` first (fails in seconds with a clear report)."""
    require_folders(root, families, setting, layout)
    raise NotImplementedError(
        f"data={setting}: reading the published datasets is not implemented yet; the folders under {root} are "
        f"present, so use data=synth{setting} meanwhile"
    )
