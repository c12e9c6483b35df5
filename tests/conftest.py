"""Shared test fixtures: locating ``../shared`` (real data, weights, official reference vectors).

``shared`` sits beside the repository root. Tests that need it take the ``shared_dir`` or ``reference``
fixture and are skipped, with the reason, where it is absent, so the suite still passes without it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pytest
from safetensors.torch import load_file
from torch import Tensor

SHARED_DIR = (Path(__file__).resolve().parents[1] / ".." / "shared").resolve()


@dataclass(frozen=True)
class Reference:
    """One folder of ``shared/reference``: the official network's test vectors (see its README)."""

    dir: Path

    @cached_property
    def meta(self) -> dict:
        return json.loads((self.dir / "meta.json").read_text())

    @cached_property
    def default_keys(self) -> dict:
        """``default_keys.json``: key names, shapes and parameter counts of the paper configurations."""
        return json.loads((self.dir / "default_keys.json").read_text())

    def tensors(self, name: str) -> dict[str, Tensor]:
        """The tensors of ``name`` (``.safetensors`` may be left off), e.g. ``tensors("weights")``."""
        file = self.dir / (name if name.endswith(".safetensors") else f"{name}.safetensors")
        return load_file(file)

    def tensor(self, name: str, key: str | None = None) -> Tensor:
        """One tensor of a file: ``key``, or the file's only tensor (``tensor("input")``)."""
        tensors = self.tensors(name)
        if key is None:
            if len(tensors) != 1:
                raise KeyError(f"{name} holds {len(tensors)} tensors ({', '.join(tensors)}); name a key")
            return next(iter(tensors.values()))
        return tensors[key]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` (beside the repository root); skips the test where it is absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"../shared absent: expected real data and reference vectors at {SHARED_DIR}")
    return SHARED_DIR


@pytest.fixture(scope="session")
def reference(shared_dir: Path) -> Callable[[str], Reference]:
    """``reference("restormer")``: that network's reference vectors; skips where the folder is absent."""

    def get(name: str) -> Reference:
        folder = shared_dir / "reference" / name
        if not folder.is_dir():
            pytest.skip(f"../shared/reference absent: no reference vectors at {folder}")
        return Reference(folder)

    return get


# ----------------------------------------------------------------------------- Hydra runs
ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"

#: overrides that make a training run take seconds on CPU: tiny model, tiny patches, few samples
TINY_RUN = [
    "model=restormer_tiny",
    "model.backbone.dim=8",
    "trainer=cpu",
    "logger=none",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "data.patch_size=32",
    "data.batch_size=4",
    "data.samples_per_epoch=8",
    "data.test_source.max_side=96",
    "trainer.max_epochs=1",
]


def compose(config_name: str, overrides: list[str], output_dir: Path):
    """Compose ``conf/<config_name>.yaml`` as Hydra would, with the run folder set to ``output_dir``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from src.utils.run_dir import register_resolvers

    register_resolvers()  # as the entry modules do before Hydra composes
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose(config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir / "logs")
        del cfg.hydra
    return cfg


@pytest.fixture
def tiny_cfg(tmp_path: Path) -> Callable:
    """``tiny_cfg(*overrides, name="train")``: a composed tiny-run config writing under ``tmp_path``."""

    def make(*overrides: str, name: str = "train"):
        base = TINY_RUN if name == "train" else [o for o in TINY_RUN if o.startswith(("model", "trainer=", "logger"))]
        if any(o.startswith("model=") for o in overrides):  # another model: drop the tiny Restormer's sizes
            base = [o for o in base if not o.startswith("model")]
        return compose(name, [*base, *overrides], tmp_path)

    return make


def _single_threaded() -> None:
    """Tiny test models run fastest on one thread, and never stall when other processes share the cores."""
    import os

    import torch

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the subprocesses that tests start
    torch.set_num_threads(1)


_single_threaded()


def _machine_independent_precision() -> None:
    """``trainer.precision: auto`` would train in bf16 on CPUs with native bf16: tests must not depend on the
    machine they run on (tests of that choice set the variable themselves)."""
    import os

    from src.training.speed import CPU_BF16_ENV

    os.environ[CPU_BF16_ENV] = "0"  # inherited by the subprocesses that tests start


_machine_independent_precision()


def _vgg16_stand_in() -> None:
    """``model=transweather``'s objective reads torchvision's ImageNet VGG16 from the hub cache (``model=water_net``'s
    VGG19) and stops when it is absent (nothing is downloaded). The registry tests build every model config, so the
    session gets random-initialised stand-ins of the layers those terms use (VGG16 features 0-15, 7 MB; VGG19 0-35,
    80 MB) in its own TORCH_HOME,
    inherited by the subprocesses tests start. Tests of the refusal point the hub folder elsewhere themselves."""
    import atexit
    import os
    import shutil
    import tempfile

    import torch
    import torchvision

    from src.metrics.lpips import weights_file

    home = tempfile.mkdtemp(prefix="aioir-torch-home-")
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    os.environ["TORCH_HOME"] = home
    path = weights_file("vgg")
    path.parent.mkdir(parents=True, exist_ok=True)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    features = torchvision.models.vgg16(weights=None).features[:16]
    torch.random.set_rng_state(generator_state)
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    # model=water_net's objective: VGG19 up to relu5_4 (80 MB, random weights)
    from src.models.layers.vgg import torchvision_weights
    from src.training.losses_perceptual import VGG19_RELU5_4

    torch.manual_seed(0)
    deeper = torchvision.models.vgg19(weights=None).features[: VGG19_RELU5_4 + 1]
    torch.random.set_rng_state(generator_state)
    torch.save({f"features.{k}": v for k, v in deeper.state_dict().items()}, torchvision_weights("vgg19")[0])


_vgg16_stand_in()
