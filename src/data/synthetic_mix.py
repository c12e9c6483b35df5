"""Build a DataModule that synthesises each degradation family online from clean images.

This is the embedded default (``data=synth5deg``, ``data=synth3deg``): clean images come from
scikit-image's bundled photographs unless ``clean_root`` names a folder, so a run needs no download.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from src.data.datamodule import RestorationDataModule
from src.data.datasets.sources import EmbeddedImages, FolderImages
from src.data.datasets.synthetic import DegradedImages, DegradedPatches
from src.data.degradations.base import Degradation

#: benchmark groups of a held-out run (the eval table averages each apart)
SEEN, UNSEEN_FAMILY = "seen", "unseen family"


def synthetic_datamodule(
    degradations: Mapping[str, Degradation],
    families: list[str] | None = None,
    weights: Mapping[str, float] | None = None,
    train_source: Any = None,
    test_source: Any = None,
    clean_root: str | None = None,
    benchmark_prefix: str = "synth",
    patch_size: int = 128,
    crop_multiple: int = 16,
    seed: int = 0,
    test_seed: int = 0,
    holdout: str | Sequence[str] | None = None,
    extra_benchmarks: Mapping[str, Mapping[str, Any]] | None = None,
    **loader_options: Any,
) -> RestorationDataModule:
    """One training family and one benchmark per entry of ``families`` (default: every degradation).

    Benchmarks are named ``<benchmark_prefix>_<family>``; their degradations are keyed by ``test_seed``
    only, so the evaluation pixels never change with the training seed. ``holdout`` (a family or several)
    leaves families out of training but not out of the test: "train on four, test on the fifth", with the
    table's averages over the seen and the held-out (``unseen family``) benchmarks apart. ``extra_benchmarks``
    (``name: {group, degradation}``, e.g. ``+data/benchmarks=generalisation``) adds test-only benchmarks
    ``<prefix>_<name>`` made from the same test images, each seeded by its name, averaged by group.
    """
    families = list(families or degradations)
    missing = [f for f in families if f not in degradations]
    if missing:
        raise ValueError(f"data.families names {missing} with no entry in data.degradations {sorted(degradations)}")
    held = [holdout] if isinstance(holdout, str) else list(holdout or [])
    unknown = sorted(set(held) - set(families))
    if unknown or (held and set(held) >= set(families)):
        raise ValueError(f"data.holdout={held}: hold out some of the families {families}, not "
                         + (f"{unknown}" if unknown else "all of them"))
    if clean_root:
        train_source = FolderImages(clean_root)
    train_source = train_source if train_source is not None else EmbeddedImages("train")
    test_source = test_source if test_source is not None else EmbeddedImages("test")
    train = {
        f: DegradedPatches(train_source, degradations[f], patch_size=patch_size, family=f, seed=seed)
        for f in families if f not in held
    }
    evaluation = {
        f"{benchmark_prefix}_{f}": DegradedImages(
            test_source, degradations[f], benchmark=f"{benchmark_prefix}_{f}", family=f, seed=test_seed,
            crop_multiple=crop_multiple,
        )
        for f in families
    }
    extras = dict(extra_benchmarks or {})
    for name, spec in extras.items():
        if not (isinstance(spec, Mapping) and isinstance(spec.get("degradation"), Degradation) and spec.get("group")):
            raise ValueError(f"data.extra_benchmarks.{name} needs a group and a degradation (a _target_ of "
                             f"src.data.degradations), got {spec!r}")
        benchmark = f"{benchmark_prefix}_{name}"
        evaluation[benchmark] = DegradedImages(test_source, spec["degradation"], benchmark=benchmark, family=name,
                                               seed=test_seed, crop_multiple=crop_multiple)
    datamodule = RestorationDataModule(train=train, val=evaluation, test=evaluation, weights=weights, seed=seed,
                                       **loader_options)
    if held or extras:  # the table averages each group apart
        datamodule.benchmark_groups = {f"{benchmark_prefix}_{f}": UNSEEN_FAMILY if f in held else SEEN
                                       for f in families}
        datamodule.benchmark_groups.update({f"{benchmark_prefix}_{n}": str(s["group"]) for n, s in extras.items()})
    return datamodule
