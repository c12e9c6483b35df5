"""``data=paired``: your own (degraded, clean) folders as test benchmarks, and optionally as training sets.

A researcher with a real-rain or real-noise set in ``input/`` and ``target/`` folders evaluates on it as it
is, with no copying into a published layout: each set is a folder of degraded images and a folder of their
clean partners, paired by file name under the layouts' rules (``same``, ``rain``, ``haze``). The folders are
scanned before anything else, as the benchmark settings' are, and a problem stops the run with the report.

Each test set is a benchmark named after its folder (``.../RealRain/input`` -> ``realrain``: a generic name such
as ``input`` or ``lq`` gives way to its parent's), never after a published set it was not checked against.
A name that is a published benchmark's (``rain100l``) keeps it only with that set's image count; otherwise the
record, the tables and ``results.md`` say so and no published number is compared with it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from src.data.check import SetReport, failed, format_report, scan_set
from src.data.datamodule import RestorationDataModule, evenly_spaced
from src.data.datasets.paired import PAIRING_RULES, PairedImages, PairedPatches
from src.data.layouts import DataCheckError, DataNotFoundError, ImageSet, parse_layouts
from src.utils.errors import ConfigError

log = logging.getLogger(__name__)

#: folder names that say what a folder holds rather than which set it is: the benchmark takes the parent's name
GENERIC_FOLDERS = {
    "input", "inputs", "lq", "lr", "low", "degraded", "noisy", "rain", "rainy", "haze", "hazy", "blur", "blurry",
    "data", "test", "images", "source",
}  # fmt: skip
#: keys of one set in ``data.test`` / ``data.train``
SET_KEYS = {"input", "target", "name", "family", "rule", "recursive", "repeats"}


@dataclass(frozen=True)
class FolderPair:
    """One set: degraded images in ``input``, their clean partners in ``target``."""

    input: Path
    target: Path
    name: str
    family: str
    rule: str = "same"
    recursive: bool = False
    repeats: int = 1

    def image_set(self, expected: int | None = None) -> ImageSet:
        """As the scan reads sets (folders given absolute, so the scan's root does not matter)."""
        return ImageSet(self.name, (str(self.target),), (str(self.input),), self.rule, expected, self.recursive)


def benchmark_name(folder: Path) -> str:
    """The benchmark a folder of degraded images is reported as: its name (or its parent's, where its own
    only says what it holds), lower case, with runs of other characters as ``_``."""
    chosen = folder
    while chosen.name.lower() in GENERIC_FOLDERS and chosen.parent != chosen:
        chosen = chosen.parent
    name = re.sub(r"[^0-9a-z]+", "_", chosen.name.lower()).strip("_")
    return name or "paired"


def _folder(value: Any, key: str) -> Path:
    if not value:
        raise ConfigError(f"data.{key} is empty: give a folder of images")
    return Path(str(value)).expanduser().resolve()


def parse_sets(node: Sequence[Mapping[str, Any]] | None, key: str, defaults: Mapping[str, Any]) -> list[FolderPair]:
    """``data.<key>`` (a list of ``{input, target, name?, family?, rule?, recursive?, repeats?}``) as sets."""
    sets = []
    for i, item in enumerate(node or []):
        where = f"{key}[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"data.{where} must be a mapping with input and target folders, got {item!r}")
        unknown = sorted(set(item) - SET_KEYS)
        if unknown or "input" not in item or "target" not in item:
            raise ConfigError(f"data.{where}: a set needs `input` and `target` folders (and may give "
                              f"{', '.join(sorted(SET_KEYS - {'input', 'target'}))}); got {sorted(item)}")
        options = {**defaults, **{k: v for k, v in item.items() if v is not None}}
        rule = str(options["rule"])
        if rule not in PAIRING_RULES:
            raise ConfigError(
                f"data.{where}.rule: unknown pairing rule {rule!r}; expected one of {sorted(PAIRING_RULES)}"
            )
        source = _folder(item["input"], f"{where}.input")
        sets.append(FolderPair(
            input=source, target=_folder(item["target"], f"{where}.target"),
            name=str(options.get("name") or benchmark_name(source)), family=str(options["family"]), rule=rule,
            recursive=bool(options["recursive"]), repeats=int(options.get("repeats", 1)),
        ))  # fmt: skip
    return sets


def _check_folders(sets: list[FolderPair], role: str, setting: str = "paired") -> None:
    missing = [(s, side, folder) for s in sets for side, folder in (("input", s.input), ("target", s.target))
               if not folder.is_dir()]
    if missing:
        hint = ("Give existing folders: data.input=/path/to/degraded data.target=/path/to/clean (one test set) or "
                "data.test='[{input: ..., target: ...}]'; src.eval needs only test sets, src.train also data.train."
                if setting == "paired" else
                f"data={setting} reads them under data.root: point it at the folder that holds them.")
        lines = [f"data={setting}: {role} folder(s) not found:",
                 *[f"  {s.name} {side}: {folder}" for s, side, folder in missing], hint]
        raise DataNotFoundError("\n".join(lines))


def scan_paired(sets: list[FolderPair], check: str = "decode") -> list[tuple[FolderPair, list[tuple[Path, Path]]]]:
    """Test sets scanned as ``data=paired`` scans them (folders checked, pairs listed, files decoded at
    ``check``); a problem stops with the report."""
    _check_folders(sets, "test")
    reports = [scan_set(Path.cwd(), SetReport("test", s.family, s.image_set(), [s.name]), check) for s in sets]
    if failed(reports, counts=False):
        raise DataCheckError(f"{format_report(reports, None, 'paired', 'extra_paired', check, check)}\n"
                             "Fix the folders above and run again.")
    return [(s, r.pairs) for s, r in zip(sets, reports)]


def published_counts(layouts: Mapping[str, Any] | None) -> dict[str, int]:
    """Benchmark name -> image count of the published test sets the composed layouts know."""
    if not layouts:
        return {}
    counts = {}
    for families in parse_layouts(layouts).values():
        for family in families.values():
            if family.test.expected is not None:
                counts[family.test.name] = int(family.test.expected)
    return counts


def paired_datamodule(
    input: str | None = None,
    target: str | None = None,
    test: Sequence[Mapping[str, Any]] | None = None,
    train: Sequence[Mapping[str, Any]] | None = None,
    rule: str = "same",
    family: str = "paired",
    recursive: bool = False,
    layouts: Mapping[str, Any] | None = None,
    patch_size: int = 128,
    crop_multiple: int = 16,
    train_crop_multiple: int = 16,
    check: str = "pairs",
    test_check: str = "decode",
    val_images: int | None = None,
    mix: str = "concat",
    seed: int = 0,
    name: str = "paired",
    root: str | None = None,
    **loader_options: Any,
) -> RestorationDataModule:
    """Scan the sets, then build the training mix (``train``; empty: evaluation only) and one benchmark per test set.

    ``input``/``target`` is the one-set shorthand, added before the sets of ``test``. ``root``: a folder the
    sets' paths may be written under (``${data.root}/...``, as ``data=daclip`` does); not read itself.
    (``data.captions`` goes to the datamodule with the loader options, as in every setting.)
    """
    defaults = {"rule": rule, "family": family, "recursive": recursive, "repeats": 1}
    if (input is None) != (target is None):
        raise ConfigError("data.input and data.target go together: the degraded folder and the clean one")
    shorthand = [{"input": input, "target": target}] if input is not None else []
    test_sets = parse_sets([*shorthand, *(test or [])], "test", defaults)
    train_sets = parse_sets(train, "train", defaults)
    if not test_sets:
        raise ConfigError("data=paired has no test set: give data.input=/path/to/degraded data.target=/path/to/clean, "
                          "or data.test='[{input: ..., target: ...}]'")
    names = [s.name for s in test_sets]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"data=paired: two test sets are both named {twice}: give each a `name`")
    _check_folders(test_sets, "test", name)
    _check_folders(train_sets, "training", name)

    counts = published_counts(layouts)
    root = Path.cwd()
    reports = [scan_set(root, SetReport("train", s.family, s.image_set(), [s.family]), check, patch_size,
                        train_crop_multiple) for s in train_sets]
    reports += [scan_set(root, SetReport("test", s.family, s.image_set(counts.get(s.name)), [s.name]), test_check)
                for s in test_sets]
    report = format_report(reports, None, "paired", name, check if train_sets else test_check, test_check)
    if failed(reports, counts=False):
        raise DataCheckError(f"{report}\nFix the folders above and run again.")
    log.info("%s", report)

    train_data: dict[str, Any] = {}
    for s, r in zip(train_sets, reports):
        if s.family in train_data:
            raise ConfigError(f"data.train: two training sets of family {s.family!r}: give each its own `family`")
        train_data[s.family] = PairedPatches(r.pairs, s.family, patch_size, s.repeats, seed, train_crop_multiple)
    test_reports = reports[len(train_sets):]
    tests = {s.name: PairedImages(r.pairs, s.name, s.family, crop_multiple) for s, r in zip(test_sets, test_reports)}

    val = {b: evenly_spaced(ds, val_images) for b, ds in tests.items()}
    datamodule = RestorationDataModule(train=train_data, val=val, test=tests, mix=mix, seed=seed, name=name,
                                       **loader_options)
    datamodule.benchmark_notes = {
        s.name: f"{r.found} pairs from {s.input}, the published set of that name has {r.image_set.expected}"
        for s, r in zip(test_sets, test_reports) if not r.count_ok
    }
    return datamodule
