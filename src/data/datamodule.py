"""The mixing DataModule: one training mix of degradation families, one val/test loader per benchmark.

Datasets arrive already built (Hydra instantiates them from ``conf/data``), keyed by family for
training and by benchmark for evaluation, so the module itself never names a concrete dataset class.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
from torch import Tensor
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset

from src.data.captions import WithCaptions, read_captions
from src.data.loader import ResumableLoader
from src.data.sampler import MixSampler
from src.utils.errors import ConfigError

log = logging.getLogger(__name__)


AUTO = "auto"


def _flag(value: bool | str, key: str) -> bool | str:
    if value == AUTO or isinstance(value, bool):
        return value
    raise ValueError(f"data.{key} must be 'auto', true or false, got {value!r}")


def _count(value: Any, key: str, minimum: int = 1) -> int:
    """``value`` as a whole number of at least ``minimum``, else a ConfigError naming ``data.<key>``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"data.{key}={value!r}: expected a whole number >= {minimum}")
    return value


class _KeyedConcat(ConcatDataset):
    """``ConcatDataset`` that forwards ``(epoch, index)`` keys to the right family dataset."""

    def __getitem__(self, key: Any) -> Any:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        for dataset, end in zip(self.datasets, self.cumulative_sizes):
            if index < end:
                return dataset[(epoch, index - (end - len(dataset)))]
        raise IndexError(f"index {index} out of range for a mix of {len(self)} samples")


class WithDerivedInputs(Dataset):
    """A dataset whose samples' ``lq`` goes through ``derive`` (a network's fixed input function: Water-Net's
    derived inputs), keys passed on as they come (``(epoch, index)`` in training)."""

    def __init__(self, dataset: Dataset, derive: Callable[[Tensor], Tensor]) -> None:
        self.dataset, self.derive = dataset, derive

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: Any) -> dict[str, Any]:
        sample = dict(self.dataset[key])
        sample["lq"] = self.derive(sample["lq"])
        return sample


class RestorationDataModule(L.LightningDataModule):
    """Training mix + per-benchmark evaluation loaders.

    Args:
        train: family name -> dataset yielding training samples for it.
        val / test: benchmark name -> dataset of fixed (degraded, clean) pairs; ``test`` defaults to ``val``.
        weights: family name -> sampling weight for ``mix="weighted"`` (independent of dataset sizes).
        mix: ``"weighted"`` or ``"concat"`` (the official recipe: every repeated sample once an epoch).
        samples_per_epoch: epoch length for weighted mixing.
        pin_memory: page-locked batches for faster host-to-GPU copies; ``"auto"``: when the Trainer runs on CUDA.
        persistent_workers: keep the loader processes between epochs (and between validations, which
            otherwise start ``num_workers`` fresh processes each time); ``"auto"``: whenever ``num_workers > 0``.
        captions: a captions file (:mod:`src.data.captions`): every sample carries the ``caption`` of its image
            (Perceive-IR's and DA-CLIP's text).
    """

    def __init__(
        self,
        train: Mapping[str, Dataset] | None = None,
        val: Mapping[str, Dataset] | None = None,
        test: Mapping[str, Dataset] | None = None,
        weights: Mapping[str, float] | None = None,
        mix: str = "weighted",
        samples_per_epoch: int | None = None,
        batch_size: int = 8,
        eval_batch_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool | str = "auto",
        persistent_workers: bool | str = "auto",
        seed: int = 0,
        name: str = "",
        captions: str | None = None,
    ) -> None:
        super().__init__()
        self.train_sets = dict(train or {})
        self.val_sets = dict(val or {})
        self.test_sets = dict(test) if test else dict(self.val_sets)
        unknown = sorted(set(weights or {}) - set(self.train_sets))
        if unknown:
            raise ValueError(
                f"data.weights names families {unknown} that are not in data.train {sorted(self.train_sets)}"
            )
        self.weights = {f: float((weights or {}).get(f, 1.0)) for f in self.train_sets}
        self.mix = mix
        self.samples_per_epoch = None if samples_per_epoch is None else _count(samples_per_epoch, "samples_per_epoch")
        self.batch_size = _count(batch_size, "batch_size")
        self.eval_batch_size = _count(eval_batch_size, "eval_batch_size")
        self.num_workers = _count(num_workers, "num_workers", minimum=0)
        self._pin_memory = _flag(pin_memory, "pin_memory")
        self.persistent_workers = _flag(persistent_workers, "persistent_workers") in (True, AUTO) and num_workers > 0
        self.seed = seed
        self.name = name
        #: benchmark -> why its numbers are not those of the published set it is named after (its image count
        #: differs); the test record carries it into every table, and no published comparison is made for it
        self.benchmark_notes: dict[str, str] = {}
        #: benchmark -> group (seen, unseen family, ...) for settings that test beyond their training; the
        #: table averages each group apart
        self.benchmark_groups: dict[str, str] = {}
        #: the network's fixed input function (``Backbone.derived_inputs``), applied to every sample's ``lq`` by
        #: the loaders; set by the run assembly
        self.input_transform: Callable[[Tensor], Tensor] | None = None
        #: image name -> caption (``data.captions``): every sample the loaders serve carries its ``caption``
        self.captions: Mapping[str, str] | None = read_captions(captions) if captions else None

    def _served(self, dataset: Dataset) -> Dataset:
        """``dataset`` as the loaders serve it: with the captions, and the network's derived inputs, where set."""
        if self.captions is not None:
            dataset = WithCaptions(dataset, self.captions)
        return dataset if self.input_transform is None else WithDerivedInputs(dataset, self.input_transform)

    @property
    def pin_memory(self) -> bool:
        """``pin_memory``, with ``"auto"`` resolved: pinned when the attached Trainer runs on CUDA."""
        if self._pin_memory != AUTO:
            return bool(self._pin_memory)
        trainer = self.trainer
        return trainer is not None and trainer.strategy.root_device.type == "cuda"

    @property
    def families(self) -> list[str]:
        return list(self.train_sets)

    @property
    def val_benchmarks(self) -> list[str]:
        return list(self.val_sets)

    @property
    def test_benchmarks(self) -> list[str]:
        return list(self.test_sets)

    def make_sampler(self) -> MixSampler:
        return MixSampler(
            [len(d) for d in self.train_sets.values()],
            weights=list(self.weights.values()),
            num_samples=self.samples_per_epoch,
            mode=self.mix,
            seed=self.seed,
        )

    def describe_mix(self) -> str:
        """Per-epoch sample count and each family's share (logged when training starts)."""
        sampler = self.make_sampler()
        counts = sampler.family_counts(0)
        total = sum(counts)
        parts = [
            f"{family}: {count} ({100.0 * count / total:.1f}%, {len(ds)} samples in its list)"
            for (family, ds), count in zip(self.train_sets.items(), counts)
        ]
        return f"training mix ({self.mix}), {total} samples per epoch: " + "; ".join(parts)

    def _progress(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 0
        return trainer.current_epoch, trainer.fit_loop.epoch_loop.batch_progress.current.processed

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and not self.train_sets:
            raise ValueError("data.train is empty: the training mix needs at least one family")
        if stage in (None, "fit", "validate") and not self.val_sets:
            raise ValueError("data.val is empty: give at least one validation benchmark")

    def train_dataloader(self) -> DataLoader:
        if not self.train_sets:
            raise ConfigError(
                f"data={self.name or '?'} has no training sets: it can be evaluated (src.eval) but not trained on; "
                "data=paired trains with data.train='[{input: ..., target: ..., family: ...}]'"
            )
        log.info(self.describe_mix())
        return ResumableLoader(
            self._served(_KeyedConcat(list(self.train_sets.values()))),
            batch_size=self.batch_size,
            sampler=self.make_sampler(),
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
            drop_last=True,
            progress=self._progress,
        )

    def _eval_loaders(self, sets: Mapping[str, Dataset]) -> list[DataLoader]:
        return [
            DataLoader(
                self._served(ds),
                batch_size=self.eval_batch_size,
                shuffle=False,
                num_workers=self.num_workers,
                pin_memory=self.pin_memory,
                persistent_workers=self.persistent_workers,
            )
            for ds in sets.values()
        ]

    def val_dataloader(self) -> list[DataLoader]:
        return self._eval_loaders(self.val_sets)

    def test_dataloader(self) -> list[DataLoader]:
        return self._eval_loaders(self.test_sets)


def evenly_spaced(ds: Dataset, count: int | None) -> Dataset:
    """``count`` evenly spaced images of a benchmark (all when ``None``), for a cheaper validation."""
    n = len(ds)
    if count is None or count >= n:
        return ds
    return Subset(ds, sorted({round(i * (n - 1) / max(count - 1, 1)) for i in range(count)}))
