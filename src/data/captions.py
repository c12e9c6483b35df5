"""Captions as data: the text an image-text method reads beside each degraded image (Perceive-IR, DA-CLIP).

Perceive-IR's pipeline captions every degraded image once (BLIP) and keeps them in a tab-separated file with the
columns ``gt_path``, ``lq_path``, ``caption`` (and ``degradation``); DA-CLIP's (``daclip_train.csv``) has
``filepath`` (the degraded image) and ``title`` (``"<caption of the clean image>: <degradation>"``: the caption is
the part before the last ``": "``); a two-column ``name<TAB>caption`` file works too. Samples get a ``caption``
field by the file name (without its suffix) of their degraded image; an image the file does not caption gets an
empty caption, and how many did is logged.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from src.utils.errors import DataError

log = logging.getLogger(__name__)


def read_captions(path: str | Path) -> dict[str, str]:
    """``{degraded image name (no suffix): caption}`` from a captions file."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"captions file {file} does not exist")
    with file.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    if not rows:
        raise DataError(f"captions file {file} is empty")
    header = [h.strip().lower() for h in rows[0]]
    titled = "caption" not in header and {"filepath", "title"} <= set(header)  # DA-CLIP's daclip_*.csv
    if "caption" in header:
        key_column = header.index("lq_path") if "lq_path" in header else 0
        caption_column, body = header.index("caption"), rows[1:]
    elif titled:
        key_column, caption_column, body = header.index("filepath"), header.index("title"), rows[1:]
    else:
        key_column, caption_column, body = 0, 1, rows
    captions: dict[str, str] = {}
    for number, row in enumerate(body, 2 if body is not rows else 1):
        if len(row) <= max(key_column, caption_column):
            raise DataError(f"{file}:{number}: expected tab-separated columns with a caption, got {row!r}")
        text = row[caption_column].strip()
        captions[image_name(row[key_column])] = text.rsplit(": ", 1)[0] if titled else text
    return captions


#: suffixes taken off a captions file's keys (a name such as SOTS' ``0001_0.8_0.2`` keeps its dots)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm"}


def image_name(cell: str) -> str:
    """A path or name as samples name their image: the file name without an image suffix."""
    name = Path(cell.strip()).name
    return name[: -len(Path(name).suffix)] if Path(name).suffix.lower() in IMAGE_SUFFIXES else name


class WithCaptions(Dataset):
    """A dataset whose samples get the ``caption`` of their ``name`` (keys passed on as they come)."""

    def __init__(self, dataset: Dataset, captions: Mapping[str, str]) -> None:
        self.dataset, self.captions = dataset, captions
        self.missing: set[str] = set()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: Any) -> dict[str, Any]:
        sample = dict(self.dataset[key])
        name = str(sample.get("name", ""))
        if name not in self.captions and name not in self.missing:
            self.missing.add(name)
            log.info("no caption for %s (%d so far): an empty caption", name, len(self.missing))
        sample["caption"] = self.captions.get(name, "")
        return sample
