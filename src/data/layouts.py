"""Benchmark dataset layouts users already have on disk, and a fast, clear check that they are there.

A layout says, for each degradation family, which folders under ``data.root`` hold its training set
and its test set, how a degraded file finds its clean partner, and how many files a correct download
holds. A run on real data checks its folders before anything else, so a missing download fails in
seconds with the root it looked in, the folders it expected and how to fix it, not mid-epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from src.utils.errors import UserError


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


def _pair(name: str, degraded: str, clean: str, rule: str = "same", expected: int | None = None,
          recursive: bool = False) -> ImageSet:
    return ImageSet(name, clean=(clean,), degraded=(degraded,), rule=rule, expected=expected, recursive=recursive)


#: the 11 degraded categories of CDD-11 (OneRestore); each is a training family and a test benchmark
CDD11_CATEGORIES = (
    "low", "haze", "rain", "snow", "low_haze", "low_rain", "low_snow", "haze_rain", "haze_snow",
    "low_haze_rain", "low_haze_snow",
)  # fmt: skip

#: layout name -> family -> folders. Counts are those of a correct download (PROTOCOLS.md sections 1-2).
LAYOUTS: dict[str, dict[str, FamilyLayout]] = {
    "promptir": {  # PromptIR / AdaIR
        "noise": FamilyLayout(
            ImageSet("noise", clean=("Train/Denoise",), expected=5144, recursive=True),
            ImageSet("cbsd68", clean=("test/denoise/bsd68",), expected=68),
        ),
        "rain": FamilyLayout(
            _pair("rain", "Train/Derain/rainy", "Train/Derain/gt", "rain", 200),
            _pair("rain100l", "test/derain/Rain100L/input", "test/derain/Rain100L/target", "rain", 100),
        ),
        "haze": FamilyLayout(
            _pair("haze", "Train/Dehaze/synthetic", "Train/Dehaze/original", "haze", 72135, recursive=True),
            _pair("sots_outdoor", "test/dehaze/input", "test/dehaze/target", "haze", 500),
        ),
        "blur": FamilyLayout(
            _pair("blur", "Train/Deblur/blur", "Train/Deblur/sharp", expected=2103),
            _pair("gopro", "test/deblur/gopro/input", "test/deblur/gopro/target", expected=1111),
        ),
        "lowlight": FamilyLayout(
            _pair("lowlight", "Train/Enhance/low", "Train/Enhance/gt", expected=485),
            _pair("lol", "test/enhance/lol/input", "test/enhance/lol/target", expected=15),
        ),
    },
    "moceir": {
        "noise": FamilyLayout(
            ImageSet("noise", clean=("denoising/BSD400", "denoising/WaterlooED"), expected=5144),
            ImageSet("cbsd68", clean=("denoising/cBSD68/original_png",), expected=68),
        ),
        "rain": FamilyLayout(
            _pair("rain", "deraining/RainTrainL/rainy", "deraining/RainTrainL/gt", "rain", 200),
            _pair("rain100l", "deraining/Rain100L/rainy", "deraining/Rain100L/gt", "rain", 100),
        ),
        "haze": FamilyLayout(
            ImageSet("haze", clean=("dehazing/RESIDE/clear",),
                     degraded=tuple(f"dehazing/RESIDE/part{i}" for i in range(1, 5)), rule="haze", expected=72135),
            _pair("sots_outdoor", "dehazing/SOTS/outdoor/hazy", "dehazing/SOTS/outdoor/gt", "haze", 500),
        ),
        "blur": FamilyLayout(  # MoCE-IR trains on GoPro pre-cut into 512x512 crops: no reference count
            _pair("blur", "deblurring/GoPro/crop/train/input_crops", "deblurring/GoPro/crop/train/target_crops"),
            _pair("gopro", "deblurring/GoPro/test/input", "deblurring/GoPro/test/target", expected=1111),
        ),
        "lowlight": FamilyLayout(
            _pair("lowlight", "llie/LOLv1/Train/input", "llie/LOLv1/Train/target", expected=485),
            _pair("lol", "llie/LOLv1/Test/input", "llie/LOLv1/Test/target", expected=15),
        ),
    },
    "cdd11": {  # no reference counts: the check reports what it finds
        c: FamilyLayout(_pair(c, f"cdd11/train/{c}", "cdd11/train/clear"),
                        _pair(f"cdd11_{c}", f"cdd11/test/{c}", "cdd11/test/clear"))
        for c in CDD11_CATEGORIES
    },
}


class DataNotFoundError(UserError, FileNotFoundError):
    """The benchmark data a config asks for is not under ``data.root``."""


class DataCheckError(DataNotFoundError):
    """The data is there but unusable (unpaired, empty, unreadable...); the message is the check's report.

    A subclass of :class:`DataNotFoundError` so the entry points stop with the report (exit code 2).
    """


SPLITS = ("train", "test")


Splits = tuple[str, ...] | list[str]


def sets_of(layout: str, families: list[str], splits: Splits = SPLITS) -> list[tuple[str, str, ImageSet]]:
    """``(split, family, image set)`` of each family, training sets first."""
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown data.splits {unknown}; expected a subset of {list(SPLITS)}")
    return [(sp, fam, getattr(LAYOUTS[layout][fam], sp)) for sp in SPLITS if sp in splits for fam in families]


def benchmarks_of(image_set: ImageSet, sigmas: list[float] | tuple[float, ...] = ()) -> list[str]:
    """Benchmark names of a test set: its name, or ``<name>_s<sigma>`` per test sigma for a clean-only set."""
    if image_set.paired:
        return [image_set.name]
    return [f"{image_set.name}_s{float(s):g}" for s in sigmas]


def _present(root: Path, layout: str, families: list[str]) -> int:
    return sum((root / f).is_dir() for _, _, s in sets_of(layout, families) for f in s.folders)


def detect_layout(root: Path, families: list[str] | None = None) -> str | None:
    """The layout (among those that define every family asked for) with the most of its folders under ``root``.

    ``None`` when no folder of any candidate exists.
    """
    candidates = [name for name, fams in LAYOUTS.items() if families is None or set(families) <= set(fams)]
    scored = [(_present(root, name, families or list(LAYOUTS[name])), name) for name in candidates]
    best = max(scored, key=lambda s: s[0], default=(0, None))  # the first layout wins a tie
    return best[1] if best[0] > 0 else None


def resolve_layout(root: Path, families: list[str], layout: str = "auto") -> str:
    """``layout`` itself, or the detected one for ``auto`` (PromptIR's when nothing is there yet)."""
    if layout == "auto":
        candidates = [name for name, fams in LAYOUTS.items() if set(families) <= set(fams)]
        return detect_layout(root, families) or (candidates[0] if candidates else "promptir")
    if layout not in LAYOUTS:
        raise ValueError(f"unknown data.layout {layout!r}; expected 'auto' or one of {sorted(LAYOUTS)}")
    unknown = sorted(set(families) - set(LAYOUTS[layout]))
    if unknown:
        raise ValueError(f"data.families {unknown} are not in layout {layout!r} (it has {sorted(LAYOUTS[layout])})")
    return layout


def required_folders(layout: str, families: list[str], splits: Splits = SPLITS) -> list[str]:
    """Every folder (relative to the root) that the families' sets of ``splits`` read."""
    return [f for _, _, s in sets_of(layout, families, splits) for f in s.folders]


def locate(
    root: str | Path | None,
    families: list[str],
    setting: str,
    layout: str = "auto",
    splits: Splits = SPLITS,
) -> tuple[Path, str]:
    """The resolved root and layout if every needed folder exists, else raise :class:`DataNotFoundError`."""
    root_path = Path(str(root or ".")).expanduser().resolve()
    layout = resolve_layout(root_path, families, layout)
    expected = required_folders(layout, families, splits)
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
            f"data.layout={'|'.join(LAYOUTS)}, or train on the embedded synthetic default with data=synth5deg",
        ]
        raise DataNotFoundError("\n".join(lines))
    return root_path, layout
