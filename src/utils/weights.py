"""Safe loading of weight files (``model.pretrained=PATH``, CLIP's, a strategy's earlier stage): tensors only,
never code. At the bottom of the suite, so that every layer reads weights the one way.

Every pickle-based file goes through ``torch.load(..., map_location="cpu", weights_only=True)``; a file that
needs arbitrary classes to unpickle is refused, with no fallback to ``weights_only=False``. Safetensors files
are read with the safetensors library. Prefixes are stripped only when the caller names them, because some
official checkpoints (KAIR's DnCNN: ``model.0.weight``) legitimately start with what looks like a wrapper.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor

from src.utils.errors import MissingFileError, UserError

#: keys under which training frameworks store the weights, in the order we look for them:
#: Lightning (``state_dict``), BasicSR/KAIR (``params_ema`` preferred over ``params``), others (``model``),
#: DeepDeblur's generator (``G``; its adversarial runs also hold a discriminator under ``D``).
WRAPPER_KEYS: tuple[str, ...] = ("state_dict", "params_ema", "params", "model", "G")


class UnusableCheckpointError(UserError, ValueError):
    """A weights file that cannot be used: missing, empty, truncated, not a checkpoint; the message names it."""


class UnsafeCheckpointError(UnusableCheckpointError):
    """The file is a full pickle that imports code when loaded, not a weights-only checkpoint."""


def check_weights_file(path: str | Path, what: str = "weights file", torch_zip: bool = False) -> int:
    """Cheap checks before any loading (no file is read whole); returns the size in bytes.

    ``torch_zip``: the file must be in ``torch.save``'s zip format, as every Lightning checkpoint is; a truncated
    one lacks the zip directory at its end, so this finds an interrupted copy in microseconds.
    """
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{what}={path}: no such file")
    if not path.is_file():
        raise UnusableCheckpointError(f"{what}={path} is a folder, not a file")
    size = path.stat().st_size
    if size == 0:
        raise UnusableCheckpointError(f"{what}={path} is empty (0 bytes): probably an interrupted copy or write")
    if torch_zip and not zipfile.is_zipfile(path):
        raise UnusableCheckpointError(
            f"{what}={path} ({size:,} bytes) is not a complete checkpoint (no zip directory at its end): "
            "probably truncated by an interrupted copy or download"
        )
    return size


def load_weights_file(path: str | Path, what: str = "model.pretrained") -> object:
    """The content of a ``.ckpt``/``.pth``/``.pt`` (weights only) or ``.safetensors`` file, on CPU.

    Every way a file can be unusable (absent, a folder, zero bytes, truncated, another format, a pickle that
    would import code) raises :class:`UnusableCheckpointError` naming ``what`` and the file, never a bare
    ``EOFError`` or a zip-reader message.
    """
    path = Path(path)
    size = check_weights_file(path, what)
    try:
        if path.suffix == ".safetensors":
            return load_file(path, device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        detail = f" (it references {found[1]})" if found else ""
        raise UnsafeCheckpointError(
            f"{path} is not a weights-only checkpoint: unpickling it would import code{detail}. "
            "Refusing to load it; re-save its state_dict (tensors only) from a trusted environment."
        ) from None
    except (OSError, EOFError, RuntimeError, ValueError, SafetensorError) as err:
        reason = str(err).split(". ", 1)[0] or type(err).__name__
        raise UnusableCheckpointError(
            f"{what}={path} ({size:,} bytes) cannot be read: {reason}. Is it truncated (an interrupted copy or "
            "download) or in another format?"
        ) from None


def _unwrap(obj: object, path: Path, key: str | None) -> Mapping[str, object]:
    """Descend through wrapper dicts (a named ``key`` first, then :data:`WRAPPER_KEYS`) to the tensors."""
    while isinstance(obj, Mapping):
        if key is not None:
            if key not in obj:
                raise KeyError(f"{path}: no {key!r} entry; top-level keys: {', '.join(map(str, obj))}")
            obj, key = obj[key], None
            continue
        if all(isinstance(v, Tensor) for v in obj.values()):
            return obj
        wrapper = next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if wrapper is None:
            others = [str(k) for k, v in obj.items() if not isinstance(v, Tensor)]
            raise UnusableCheckpointError(
                f"{path}: no state dict found; entries that are not tensors: {', '.join(others[:20])}"
            )
        obj = obj[wrapper]
    raise UnusableCheckpointError(f"{path}: expected a dict of tensors, found {type(obj).__name__}")


def load_state_dict_file(path: str | Path, key: str | None = None) -> dict[str, Tensor]:
    """The state dict stored in ``path`` (``.ckpt``, ``.pth``/``.pt``, ``.safetensors``), on CPU.

    Wrappers such as Lightning's ``{"state_dict": ...}`` or BasicSR's ``{"params": ...}`` are removed;
    pass ``key`` to pick one explicitly (e.g. ``"params"`` when a file also holds ``"params_ema"``).
    Raises :class:`UnsafeCheckpointError` for files that are not weights-only.
    """
    path = Path(path)
    return dict(_unwrap(load_weights_file(path), path, key))


def strip_prefixes(state_dict: Mapping[str, Tensor], prefixes: Sequence[str]) -> dict[str, Tensor]:
    """Remove each of ``prefixes``, in order, from the keys that start with it (e.g. ``("net.", "module.")``).

    Keys without a prefix are kept as they are; two keys that become equal are an error, not an overwrite.
    """
    out = dict(state_dict)
    for prefix in prefixes:
        stripped: dict[str, Tensor] = {}
        for k, v in out.items():
            new = k[len(prefix) :] if k.startswith(prefix) else k
            if new in stripped:
                raise ValueError(f"stripping {prefix!r} makes two keys equal: {new!r}")
            stripped[new] = v
        out = stripped
    return out
