"""Benchmark dataset layouts users already have on disk, and a fast, clear check that they are there.

A run on real data checks its folders before anything else, so a missing download fails in seconds
with the root it looked in, the folders it expected and how to fix it, not in the middle of an epoch.
"""

from __future__ import annotations

from pathlib import Path

#: folders (relative to data.root) that each setting needs, per layout
LAYOUTS: dict[str, dict[str, dict[str, str]]] = {
    "promptir": {
        "noise": {"train": "Train/Denoise", "test": "test/denoise/bsd68"},
        "rain": {"train": "Train/Derain", "test": "test/derain/Rain100L"},
        "haze": {"train": "Train/Dehaze", "test": "test/dehaze"},
        "blur": {"train": "Train/Deblur", "test": "test/deblur/gopro"},
        "lowlight": {"train": "Train/Enhance", "test": "test/enhance/lol"},
    },
    "moceir": {
        "noise": {"train": "denoising/BSD400", "test": "denoising/cBSD68"},
        "rain": {"train": "deraining/RainTrainL", "test": "deraining/Rain100L"},
        "haze": {"train": "dehazing/RESIDE", "test": "dehazing/SOTS/outdoor"},
        "blur": {"train": "deblurring/GoPro/crop/train", "test": "deblurring/GoPro/test"},
        "lowlight": {"train": "llie/LOLv1/Train", "test": "llie/LOLv1/Test"},
    },
}


class DataNotFoundError(FileNotFoundError):
    """The benchmark data a config asks for is not under ``data.root``."""


def detect_layout(root: Path) -> str | None:
    """The layout whose top-level folders exist under ``root`` (``None`` if neither)."""
    for name, families in LAYOUTS.items():
        tops = {Path(paths["train"]).parts[0] for paths in families.values()}
        if any((root / top).is_dir() for top in tops):
            return name
    return None


def require_folders(root: str | Path | None, families: list[str], setting: str, layout: str = "auto") -> Path:
    """Return the resolved root if every needed folder exists, else raise :class:`DataNotFoundError`."""
    root_path = Path(str(root or ".")).expanduser().resolve()
    if layout == "auto":
        layout = detect_layout(root_path) or "promptir"
    if layout not in LAYOUTS:
        raise ValueError(f"unknown data.layout {layout!r}; expected 'auto' or one of {sorted(LAYOUTS)}")
    expected = [LAYOUTS[layout][f][split] for f in families for split in ("train", "test")]
    missing = [p for p in expected if not (root_path / p).is_dir()]
    if missing:
        lines = [
            f"data={setting}: benchmark data not found under data.root={root_path} (layout {layout!r}).",
            "Expected these folders:",
            *[f"  {'MISSING ' if p in missing else 'found   '} {root_path / p}" for p in expected],
            f"Point data.root at the folder that holds them (python -m src.train data={setting} "
            "data.root=/path/to/data), choose the other layout with data.layout=promptir|moceir, or train on "
            f"the embedded synthetic default with data=synth{setting}"
            if setting in ("3deg", "5deg")
            else "Point data.root at the folder that holds them.",
        ]
        raise DataNotFoundError("\n".join(lines))
    return root_path
