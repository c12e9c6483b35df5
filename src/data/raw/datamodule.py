"""``data=raw_synthetic``, ``data=sid``, ``data=eld``: RAW denoising as LED trains and tests it.

Training is LED's pre-training (clean long exposures made noisy by the virtual cameras, :class:`NoisyRawPatches`)
or, with ``fewshot_list``, its few-shot fine-tuning on real pairs (:class:`RawPairs`). Evaluation is on SID's test
pairs (one benchmark per ratio: ``sid_x100``, ``sid_x250``, ``sid_x300``), ELD's (``eld_<camera>_x<ratio>``), or,
with neither, on frames made noisy by an unseen camera at ``synthetic_ratios`` (``raw_x<ratio>``).
Without ``train_root``/``train_list`` the clean frames are stand-ins made from the photographs that ship with
scikit-image (:class:`UnprocessedPhotos`), so the pipeline runs anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from src.data.datamodule import RestorationDataModule
from src.data.datasets.sources import EmbeddedImages
from src.data.raw.datasets import NoisyRawPatches, RawFolder, RawPairs, SyntheticRawImages, UnprocessedPhotos
from src.data.raw.layouts import by_ratio, eld_pairs, read_pair_list
from src.data.raw.noise import LED_RANGES, VirtualCameras, sample_virtual_cameras
from src.utils.errors import ConfigError


def virtual_cameras(count: int = 5, strategy: str = "coverage", noise_type: str = "ptrqc", file: str | None = None,
                    seed: int = 0) -> VirtualCameras:
    """LED's virtual cameras: from its saved file (``file``: a noise_g .pth) or sampled from its ranges."""
    if file:
        cameras = VirtualCameras.from_led_file(file, noise_type)
        if len(cameras) != count:
            raise ConfigError(f"data.cameras.file={file} holds {len(cameras)} cameras but data.cameras.count={count}")
        return cameras
    return sample_virtual_cameras(count, LED_RANGES, noise_type, strategy, seed=seed)


def unseen_camera(cameras: VirtualCameras, seed: int) -> VirtualCameras:
    """One camera drawn at random from LED's ranges (a test camera the virtual ones do not include)."""
    return sample_virtual_cameras(1, LED_RANGES, cameras.noise_type, "uniform", seed=seed + 1)


def raw_datamodule(
    cameras: VirtualCameras,
    train_root: str | None = None,
    train_list: str | None = None,
    sid_root: str | None = None,
    fewshot_list: str | None = None,
    sid_test_list: str | None = None,
    eld_root: str | None = None,
    eld_camera: str = "SonyA7S2",
    eld_scenes: Sequence[int] = tuple(range(3, 11)),
    eld_ratios: Sequence[int] = (100, 200),
    synthetic_ratios: Sequence[float] = (100, 200),
    patch_size: int = 512,
    fewshot_patch_size: int = 512,
    ratio_range: Sequence[float] = (100, 300),
    embedded_max_side: int | None = None,
    name: str = "raw",
    seed: int = 0,
    **loader_options: Any,
) -> RestorationDataModule:
    """The RAW datamodule; relative list paths are read under ``sid_root``.

    ``train_root``: a folder of clean frames (camera files or LED's .npz tiles); ``train_list``: a SID list whose
    long exposures are the clean frames (LED pre-trains on SID's training scenes). ``fewshot_list``: real pairs
    to fine-tune on instead (LED: 2 per ratio). ``sid_test_list``: SID's test list (one benchmark per ratio).
    """
    root = Path(sid_root).expanduser() if sid_root else None
    if train_root and train_list:
        raise ConfigError("data.train_root and data.train_list both name the clean frames: give one")
    if train_list:
        long_files = sorted({pair[1] for pair in read_pair_list(train_list, root)})
        source: Any = RawFolder(files=long_files)
    elif train_root:
        source = RawFolder(train_root)
    else:
        source = UnprocessedPhotos(EmbeddedImages("train", max_side=embedded_max_side))
    if fewshot_list:
        pairs = read_pair_list(fewshot_list, root)
        train: dict[str, Dataset] = {"raw": RawPairs(pairs, family="raw", patch_size=fewshot_patch_size, seed=seed,
                                                     cache=True)}
    else:
        train = {"raw": NoisyRawPatches(source, cameras, patch_size, ratio_range, seed=seed)}

    evaluation: dict[str, Dataset] = {}
    if sid_test_list:
        for ratio, group in by_ratio(read_pair_list(sid_test_list, root)).items():
            evaluation[f"sid_x{ratio}"] = RawPairs(group, benchmark=f"sid_x{ratio}", family="raw")
    if eld_root:
        for ratio, group in eld_pairs(eld_root, eld_camera, eld_scenes, eld_ratios).items():
            benchmark = f"eld_{eld_camera.lower()}_x{ratio}"
            evaluation[benchmark] = RawPairs(group, benchmark=benchmark, family="raw")
    if not evaluation:
        test_source = UnprocessedPhotos(EmbeddedImages("test", max_side=embedded_max_side))
        test_camera = unseen_camera(cameras, seed)
        for ratio in synthetic_ratios:
            benchmark = f"raw_x{ratio:g}"
            evaluation[benchmark] = SyntheticRawImages(test_source, test_camera, ratio, benchmark, seed=seed)
    datamodule = RestorationDataModule(train=train, val=evaluation, test=evaluation, seed=seed, name=name,
                                       **loader_options)
    datamodule.cameras = cameras
    return datamodule
