"""Benchmark dataset layouts users already have on disk, and a fast, clear check that they are there.

A layout says, for each degradation family, which folders under ``data.root`` hold its training set
and its test set, how a degraded file finds its clean partner, and how many files a correct download
holds. The layouts are config (``conf/data/layout/<name>.yaml``, composed into ``data.layouts``): this module
only reads them (:func:`parse_layouts`) and finds which one a root holds. A run on real data checks its folders
before anything else, so a missing download fails in seconds with the root it looked in, the folders it
expected and how to fix it, not mid-epoch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from src.utils.errors import ConfigError, UserError

SPLITS = ("train", "test")


@dataclass(frozen=True)
class ImageSet:
    """One set of files under the data root.

    A *clean-only* set (no ``degraded`` folders) is degraded online (noise); a *paired* set matches each
    degraded file to a clean one by ``rule`` (see :data:`src.data.datasets.paired.PAIRING_RULES`).
    """

    #: the training family, or the test benchmark (noise benchmarks get ``_s<sigma>`` appended)
    name: str
    #: folders (relative to the root) of clean images; several are read in this order
    clean: tuple[str, ...]
    degraded: tuple[str, ...] = ()
    rule: str = "same"
    #: images (clean-only) or pairs in a correct download; ``None`` where no reference count is known
    expected: int | None = None
    #: also list images in sub-folders (e.g. RESIDE's ``part1..4`` under one folder)
    recursive: bool = False

    @property
    def paired(self) -> bool:
        return bool(self.degraded)

    @property
    def folders(self) -> tuple[str, ...]:
        return (*self.degraded, *self.clean)


@dataclass(frozen=True)
class FamilyLayout:
    """Where one family's training set and test set live."""

    train: ImageSet
    test: ImageSet


#: family -> where its sets live (one layout)
Layout = Mapping[str, FamilyLayout]
#: layout name -> layout (``data.layouts``)
Layouts = Mapping[str, Layout]
_SET_FIELDS = {"name", "clean", "degraded", "rule", "expected", "recursive"}


def _image_set(node: Mapping[str, Any], key: str) -> ImageSet:
    unknown = sorted(set(node) - _SET_FIELDS)
    if unknown or "name" not in node or not node.get("clean"):
        raise ConfigError(f"{key}: an image set needs `name` and `clean` folders (and may give degraded, rule, "
                          f"expected, recursive); got {sorted(node)}")
    return ImageSet(
        name=str(node["name"]), clean=tuple(node["clean"]), degraded=tuple(node.get("degraded") or ()),
        rule=str(node.get("rule", "same")), expected=node.get("expected"), recursive=bool(node.get("recursive")),
    )


def parse_layouts(node: Mapping[str, Any] | None) -> dict[str, dict[str, FamilyLayout]]:
    """``data.layouts`` (layout name -> family -> ``train``/``test`` image sets) as :class:`FamilyLayout` objects."""
    if not node:
        raise ConfigError("data.layouts is empty: compose at least one layout (conf/data/layout/*.yaml)")
    out: dict[str, dict[str, FamilyLayout]] = {}
    for name, families in node.items():
        out[name] = {}
        for family, sets in families.items():
            key = f"data.layouts.{name}.{family}"
            if set(sets) != set(SPLITS):
                raise ConfigError(f"{key}: expected a `train` and a `test` set, got {sorted(sets)}")
            out[name][family] = FamilyLayout(_image_set(sets["train"], f"{key}.train"),
                                             _image_set(sets["test"], f"{key}.test"))
    return out


class DataNotFoundError(UserError, FileNotFoundError):
    """The benchmark data a config asks for is not under ``data.root``."""


class DataCheckError(DataNotFoundError):
    """The data is there but unusable (unpaired, empty, unreadable...); the message is the check's report.

    A subclass of :class:`DataNotFoundError` so the entry points stop with the report (exit code 2).
    """



Splits = tuple[str, ...] | list[str]


def sets_of(layout: Layout, families: list[str], splits: Splits = SPLITS) -> list[tuple[str, str, ImageSet]]:
    """``(split, family, image set)`` of each family, training sets first."""
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown data.splits {unknown}; expected a subset of {list(SPLITS)}")
    return [(sp, fam, getattr(layout[fam], sp)) for sp in SPLITS if sp in splits for fam in families]


def benchmarks_of(image_set: ImageSet, sigmas: list[float] | tuple[float, ...] = ()) -> list[str]:
    """Benchmark names of a test set: its name, or ``<name>_s<sigma>`` per test sigma for a clean-only set."""
    if image_set.paired:
        return [image_set.name]
    return [f"{image_set.name}_s{float(s):g}" for s in sigmas]


def _present(root: Path, layout: Layout, families: list[str]) -> int:
    return sum((root / f).is_dir() for _, _, s in sets_of(layout, families) for f in s.folders)


def detect_layout(root: Path, layouts: Layouts, families: list[str] | None = None) -> str | None:
    """The layout (among those that define every family asked for) with the most of its folders under ``root``.

    ``None`` when no folder of any candidate exists.
    """
    candidates = [name for name, fams in layouts.items() if families is None or set(families) <= set(fams)]
    scored = [(_present(root, layouts[name], families or list(layouts[name])), name) for name in candidates]
    best = max(scored, key=lambda s: s[0], default=(0, None))  # the first layout wins a tie
    return best[1] if best[0] > 0 else None


def resolve_layout(root: Path, families: list[str], layouts: Layouts, layout: str = "auto") -> str:
    """``layout`` itself, or the detected one for ``auto`` (the first that has every family when nothing is
    there yet)."""
    if layout == "auto":
        candidates = [name for name, fams in layouts.items() if set(families) <= set(fams)]
        if not candidates:
            raise ConfigError(f"data.families {families} are all in no layout of data.layouts ({sorted(layouts)})")
        return detect_layout(root, layouts, families) or candidates[0]
    if layout not in layouts:
        raise ConfigError(f"unknown data.layout {layout!r}; expected 'auto' or one of {sorted(layouts)}")
    unknown = sorted(set(families) - set(layouts[layout]))
    if unknown:
        raise ConfigError(f"data.families {unknown} are not in layout {layout!r} (it has {sorted(layouts[layout])})")
    return layout


def required_folders(layout: Layout, families: list[str], splits: Splits = SPLITS) -> list[str]:
    """Every folder (relative to the root) that the families' sets of ``splits`` read."""
    return [f for _, _, s in sets_of(layout, families, splits) for f in s.folders]


def locate(
    root: str | Path | None,
    families: list[str],
    setting: str,
    layouts: Layouts,
    layout: str = "auto",
    splits: Splits = SPLITS,
) -> tuple[Path, str]:
    """The resolved root and layout name if every needed folder exists, else raise :class:`DataNotFoundError`."""
    root_path = Path(str(root or ".")).expanduser().resolve()
    layout = resolve_layout(root_path, families, layouts, layout)
    expected = required_folders(layouts[layout], families, splits)
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
            else "Point data.root at the folder that holds them (data.root=/path/to/data), choose the layout with "
            f"data.layout={'|'.join(layouts)}, or train on the embedded synthetic default with data=synth5deg",
        ]
        raise DataNotFoundError("\n".join(lines))
    return root_path, layout
