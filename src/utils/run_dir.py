"""Run folders that are never shared: ``${unique_dir:...}`` claims a folder with one atomic ``mkdir``.

Two runs started in the same second used to compose the same ``logs/<task>/runs/<time>`` and write into one
folder (one config survived, logs interleaved, ``last-v1.ckpt``). The resolver creates the folder itself and,
when another run got there first, takes ``<time>_2``, ``<time>_3``, ... instead. It is registered with
``use_cache=True``: Hydra copies a config's resolver cache into every job of a sweep, so all jobs of one
multirun resolve the same claimed sweep folder (each then has its own ``${hydra.job.num}`` sub-folder). A folder
given explicitly (``hydra.run.dir=...``, as Lightning's DDP workers are started) replaces the interpolation and
is used as it is.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

RESOLVER = "unique_dir"
NAME_RESOLVER = "run_name"


def claim_unique_dir(path: str) -> str:
    """Create ``path`` (or ``path_2``, ``path_3``, ... where taken) and return the folder this call created.

    A folder that cannot be created ends the program with one line (exit code 2): Hydra resolves this before
    any entry point runs and would otherwise print the error inside a traceback of its own.
    """
    base = Path(path)
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
        for n in itertools.count(1):
            candidate = base if n == 1 else base.with_name(f"{base.name}_{n}")
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            return str(candidate)
    except OSError as err:
        print(f"error: cannot create the run folder {base}: {err.strerror or err} (set paths.log_dir to a folder "
              "you can write, or hydra.run.dir)", file=sys.stderr)
        raise SystemExit(2) from None
    raise AssertionError("unreachable")


def run_name(task: str, overrides: str) -> str:
    """``train model=promptir,data=5deg``: the task and the command-line overrides that define the run (the
    logger's run name, so runs can be told apart in W&B's list); the task alone without overrides."""
    return f"{task} {overrides}" if overrides else task


def network_patch(lr_patch: int, scale: int, upsampled: bool) -> int:
    """``${network_patch:lr,scale,upsampled}``: the network's input side in super-resolution training (the
    low-resolution patch, or the high-resolution one where the input is up-sampled to it)."""
    return int(lr_patch) * int(scale) if upsampled else int(lr_patch)


def train_families(*, _root_: Any) -> list[str]:
    """``${train_families:}``: the families the data setting trains on, in its order: ``data.families`` where it
    lists them, else the composed ``data.degradations`` (synthetic settings), else the ``family`` of each
    training set (``data=paired``'s ``data.train``, defaulting to ``data.family``), less ``data.holdout``."""
    data = _root_.get("data") or {}
    families = data.get("families")
    if families is None:
        families = list((data.get("degradations") or {}).keys())
    if not families and data.get("train"):
        sets = [s.get("family", data.get("family")) for s in data.get("train") if hasattr(s, "get")]
        families = list(dict.fromkeys(str(f) for f in sets if f))
    holdout = data.get("holdout") or []
    holdout = [holdout] if isinstance(holdout, str) else list(holdout)
    chosen = [str(f) for f in families if f not in holdout]
    if not chosen:
        raise ValueError("${train_families:} found no training families in data (data.families or "
                         "data.degradations): set the key that reads it (e.g. model.strategy.families=[a,b])")
    return chosen


def register_resolvers() -> None:
    """Make ``${unique_dir:...}``, ``${run_name:...}`` and ``${network_patch:...}`` known to OmegaConf; call
    before Hydra composes (the entry modules do)."""
    if not OmegaConf.has_resolver("train_families"):
        OmegaConf.register_new_resolver("train_families", train_families)
    if not OmegaConf.has_resolver("network_patch"):
        OmegaConf.register_new_resolver("network_patch", network_patch)
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, claim_unique_dir, use_cache=True)
    if not OmegaConf.has_resolver(NAME_RESOLVER):
        OmegaConf.register_new_resolver(NAME_RESOLVER, run_name)
