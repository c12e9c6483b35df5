"""Is the benchmark data under ``data.root`` complete and usable? Finds out before any training step.

``python -m src.data.check data=5deg data.root=/path/to/data [--level pairs|sizes|decode] [--ignore-counts]``
prints, per family and benchmark, the images found against the counts of a correct download, unpaired
files, size-mismatched pairs and unreadable images, and exits non-zero when anything is wrong. Training
runs the same scan at start at the cheap ``pairs`` level (listing and pairing, no file opened) and stops
with the report. Nothing is ever written under the data root.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from src.data.datasets.paired import MANY_TO_ONE, list_images, pair_files
from src.data.io import image_size, read_rgb8
from src.data.layouts import SPLITS, DataNotFoundError, ImageSet, Layout, benchmarks_of, locate, parse_layouts, sets_of
from src.utils.conf import CONF_DIR

#: how deep a scan looks: list+pair only; + image sizes from the headers; + decode every file
LEVELS = ("pairs", "sizes", "decode")
#: files named per kind of problem before "... and N more"
SHOWN = 5


@dataclass
class SetReport:
    """What the scan of one image set found; ``pairs`` (paired sets) or ``clean`` (clean-only) feed the datasets."""

    split: str
    family: str
    image_set: ImageSet
    benchmarks: list[str]
    pairs: list[tuple[Path, Path]] = field(default_factory=list)
    clean: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def found(self) -> int:
        return len(self.pairs) if self.image_set.paired else len(self.clean)

    @property
    def count_ok(self) -> bool:
        return self.image_set.expected is None or self.found == self.image_set.expected

    def status(self) -> str:
        return "ERROR" if self.errors else "ok" if self.count_ok else "COUNT"


def _files(root: Path, paths: Iterable[Path]) -> str:
    paths = list(paths)
    names = ", ".join(_rel(root, p) for p in paths[:SHOWN])
    return names + (f" ... and {len(paths) - SHOWN} more" if len(paths) > SHOWN else "")


def _rel(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _parallel(fn: Callable[[Path], object], paths: list[Path], workers: int) -> dict[Path, object]:
    """``fn`` over ``paths`` in threads (PIL releases the GIL while decoding); an exception becomes the value."""

    def safe(path: Path) -> object:
        try:
            return fn(path)
        except ValueError as err:
            return err

    with ThreadPoolExecutor(max(1, workers)) as pool:
        return dict(zip(paths, pool.map(safe, paths)))


def _list(root: Path, report: SetReport) -> tuple[list[Path], list[Path]]:
    s = report.image_set
    degraded, clean = [], []
    for folder in s.folders:
        files = list_images(root, [folder], s.recursive)
        if not files:
            report.errors.append(f"empty folder (no images): {root / folder}")
        (degraded if folder in s.degraded else clean).extend(files)
    return degraded, clean


def _check_empty(root: Path, report: SetReport, files: list[Path]) -> None:
    """Zero-byte files (an interrupted copy): found from the directory entries alone, so at every level."""
    empty = [p for p in files if p.stat().st_size == 0]
    if empty:
        report.errors.append(f"{len(empty)} empty file(s) (0 bytes): {_files(root, empty)}")


def _pair(root: Path, report: SetReport, degraded: list[Path], clean: list[Path]) -> None:
    s = report.image_set
    pairing = pair_files(degraded, clean, s.rule)
    report.pairs = pairing.pairs
    where = ", ".join(s.clean)
    if pairing.unpaired:
        report.errors.append(f"{len(pairing.unpaired)} degraded file(s) with no partner in {where} "
                             f"(pairing rule {s.rule!r}): {_files(root, pairing.unpaired)}")
    if pairing.ambiguous:
        report.errors.append(f"{len(pairing.ambiguous)} clean file(s) share a name with another: "
                             f"{_files(root, pairing.ambiguous)}")
    if pairing.unused and s.rule not in MANY_TO_ONE:
        report.errors.append(f"{len(pairing.unused)} clean file(s) with no degraded partner in "
                             f"{', '.join(s.degraded)}: {_files(root, pairing.unused)}")
    elif pairing.unused:
        report.notes.append(f"{len(pairing.unused)} clean image(s) have no degraded version (unused)")


def _check_sizes(root: Path, report: SetReport, min_side: int, multiple: int, workers: int) -> None:
    files = sorted({p for pair in report.pairs for p in pair} | set(report.clean))
    sizes = _parallel(image_size, files, workers)
    bad = [p for p in files if isinstance(sizes[p], Exception)]
    if bad:
        report.errors.append(f"{len(bad)} unreadable image(s): {_files(root, bad)} ({sizes[bad[0]]})")
    mismatched = [(a, b) for a, b in report.pairs if a not in bad and b not in bad and sizes[a] != sizes[b]]
    if mismatched:
        shown = "; ".join(f"{_rel(root, a)} {sizes[a][1]}x{sizes[a][0]} vs {_rel(root, b)} {sizes[b][1]}x{sizes[b][0]}"
                          for a, b in mismatched[:SHOWN])
        more = f" ... and {len(mismatched) - SHOWN} more" if len(mismatched) > SHOWN else ""
        report.errors.append(f"{len(mismatched)} pair(s) differ in size: {shown}{more}")
    m = max(multiple, 1)
    small = [p for p in files if p not in bad and min(d - d % m for d in sizes[p]) < min_side]
    if small:
        report.errors.append(f"{len(small)} image(s) smaller than {min_side}x{min_side} after the centre crop to a "
                             f"multiple of {m}: {_files(root, small)}")


def undecodable(files: list[Path], workers: int = 4) -> dict[Path, Exception]:
    """The files of ``files`` that fail to decode (empty, truncated, not an image), with the error of each."""
    decoded = _parallel(lambda p: read_rgb8(p).shape, files, workers)
    return {p: result for p, result in decoded.items() if isinstance(result, Exception)}


def _check_decode(root: Path, report: SetReport, workers: int) -> None:
    files = sorted({p for pair in report.pairs for p in pair} | set(report.clean))
    bad = undecodable(files, workers)
    if bad:
        first = next(iter(bad.values()))
        report.errors.append(f"{len(bad)} image(s) fail to decode: {_files(root, list(bad))} ({first})")


def scan(
    root: Path,
    layout: Layout,
    families: list[str],
    level: str = "pairs",
    test_sigmas: Iterable[float] = (15, 25, 50),
    patch_size: int = 128,
    train_crop_multiple: int = 16,
    crop_multiple: int = 16,
    splits: Iterable[str] = SPLITS,
    workers: int = 4,
    test_level: str | None = None,
) -> list[SetReport]:
    """Scan every set of ``families`` (folders must exist: see :func:`src.data.layouts.locate`).

    ``level`` applies to the training sets and, unless ``test_level`` is given, to the test sets.
    """
    test_level = level if test_level is None else test_level
    for name in (level, test_level):
        if name not in LEVELS:
            raise ValueError(f"unknown check level {name!r}; expected one of {LEVELS}")
    reports = []
    for split, family, image_set in sets_of(layout, families, tuple(splits)):
        train = split == "train"
        names = [family] if train else benchmarks_of(image_set, tuple(test_sigmas))
        reports.append(scan_set(root, SetReport(split, family, image_set, names), level if train else test_level,
                                patch_size if train else 1, train_crop_multiple if train else crop_multiple, workers))
    return reports


def scan_set(root: Path, report: SetReport, level: str, min_side: int = 1, multiple: int = 16,
             workers: int = 4) -> SetReport:
    """List, pair (paired sets) and, by ``level``, size-check and decode one set; fills ``report`` and returns it.

    ``min_side`` is the least side after the centre crop to ``multiple`` (a training patch; 1 for test sets).
    """
    if level not in LEVELS:
        raise ValueError(f"unknown check level {level!r}; expected one of {LEVELS}")
    degraded, clean = _list(root, report)
    _check_empty(root, report, degraded + clean)
    if report.image_set.paired:
        _pair(root, report, degraded, clean)
    else:
        report.clean = clean
    if level in ("sizes", "decode"):
        _check_sizes(root, report, min_side, multiple, workers)
    if level == "decode":
        _check_decode(root, report, workers)
    return report


def failed(reports: list[SetReport], counts: bool = True) -> bool:
    """True when any set has an error, or (with ``counts``) a count that differs from a correct download."""
    return any(r.errors or (counts and not r.count_ok) for r in reports)


def format_report(reports: list[SetReport], root: Path | None, layout: str, setting: str, level: str,
                  test_level: str | None = None) -> str:
    """The table (one row per set) and the problems, for people (``root`` ``None``: sets given by their folders)."""
    levels = repr(level) if test_level in (None, level) else f"{level!r}, test sets {test_level!r}"
    where = f"data.root={root} (layout {layout!r}, " if root is not None else "folders given by the config ("
    lines = [f"data={setting}: {where}check level {levels})"]
    rows = [("split", "set", "family", "benchmarks", "found", "expected", "status")]
    for r in reports:
        expected = "?" if r.image_set.expected is None else str(r.image_set.expected)
        benchmarks = " ".join(r.benchmarks) if r.split == "test" else "-"
        rows.append((r.split, r.image_set.name, r.family, benchmarks, str(r.found), expected, r.status()))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    right = {4, 5}
    for row in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  " + "  ".join(cells).rstrip())
    problems = [f"  {r.split} {r.image_set.name}: {e}" for r in reports for e in r.errors]
    counts = [f"  {r.split} {r.image_set.name}: found {r.found}, a correct download holds {r.image_set.expected}"
              for r in reports if not r.count_ok]
    notes = [f"  {r.split} {r.image_set.name}: {n}" for r in reports for n in r.notes]
    for title, items in (("problems", problems), ("counts that differ", counts), ("notes", notes)):
        if items:
            lines += [f"{title}:", *items]
    if not problems:
        hint = "" if level == "decode" else " (--level decode also decodes every file)"
        lines.append(f"no problems found{' apart from the counts above' if counts else ''}{hint}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- command line


def _data_config(overrides: list[str]):
    """``cfg.data`` of ``conf/train.yaml`` composed with the command-line overrides (``data=5deg data.root=...``)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=overrides).data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m src.data.check", description=__doc__.splitlines()[0],
        epilog="Other arguments are Hydra overrides, e.g. data=5deg data.root=/path/to/data data.layout=moceir",
    )
    parser.add_argument("--level", choices=LEVELS, default="sizes",
                        help="pairs: list and pair; sizes (default): also read every header; decode: decode every file")
    parser.add_argument("--decode", action="store_true", help="same as --level decode")
    parser.add_argument("--ignore-counts", action="store_true", help="do not fail on counts that differ")
    parser.add_argument("--workers", type=int, default=8, help="threads that read headers / decode")
    args, overrides = parser.parse_known_args(argv)
    level = "decode" if args.decode else args.level
    data = _data_config(overrides)
    name = data.get("name", "?")
    if "setting" not in data:
        print(f"data={name} synthesises its training data online; there is no benchmark download to check")
        return 0
    setting, families, splits = str(data.setting), list(data.families), list(data.get("splits", SPLITS))
    layouts = parse_layouts(OmegaConf.to_container(data.layouts, resolve=True))
    try:
        root, layout = locate(data.root, families, setting, layouts, data.get("layout", "auto"), splits)
    except DataNotFoundError as err:
        print(err, file=sys.stderr)
        return 2
    reports = scan(root, layouts[layout], families, level, list(data.get("test_sigmas", [15, 25, 50])),
                   int(data.get("patch_size", 128)), int(data.get("train_crop_multiple", 16)),
                   int(data.get("crop_multiple", 16)), splits, args.workers)
    print(format_report(reports, root, layout, setting, level))
    return 1 if failed(reports, counts=not args.ignore_counts) else 0


if __name__ == "__main__":
    sys.exit(main())
