"""DataModules for the published benchmark settings (3deg, 5deg, single families, CDD-11) read from the user's folders.

The folders are located and scanned (listed and paired) before anything else, so a missing or broken
download stops the run in seconds with a report. The official training mix is the default: every
family's list repeated as the official codes do (noise x3 per sigma, rain x120, haze x1, blur x5, low
light x20) and concatenated; ``mix: weighted`` (weights or a temperature over sizes) and AirNet-style
batches (``mix: airnet``: every batch holds the same number of patches of each family) are alternatives.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from src.data.check import SetReport, failed, format_report, scan
from src.data.datamodule import RestorationDataModule, evenly_spaced
from src.data.datasets.paired import NoisyImages, NoisyPatches, PairedImages, PairedPatches
from src.data.datasets.sources import ImageFiles
from src.data.datasets.synthetic import DegradedImages
from src.data.degradations.base import Degradation
from src.data.layouts import SPLITS, DataCheckError, locate, parse_layouts
from src.data.paired_folders import parse_sets, scan_paired
from src.data.sampler import MixSampler, _rank_world
from src.data.synthetic_mix import SEEN

log = logging.getLogger(__name__)

#: per-epoch repeats of each family's list in the official codes (PROTOCOLS.md sections 1-2)
OFFICIAL_REPEATS = {"noise": 3, "rain": 120, "haze": 1, "blur": 5, "lowlight": 20}
MIXES = ("concat", "weighted", "airnet")


class OnePerFamilySampler(MixSampler):
    """AirNet-style order: every run of ``len(sizes)`` consecutive samples on a rank holds one sample of each family.

    With a batch size that is a multiple of the number of families, every batch holds the same number of
    patches of each family. Each family's samples are visited in a fresh random order (cycled when it is
    smaller than the epoch needs); the epoch length defaults to the concatenated size. Sharding: rank ``r``
    takes positions ``r, r + world, ...`` (see :class:`MixSampler`), so the runs are interleaved per rank.
    """

    def __init__(self, sizes: Sequence[int], num_samples: int | None = None, seed: int = 0) -> None:
        super().__init__(sizes, mode="concat", seed=seed)
        self.mode = "airnet"
        _, world = _rank_world()
        group = len(self.sizes) * world
        self.num_samples = max(group, (int(num_samples or sum(self.sizes)) // group) * group)

    def epoch_indices(self, epoch: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        _, world = _rank_world()
        families = len(self.sizes)
        rows = self.num_samples // families
        columns = []
        for size, offset in zip(self.sizes, self.offsets):
            order = torch.cat([torch.randperm(size, generator=gen) for _ in range(math.ceil(rows / size))])[:rows]
            columns.append(order + offset)
        grid = torch.stack(columns, dim=1)  # one row = one sample of each family
        grid = grid.gather(1, torch.argsort(torch.rand(rows, families, generator=gen), dim=1))
        per_rank = [grid[r::world].flatten() for r in range(world)]
        return torch.stack(per_rank, dim=1).flatten()  # position k * world + r belongs to rank r


class BenchmarkDataModule(RestorationDataModule):
    """The mixing DataModule, plus AirNet-style batches and a mix description that knows about repeats."""

    def make_sampler(self) -> MixSampler:
        if self.mix == "airnet":
            return OnePerFamilySampler([len(d) for d in self.train_sets.values()], self.samples_per_epoch, self.seed)
        return super().make_sampler()

    def _eval_loaders(self, sets: Mapping[str, Dataset]) -> list[DataLoader]:
        for ds in sets.values():  # realise fixed test noise once here, not in every loader worker
            prepare = getattr(getattr(ds, "dataset", ds), "prepare", None)
            if prepare is not None:
                prepare()
        return super()._eval_loaders(sets)

    def describe_mix(self) -> str:
        """Per-epoch count and share of each family, with its distinct images and repeats."""
        counts = self.make_sampler().family_counts(0)
        total = sum(counts)
        parts = []
        for (family, ds), count in zip(self.train_sets.items(), counts):
            distinct = getattr(ds, "distinct", len(ds))
            sigmas = getattr(ds, "sigmas", None)
            lists = f" x {len(sigmas)} sigmas {tuple(int(s) if s == int(s) else s for s in sigmas)}" if sigmas else ""
            repeats = getattr(ds, "repeats", 1)
            kind = "pairs" if hasattr(ds, "pairs") else "images"
            parts.append(f"{family}: {count} ({100.0 * count / total:.1f}%; {distinct} {kind}{lists} x{repeats})")
        return f"training mix ({self.mix}), {total} samples per epoch: " + "; ".join(parts)


def _mix_weights(
    mix: str, sizes: Mapping[str, int], weights: Mapping[str, float] | None, temperature: float | None
) -> dict[str, float] | None:
    """Weights for ``mix: weighted``: given, or ``size ** (1 / temperature)`` (1: concat shares, large: uniform)."""
    if mix not in MIXES:
        raise ValueError(f"unknown data.mix {mix!r}; expected one of {MIXES}")
    if mix != "weighted":
        if weights or temperature:
            raise ValueError(f"data.weights and data.temperature apply to data.mix=weighted, not {mix!r}")
        return None
    if weights and temperature:
        raise ValueError("give data.weights or data.temperature, not both")
    if temperature:
        if temperature <= 0:
            raise ValueError(f"data.temperature must be positive, got {temperature}")
        return {f: float(n) ** (1.0 / float(temperature)) for f, n in sizes.items()}
    return dict(weights) if weights else None


def _train_sets(
    reports: list[SetReport],
    repeats: Mapping[str, int],
    sigmas: Sequence[float],
    patch_size: int,
    crop_multiple: int,
    seed: int,
) -> dict[str, Dataset]:
    sets: dict[str, Dataset] = {}
    for r in reports:
        n = int(repeats.get(r.family, 1))
        if r.image_set.paired:
            sets[r.family] = PairedPatches(r.pairs, r.family, patch_size, n, seed, crop_multiple)
        else:
            sets[r.family] = NoisyPatches(r.clean, sigmas, r.family, patch_size, n, seed, crop_multiple)
    return sets


def _test_sets(
    reports: list[SetReport], protocol: str, order: Sequence[float], noise_seed: int, crop_multiple: int
) -> dict[str, Dataset]:
    sets: dict[str, Dataset] = {}
    for r in reports:
        if r.image_set.paired:
            sets[r.benchmarks[0]] = PairedImages(r.pairs, r.benchmarks[0], r.family, crop_multiple)
            continue
        for name in r.benchmarks:
            sigma = float(name.rsplit("_s", 1)[1])
            sets[name] = NoisyImages(r.clean, sigma, name, r.family, protocol, noise_seed, order, crop_multiple)
    return sets


def extra_sets(reports: list[SetReport], extra_benchmarks: Mapping[str, Mapping[str, Any]] | None,
               source: str | None, crop_multiple: int, seed: int) -> tuple[dict[str, Dataset], dict[str, str]]:
    """Test-only benchmarks (``name: {group, degradation}``, e.g. ``+data/benchmarks=generalisation``) made by
    degrading the clean images of one test set: ``source`` names its benchmark (default: the first clean-only
    set, the denoising one, else the first test set). Returns the datasets and their groups."""
    extras = dict(extra_benchmarks or {})
    tests = [r for r in reports if r.split == "test"]
    if not extras or not tests:
        return {}, {}
    if source is not None:
        chosen = [r for r in tests if source in r.benchmarks]
        if not chosen:
            raise ValueError(f"data.extra_source={source!r} names no test benchmark of this setting; known: "
                             f"{', '.join(b for r in tests for b in r.benchmarks)}")
    else:
        chosen = [r for r in tests if not r.image_set.paired] or tests
    report = chosen[0]
    clean = report.clean if not report.image_set.paired else [gt for _, gt in report.pairs]
    images = ImageFiles(sorted(dict.fromkeys(clean)))
    sets, groups = {}, {}
    for name, spec in extras.items():
        if not (isinstance(spec, Mapping) and isinstance(spec.get("degradation"), Degradation) and spec.get("group")):
            raise ValueError(f"data.extra_benchmarks.{name} needs a group and a degradation (a _target_ of "
                             f"src.data.degradations), got {spec!r}")
        benchmark = f"{report.benchmarks[0]}_{name}"
        sets[benchmark] = DegradedImages(images, spec["degradation"], benchmark=benchmark, family=name, seed=seed,
                                         crop_multiple=crop_multiple)
        groups[benchmark] = str(spec["group"])
    log.info("%d test-only benchmark(s) from the %d clean images of %s: %s", len(sets), len(images),
             report.benchmarks[0], ", ".join(sets))
    return sets, groups


#: the table group of a composite of a setting's own families (CDD-11's low_haze_rain) and of a single one
MIXED, SINGLE = "mixed", "single"
#: the table group of a user's own paired folders added to a setting
REAL = "real (your folders)"


def composite_groups(test: Mapping[str, Dataset], families: Sequence[str]) -> dict[str, str]:
    """``mixed`` for benchmarks whose family joins several of the setting's families with ``_`` (CDD-11's
    composites), ``single`` for the rest; empty where the setting has no composite."""
    singles = set(families)

    def composite(family: str) -> bool:
        parts = family.split("_")
        return len(parts) > 1 and all(p in singles for p in parts)

    family_of = {b: getattr(ds, "family", None) or getattr(getattr(ds, "dataset", None), "family", "") for b, ds
                 in test.items()}
    if not any(composite(f) for f in family_of.values()):
        return {}
    return {b: MIXED if composite(f) else SINGLE for b, f in family_of.items()}


def extra_paired_sets(folders: Sequence[Mapping[str, Any]] | None, crop_multiple: int,
                      check: str) -> dict[str, Dataset]:
    """Your own (degraded, clean) folders as further test benchmarks of a published setting (``data.extra_paired``,
    the sets of ``data=paired``: ``{input, target, name?, rule?, recursive?}``), scanned like its test sets."""
    if not folders:
        return {}
    sets = parse_sets(folders, "extra_paired", {"rule": "same", "family": "paired", "recursive": False, "repeats": 1})
    return {s.name: PairedImages(pairs, s.name, s.family, crop_multiple) for s, pairs in scan_paired(sets, check)}


def benchmark_datamodule(
    setting: str,
    root: str | Path | None,
    families: list[str],
    layouts: Mapping[str, Any] | None = None,
    layout: str = "auto",
    splits: Sequence[str] = SPLITS,
    patch_size: int = 128,
    repeats: Mapping[str, int] | None = None,
    train_sigmas: Sequence[float] = (15, 25, 50),
    test_sigmas: Sequence[float] = (15, 25, 50),
    noise_protocol: str = "promptir",
    noise_order: Sequence[float] = (15, 25, 50),
    noise_seed: int = 0,
    crop_multiple: int = 16,
    train_crop_multiple: int = 16,
    mix: str = "concat",
    weights: Mapping[str, float] | None = None,
    temperature: float | None = None,
    samples_per_epoch: int | None = None,
    check: str = "pairs",
    test_check: str = "decode",
    strict_counts: bool = False,
    val_images: int | None = None,
    extra_benchmarks: Mapping[str, Mapping[str, Any]] | None = None,
    extra_source: str | None = None,
    extra_paired: Sequence[Mapping[str, Any]] | None = None,
    seed: int = 0,
    name: str = "",
    **loader_options: Any,
) -> BenchmarkDataModule:
    """Locate and scan the folders of ``families``, then build the training mix and one test set per benchmark.

    ``layouts`` are the candidate folder layouts (``data.layouts``, composed from ``conf/data/layout``);
    ``layout`` names one of them or is ``auto`` (the one whose folders ``root`` holds).

    ``check`` is the scan level at start (``pairs``: list and pair, no file opened; ``sizes``; ``decode``) of the
    training sets, ``test_check`` that of the test sets (``decode`` by default: an unreadable test image stops
    the run before it trains or evaluates, with the list of bad files, not at the first validation);
    a problem stops the run with the scan's report, as does a count unlike a correct download when
    ``strict_counts``. ``val_images`` limits validation to that many evenly spaced images per benchmark.
    ``extra_benchmarks`` adds test-only benchmarks made from one test set's clean images (:func:`extra_sets`),
    averaged apart by group in the table (the published benchmarks are ``seen``); ``extra_paired`` adds your own
    paired folders (group ``real``). CDD-11's composites are averaged apart as ``mixed``.
    """
    families = list(families)
    known = parse_layouts(layouts)
    root_path, layout = locate(root, families, setting, known, layout, list(splits))
    reports = scan(root_path, known[layout], families, check, test_sigmas, patch_size, train_crop_multiple,
                   crop_multiple, splits, test_level=test_check)
    report = format_report(reports, root_path, layout, setting, check, test_check)
    if failed(reports, counts=strict_counts):
        raise DataCheckError(f"{report}\nFix the data (python -m src.data.check data={name or setting} "
                             f"data.root={root_path} --level decode gives the full report) and run again.")
    (log.warning if failed(reports) else log.info)("%s", report)

    train = _train_sets([r for r in reports if r.split == "train"], {**OFFICIAL_REPEATS, **(repeats or {})},
                        train_sigmas, patch_size, train_crop_multiple, seed)
    test = _test_sets([r for r in reports if r.split == "test"], noise_protocol, noise_order, noise_seed, crop_multiple)
    groups = composite_groups(test, families)
    extra, extra_groups = extra_sets(reports, extra_benchmarks, extra_source, crop_multiple, noise_seed)
    paired = extra_paired_sets(extra_paired, crop_multiple, test_check)
    clash = sorted(set(paired) & set(test) | set(extra) & set(test))
    if clash:
        raise ValueError(f"extra test benchmarks {clash} are named like the setting's own: give them another name")
    test.update(extra)
    test.update(paired)
    extra_groups.update({b: REAL for b in paired})
    mix_weights = _mix_weights(mix, {f: len(d) for f, d in train.items()}, weights, temperature)
    val = {b: evenly_spaced(ds, val_images) for b, ds in test.items()}
    datamodule = BenchmarkDataModule(train=train, val=val, test=test, weights=mix_weights, mix=mix,
                                     samples_per_epoch=samples_per_epoch, seed=seed, name=name, **loader_options)
    datamodule.benchmark_notes = {
        b: f"{r.found} {'pairs' if r.image_set.paired else 'images'}, the published set has {r.image_set.expected}"
        for r in reports if r.split == "test" and not r.count_ok for b in r.benchmarks
    }
    if extra_groups or groups:  # the table averages each group apart
        datamodule.benchmark_groups = {b: extra_groups.get(b, groups.get(b, SEEN)) for b in test}
    if mix == "airnet" and train and datamodule.batch_size % len(train):
        raise ValueError(f"data.mix=airnet needs data.batch_size ({datamodule.batch_size}) to be a multiple of "
                         f"the {len(train)} families {list(train)}")
    return datamodule


def folder_datamodule(root: str | Path, **options: Any) -> RestorationDataModule:
    """``data=folder``: the synthetic families on the clean images under ``root`` (searched recursively)."""
    from src.data.synthetic_mix import synthetic_datamodule

    options.pop("clean_root", None)
    return synthetic_datamodule(clean_root=str(Path(str(root)).expanduser()), **options)
