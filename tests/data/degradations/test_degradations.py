"""The contract every :class:`Degradation` must keep, checked for every subclass the package defines.

Subclasses are discovered by importing every module of the package, so a new family is covered
without editing this file; a subclass whose constructor needs arguments must be added to
``NEEDS_ARGS`` (the test says so).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import pkgutil
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

import src.data.degradations as package
from src.data.degradations import (
    AtmosphericHaze,
    BicubicDownsample,
    Degradation,
    GaussianNoise,
    JPEGCompression,
    LowLight,
    Sequence,
    SyntheticRain,
    rng_for,
)

ROOT = Path(__file__).resolve().parents[3]


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def discover() -> list[type[Degradation]]:
    """Every concrete Degradation defined inside the package."""
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    classes = {
        c
        for c in _subclasses(Degradation)
        if not inspect.isabstract(c) and c.__module__.startswith(package.__name__ + ".")
    }
    return sorted(classes, key=lambda c: c.__qualname__)


#: constructors for classes without a no-argument default
NEEDS_ARGS: dict[type, Callable[[], Degradation]] = {
    Sequence: lambda: Sequence([AtmosphericHaze(), GaussianNoise(quantize=True)], family="haze+noise"),
}

#: non-default settings that take another code path, tested on top of every class's default
VARIANTS: list[Callable[[], Degradation]] = [
    lambda: GaussianNoise(quantize=True),
    lambda: GaussianNoise(sigmas=None, sigma_range=(0, 50)),
    lambda: SyntheticRain(blend="add", blur=1),
    lambda: AtmosphericHaze(depth="random"),
    lambda: BicubicDownsample(scale=2, upsample=True),
]


def build(cls: type[Degradation]) -> Degradation:
    if cls in NEEDS_ARGS:
        return NEEDS_ARGS[cls]()
    try:
        return cls()
    except TypeError as err:
        pytest.fail(f"{cls.__qualname__}() needs arguments: add it to NEEDS_ARGS ({err})")


CASES = [pytest.param(lambda c=c: build(c), id=c.__qualname__) for c in discover()]
CASES += [pytest.param(v, id=f"variant{i}-{v().__class__.__qualname__}") for i, v in enumerate(VARIANTS)]


@pytest.fixture(params=CASES)
def op(request: pytest.FixtureRequest) -> Degradation:
    return request.param()


def test_discovery_finds_every_family() -> None:
    families = {build(c).family for c in discover()}
    assert {"noise", "rain", "haze", "blur", "lowlight", "jpeg"} <= families


def test_same_key_same_pixels(op: Degradation, photo: np.ndarray) -> None:
    first = op(photo, rng_for(0, 1, 2))
    second = op(photo, rng_for(0, 1, 2))
    np.testing.assert_array_equal(first, second)


def test_different_keys_differ(op: Degradation, photo: np.ndarray) -> None:
    if op.deterministic:
        pytest.skip(f"{op.family} draws nothing: every key gives the same pixels")
    # Several keys: an op with few discrete settings (a JPEG quality) may repeat one for two keys.
    outputs = {op(photo, rng_for(0, 1, k)).tobytes() for k in range(4)}
    assert len(outputs) >= 3


@pytest.mark.parametrize("shape", [(64, 64, 3), (37, 53, 3), (37, 53, 1)], ids=str)
def test_contract_dtype_range_shape(op: Degradation, photo: np.ndarray, shape: tuple[int, ...]) -> None:
    h, w, c = shape
    s = op.scale  # a resizing family takes sides that are multiples of its scale
    image = np.ascontiguousarray(photo[: h // s * s, : w // s * s, :c])
    out = op(image, rng_for(3, h, w, c))
    assert out.dtype == np.float32
    assert out.shape == (image.shape[0] // s, image.shape[1] // s, c)
    assert np.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_changes_the_image(op: Degradation, photo: np.ndarray) -> None:
    if op.scale > 1:
        pytest.skip(f"{op.family} changes the size; its upsample=True variant is checked here")
    out = op(photo, rng_for(5))
    assert float(np.abs(out - photo).mean()) > 0.004


def test_input_not_modified(op: Degradation, photo: np.ndarray) -> None:
    image = photo.copy()
    op(image, rng_for(6))
    np.testing.assert_array_equal(image, photo)


def test_params_are_plain_numbers(op: Degradation) -> None:
    params = op.sample(rng_for(7))
    assert params
    for key, value in params.items():
        assert isinstance(key, str)
        assert type(value) in (int, float), f"{key}={value!r} is {type(value)}, not a plain number"


def test_no_global_random_state(op: Degradation, photo: np.ndarray) -> None:
    np.random.seed(123)
    random.seed(123)
    torch.manual_seed(123)
    before = (np.random.get_state()[1].copy(), random.getstate(), torch.get_rng_state().clone())
    op(photo, rng_for(8))
    np.testing.assert_array_equal(np.random.get_state()[1], before[0])
    assert random.getstate() == before[1]
    assert torch.equal(torch.get_rng_state(), before[2])


_HASH_SCRIPT = """
import hashlib, sys
import numpy as np
from skimage import data
from src.data.degradations import rng_for
from test_degradations import all_ops
image = np.ascontiguousarray(data.astronaut()[60:156, 180:276], dtype=np.float32) / np.float32(255.0)
for name, op in all_ops():
    print(name, hashlib.sha256(op(image, rng_for(11, 3)).tobytes()).hexdigest())
"""


def all_ops() -> list[tuple[str, Degradation]]:
    return [(c.__qualname__, build(c)) for c in discover()]


def test_same_pixels_in_another_process(photo: np.ndarray) -> None:
    """A fresh interpreter with another hash seed must reproduce this one's pixels (worker processes)."""
    path = os.pathsep.join([str(Path(__file__).parent), str(ROOT)])
    env = {**os.environ, "PYTHONHASHSEED": "4242", "PYTHONPATH": path}
    result = subprocess.run(
        [sys.executable, "-c", _HASH_SCRIPT], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    theirs = dict(line.split() for line in result.stdout.strip().splitlines())
    ours = {name: hashlib.sha256(op(photo, rng_for(11, 3)).tobytes()).hexdigest() for name, op in all_ops()}
    assert theirs == ours


BAD_CONFIGS = [
    pytest.param(lambda: GaussianNoise(sigmas=None, sigma_range=(50, 0)), id="noise-reversed-range"),
    pytest.param(lambda: GaussianNoise(sigmas=None), id="noise-no-sigma"),
    pytest.param(lambda: GaussianNoise(sigmas=(-5,)), id="noise-negative-sigma"),
    pytest.param(lambda: SyntheticRain(density_range=(0.01, 0.002)), id="rain-reversed-range"),
    pytest.param(lambda: SyntheticRain(blend="multiply"), id="rain-unknown-blend"),
    pytest.param(lambda: AtmosphericHaze(depth="midas"), id="haze-unknown-depth"),
    pytest.param(lambda: AtmosphericHaze(depth_range=(1.0, 0.4)), id="haze-reversed-depth-range"),
    pytest.param(lambda: AtmosphericHaze(depth_range=(-0.2, 1.0)), id="haze-negative-depth"),
    pytest.param(lambda: LowLight(exposure_range=(0.4,)), id="lowlight-not-a-pair"),
    pytest.param(lambda: JPEGCompression(quality_range=(10, 101)), id="jpeg-quality-over-100"),
    pytest.param(lambda: Sequence([], family="empty"), id="sequence-empty"),
]


@pytest.mark.parametrize("make", BAD_CONFIGS)
def test_bad_configs_fail_at_construction(make: Callable[[], Degradation]) -> None:
    with pytest.raises(ValueError):
        make()
