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
