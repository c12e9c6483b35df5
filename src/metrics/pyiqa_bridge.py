"""A bridge to ``pyiqa`` for the learned quality metrics the suite does not implement (MUSIQ, CLIP-IQA, MANIQA, ...).

``pyiqa`` (chaofengc/IQA-PyTorch) is under the PolyForm Noncommercial licence, so the suite neither depends on it
nor installs it: a user who may use it installs it (``pip install pyiqa``) and names metrics in
``metrics.pyiqa=[musiq,clipiqa]``. Nothing is downloaded: while a metric is built, pyiqa's download function
is replaced by one that stops with the file it wanted and the folder to put it in (pyiqa's cache,
``$TORCH_HOME/hub/pyiqa`` by default), and Hugging Face is put offline. A metric is no-reference (``NR``: scored
on the restored image alone, so it also scores unpaired photographs) or full-reference (``FR``: against the
target); pyiqa says which, and whether lower is better.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from src.utils.errors import ConfigError

#: how the tables name a pyiqa metric's column
PREFIX = "pyiqa_"
LICENCE_NOTE = ("pyiqa is under the PolyForm Noncommercial licence: the suite does not install it; install it "
                "yourself where its licence allows (pip install pyiqa)")


class WeightsMissingError(ConfigError):
    """A pyiqa metric wanted to download a file that is not in its cache."""


def _pyiqa() -> Any:
    try:
        return importlib.import_module("pyiqa")
    except ImportError as err:
        raise ConfigError(f"metrics.pyiqa needs the pyiqa package, which is not installed ({err}). "
                          f"{LICENCE_NOTE}") from err


@contextlib.contextmanager
def _no_downloads(pyiqa: Any, metric: str) -> Iterator[None]:
    """pyiqa's downloads raise :class:`WeightsMissingError` naming the file; Hugging Face runs offline."""
    download_util = importlib.import_module("pyiqa.utils.download_util")
    original = download_util.download_url_to_file

    def refuse(url: str, destination: str, *args: Any, **kwargs: Any) -> None:
        raise WeightsMissingError(
            f"metrics.pyiqa: {metric} needs {os.path.basename(destination)} (from {url}), which is not in pyiqa's "
            f"cache: put the file at {destination} (nothing is downloaded)")

    download_util.download_url_to_file = refuse
    offline = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        download_util.download_url_to_file = original
        if offline is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = offline


@dataclass
class PyiqaScorer:
    """One pyiqa metric, built once from pyiqa's cache; scores batches in [0, 1] per image (float64)."""

    name: str
    metric: Any
    no_reference: bool
    lower_better: bool

    @classmethod
    def load(cls, name: str, device: str | torch.device = "cpu") -> PyiqaScorer:
        pyiqa = _pyiqa()
        known = list(pyiqa.list_models())
        if name not in known:
            raise ConfigError(f"metrics.pyiqa: unknown pyiqa metric {name!r}; pyiqa has {', '.join(known)}")
        with _no_downloads(pyiqa, name):
            try:
                metric = pyiqa.create_metric(name, device=torch.device(device))
            except WeightsMissingError:
                raise
            except Exception as err:  # a model file pyiqa loads some other way, absent offline
                raise ConfigError(f"metrics.pyiqa: {name} could not be built offline from pyiqa's cache "
                                  f"({type(err).__name__}: {err}); put its weights in the cache first") from err
        mode = str(getattr(metric, "metric_mode", "NR")).upper()
        return cls(name, metric, mode == "NR", bool(getattr(metric, "lower_better", False)))

    @property
    def column(self) -> str:
        return PREFIX + self.name

    def __call__(self, pred: Tensor, target: Tensor | None = None) -> Tensor:
        """B x C x H x W in [0, 1] -> (B,) float64; a full-reference metric needs ``target``."""
        if not self.no_reference and target is None:
            raise ValueError(f"pyiqa metric {self.name} is full-reference: it needs the target image")
        metric = self.metric
        x = pred.detach().float().clamp(0, 1)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        device = next(iter(getattr(metric, "net", metric).parameters()), x).device
        with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
            if self.no_reference:
                score = metric(x.to(device))
            else:
                y = target.detach().float().clamp(0, 1)
                score = metric(x.to(device), (y.expand(-1, 3, -1, -1) if y.shape[1] == 1 else y).to(device))
        return score.reshape(x.shape[0], -1)[:, 0].double().to(pred.device)
