"""``data=uieb``: UIEB (Li et al., IEEE TIP 2019), the underwater enhancement benchmark Water-Net comes with.

Layout as released: ``raw-890/`` (890 underwater photographs), ``reference-890/`` (their references, same file
names) and ``challenging-60/`` (60 photographs without references). UIEB publishes no train/test split: papers
draw 800 pairs for training and test on the other 90 ("T90"), each with its own draw, and score the 60
challenging images with no-reference metrics ("C60"). Here the 90 are drawn with ``split_seed`` (or named by
``test_list``, a text file of file names, to reproduce a paper's split), and the challenging set is scored with
the no-reference metrics the run has on (``metrics.niqe=true``, ``metrics.pyiqa=[...]``; UCIQE and UIQM are in no
maintained library and are not computed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from src.data.datamodule import RestorationDataModule
from src.data.datasets.paired import PairedImages, PairedPatches, list_images
from src.data.unpaired import UnpairedImages
from src.utils.errors import DataError

RAW, REFERENCE, CHALLENGING = "raw-890", "reference-890", "challenging-60"
#: the published sizes
PUBLISHED = {RAW: 890, CHALLENGING: 60}


def uieb_pairs(root: Path) -> list[tuple[Path, Path]]:
    """(raw, reference) of every raw-890 image, matched by file name."""
    for folder in (RAW, REFERENCE):
        if not (root / folder).is_dir():
            raise DataError(f"UIEB: {root / folder} does not exist (data.root must hold {RAW}/, {REFERENCE}/ and "
                            f"{CHALLENGING}/ as released)")
    raws = {p.name: p for p in list_images(root, [RAW])}
    references = {p.name: p for p in list_images(root, [REFERENCE])}
    unmatched = sorted(set(raws) ^ set(references))
    if unmatched:
        raise DataError(f"UIEB: {len(unmatched)} file(s) in only one of {RAW}/ and {REFERENCE}/: "
                        + ", ".join(unmatched[:5]) + (" ..." if len(unmatched) > 5 else ""))
    if not raws:
        raise DataError(f"UIEB: {root / RAW} holds no images")
    return [(raws[name], references[name]) for name in sorted(raws)]


def split(pairs: list[tuple[Path, Path]], test_count: int, split_seed: int,
          test_list: str | None) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """(training, test) pairs: the names of ``test_list``, or ``test_count`` drawn with ``split_seed``."""
    if test_list:
        path = Path(test_list).expanduser()
        if not path.is_file():
            raise DataError(f"data.test_list={path} does not exist")
        names = {line.strip() for line in path.read_text().splitlines() if line.strip()}
        known = {raw.name for raw, _ in pairs}
        unknown = sorted(names - known)
        if unknown:
            raise DataError(f"data.test_list={path} names {len(unknown)} file(s) not in {RAW}/: "
                            f"{', '.join(unknown[:5])}")
        chosen = names
    else:
        if not 0 < test_count < len(pairs):
            raise DataError(f"data.test_count={test_count}: UIEB here has {len(pairs)} pairs")
        order = np.random.default_rng(split_seed).permutation(len(pairs))
        chosen = {pairs[i][0].name for i in order[:test_count]}
    return [p for p in pairs if p[0].name not in chosen], [p for p in pairs if p[0].name in chosen]


def uieb_datamodule(
    root: str,
    test_count: int = 90,
    split_seed: int = 0,
    test_list: str | None = None,
    challenging: bool = False,
    patch_size: int = 112,
    crop_multiple: int = 1,
    samples_per_epoch: int | None = None,
    mix: str = "weighted",
    seed: int = 0,
    **loader_options: Any,
) -> RestorationDataModule:
    """Training patches of the 800 pairs; benchmarks ``uieb_t90`` (full reference) and ``uieb_c60`` (none)."""
    base = Path(root).expanduser()
    train_pairs, test_pairs = split(uieb_pairs(base), test_count, split_seed, test_list)
    train = {"underwater": PairedPatches(train_pairs, "underwater", patch_size=patch_size, seed=seed,
                                         crop_multiple=1)}
    t90 = f"uieb_t{len(test_pairs)}"
    evaluation: dict[str, Dataset] = {t90: PairedImages(test_pairs, t90, "underwater", crop_multiple=crop_multiple)}
    if challenging:
        images = list_images(base, [CHALLENGING]) if (base / CHALLENGING).is_dir() else []
        if not images:
            raise DataError(f"UIEB: no images in {base / CHALLENGING} (set data.challenging=false to test on "
                            f"{RAW} only)")
        evaluation[f"uieb_c{len(images)}"] = UnpairedImages(images, f"uieb_c{len(images)}", "underwater",
                                                            crop_multiple=crop_multiple)
    datamodule = RestorationDataModule(train=train, val={t90: evaluation[t90]}, test=evaluation, mix=mix,
                                       samples_per_epoch=samples_per_epoch, seed=seed, name="uieb",
                                       **loader_options)
    datamodule.benchmark_notes = {t90: f"a split drawn with data.split_seed={split_seed}: UIEB publishes none, so "
                                       "papers' T90 numbers come from other draws"} if not test_list else {}
    return datamodule
