"""The SID and ELD layouts: which short exposure pairs with which long one, and at what exposure ratio.

* **SID** (Chen et al., CVPR 2018), Sony part: ``Sony/short/<scene>_<shot>_<t>s.ARW`` and ``Sony/long/...``, pair
  lists ``Sony_{train,val,test}_list.txt`` (lines ``./Sony/short/... ./Sony/long/... ISO<n> F<n>``) or LED's
  own lists (``./short/... ./long/...``). The ratio is ``min(t_long / t_short, 300)``, read from the names, as
  LED does; the test split's ratios are 100, 250 and 300. LED's prepared ``<file>.npz`` next to (or instead of)
  a camera file is used where it exists.
* **ELD** (Wei et al., CVPR 2020): ``ELD/<camera>/scene-<n>/IMG_<id>.<ext>``, 16 shots per scene, ids 1, 6, 11
  and 16 the references; every other shot pairs with its nearest reference, at the ratio of the exposures
  (ISO x time, from the EXIF tags through exifread, the ``raw`` extra). LED's test uses scenes 3-10 and
  reports the ratios 100 and 200; scenes 1-2 are its few-shot training pairs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

from src.data.raw.files import exposure_seconds
from src.utils.errors import DataError

#: LED caps SID's ratios at 300 (0.033 s against 10 s)
SID_MAX_RATIO = 300.0
#: ELD's reference shots and the camera folders with their file suffix (LED's ``CAMERA_TO_SUFFIX``)
ELD_REFERENCES = (1, 6, 11, 16)
ELD_CAMERAS = {"SonyA7S2": ".ARW", "NikonD850": ".nef", "CanonEOS70D": ".CR2", "CanonEOS700D": ".CR2"}
#: ELD's nominal ratio of each shot id (the lists LED evaluates by: ids 2/7/12 x1, 3/8/13 x10, 4/9/14 x100,
#: 5/10/15 x200)
ELD_NOMINAL_RATIO = {2: 1, 7: 1, 12: 1, 3: 10, 8: 10, 13: 10, 4: 100, 9: 100, 14: 100, 5: 200, 10: 200, 15: 200}

Pair = tuple[Path, Path, float]


def _existing(root: Path, entry: str, list_file: Path, line_number: int) -> Path:
    """``entry`` under ``root`` (its leading ``./`` dropped), or its LED ``.npz`` twin, or a named error."""
    path = root / entry.removeprefix("./")
    for candidate in (path, path.with_name(path.name + ".npz")):
        if candidate.is_file():
            return candidate
    raise DataError(f"{list_file}:{line_number}: {path} does not exist (nor {path.name}.npz); the list's paths are "
                    f"read relative to {root}")


def read_pair_list(list_file: str | Path, root: str | Path | None = None,
                   max_ratio: float = SID_MAX_RATIO) -> list[Pair]:
    """(short, long, ratio) of each line of a SID-style pair list, paths relative to ``root`` (default: the
    list's folder)."""
    file = Path(list_file).expanduser()
    if not file.is_file():
        raise DataError(f"pair list {file} does not exist")
    base = Path(root).expanduser() if root is not None else file.parent
    pairs: list[Pair] = []
    for number, line in enumerate(file.read_text().splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) < 2:
            raise DataError(f"{file}:{number}: expected '<short> <long> [...]', got {line!r}")
        short, long = (_existing(base, entry, file, number) for entry in fields[:2])
        ratio = min(exposure_seconds(fields[1]) / exposure_seconds(fields[0]), max_ratio)
        pairs.append((short, long, ratio))
    if not pairs:
        raise DataError(f"pair list {file} names no pairs")
    return pairs


def by_ratio(pairs: Iterable[Pair]) -> dict[int, list[Pair]]:
    """Pairs grouped by their (rounded) exposure ratio, in increasing order."""
    groups: dict[int, list[Pair]] = {}
    for pair in pairs:
        groups.setdefault(round(pair[2]), []).append(pair)
    return dict(sorted(groups.items()))


def exif_exposure(path: Path) -> float:
    """ISO x exposure time of a camera file, from its EXIF tags (exifread)."""
    try:
        import exifread
    except ImportError:
        raise ImportError(f"exifread is needed to read the exposure of {path} (ELD's ratios): pip install "
                          "'aioir[raw]'") from None
    with path.open("rb") as handle:
        tags = exifread.process_file(handle, details=False)
    prefix = "Image" if path.suffix.lower() == ".dng" else "EXIF"
    try:
        time = Fraction(str(tags[f"{prefix} ExposureTime"]))
        iso = Fraction(str(tags[f"{prefix} ISOSpeedRatings"]))
    except (KeyError, ValueError) as err:
        raise DataError(f"{path}: no readable {prefix} ExposureTime / ISOSpeedRatings tag ({err})") from None
    return float(iso * time)


def nearest_reference(shot: int) -> int:
    """ELD's reference of ``shot``: the nearest of ids 1, 6, 11, 16 (the lower on a tie)."""
    return min(ELD_REFERENCES, key=lambda ref: (abs(shot - ref), ref))


def eld_pairs(root: str | Path, camera: str, scenes: Sequence[int] = tuple(range(3, 11)),
              ratios: Sequence[int] = (100, 200)) -> dict[int, list[Pair]]:
    """ELD's pairs of ``camera`` in ``scenes`` at the nominal ``ratios``, grouped by nominal ratio; each pair's
    ratio is the measured one (ISO x time of the reference over the shot's)."""
    if camera not in ELD_CAMERAS:
        raise DataError(f"ELD camera {camera!r}: expected one of {sorted(ELD_CAMERAS)}")
    unknown = sorted(set(ratios) - set(ELD_NOMINAL_RATIO.values()))
    if unknown:
        raise DataError(f"ELD ratios {unknown}: ELD has 1, 10, 100 and 200")
    folder = Path(root).expanduser() / camera
    if not folder.is_dir():
        raise DataError(f"ELD folder {folder} does not exist (expected <root>/{camera}/scene-<n>/IMG_<id>"
                        f"{ELD_CAMERAS[camera]})")
    suffix = ELD_CAMERAS[camera]
    groups: dict[int, list[Pair]] = {ratio: [] for ratio in sorted(ratios)}
    for scene in scenes:
        for shot, nominal in sorted(ELD_NOMINAL_RATIO.items()):
            if nominal not in groups:
                continue
            short = folder / f"scene-{scene}" / f"IMG_{shot:04d}{suffix}"
            long = folder / f"scene-{scene}" / f"IMG_{nearest_reference(shot):04d}{suffix}"
            for path in (short, long):
                if not path.is_file():
                    raise DataError(f"ELD {camera} scene {scene}: {path} does not exist")
            groups[nominal].append((short, long, exif_exposure(long) / exif_exposure(short)))
    return groups
