"""``model.pretrained=PATH``: start from our own checkpoints or from official released weights.

The file is read without unpickling code (:func:`src.utils.weights.load_state_dict_file`). Keys are
tried as ours first (``net.*``/``head.*`` as the LightningModule saves them, or a bare backbone state
dict); if they do not fit and the model names its official counterpart (``model.official``), they go
through that network's official key mapping. Either way the load is strict: every key is used and every
tensor filled, or the error lists what does not fit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from src.models.official import converter_module, load_strict
from src.utils.errors import ConfigError
from src.utils.weights import load_state_dict_file, strip_prefixes

log = logging.getLogger(__name__)
#: where a checkpoint of ours keeps a training strategy's tensors (``RestorationModule.strategy``)
STRATEGY_PREFIX = "strategy."
#: a strategy's tensors that are part of what the network computes (RAM++'s feature fusion): never dropped
NETWORK_STRATEGY_PREFIX = "strategy.fusion."


def droppable_strategy_keys(state: Mapping[str, Any], source: str) -> list[str]:
    """The strategy tensors of ``state`` that a model built without the strategy may leave out (a classifier, a
    mask token); tensors the network computes with (RAM++'s fusion) stop the load, naming what to do."""
    keys = [k for k in state if k.startswith(STRATEGY_PREFIX)]
    fused = [k for k in keys if k.startswith(NETWORK_STRATEGY_PREFIX)]
    if fused:
        raise ConfigError(f"{source}: the network of this checkpoint includes its strategy's feature fusion "
                          f"({len(fused)} tensors under {NETWORK_STRATEGY_PREFIX}, strategy=ram_plus_finetune): "
                          "load it with its own strategy (do not replace model= or model.strategy on the command "
                          "line), or it would restore without the features it was trained with")
    return keys


class _Parts(nn.Module):
    """The trainable parts of a restorer under the names the LightningModule gives them."""

    def __init__(self, net: nn.Module, head: nn.Module | None) -> None:
        super().__init__()
        self.net = net
        if head is not None:
            self.head = head


def _as_parts(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Keys under ``net.``/``head.`` as they are; a bare backbone state dict is put under ``net.``.

    Nothing is dropped: a key that fits neither part makes the strict load fail and is listed.
    """
    if any(k.startswith(("net.", "head.")) for k in state):
        return dict(state)
    return {f"net.{k}": v for k, v in state.items()}


def keep_fresh(
    model: nn.Module, state: Mapping[str, Tensor], prefixes: Sequence[str]
) -> tuple[dict[str, Tensor], list[str]]:
    """``state`` where, under ``prefixes`` only, keys the model lacks are dropped and keys it lacks or cannot
    take (another shape) are left at the model's own values; returns the state and the keys left fresh.

    What the official EDSR and RCAN loaders do for their up-samplers, so that x3 and x4 fine-tune from x2
    weights; a prefix with ``*`` is a pattern (``net.*.aux_*``: LED's fine-tuning convolutions, new in every
    layer). Everything outside the prefixes stays strict."""
    if not prefixes:
        return dict(state), []
    own = model.state_dict()

    def lax(key: str) -> bool:
        return any(fnmatchcase(key, p) if "*" in p else key.startswith(p) for p in prefixes)

    kept = {k: v for k, v in state.items()
            if not lax(k) or (k in own and tuple(own[k].shape) == tuple(v.shape))}
    fresh = sorted(k for k in own if lax(k) and k not in kept)
    kept.update({k: own[k] for k in fresh})
    return kept, fresh


def load_pretrained(net: nn.Module, head: nn.Module | None, path: str | Path, official: str | None = None,
                    lax_prefixes: Sequence[str] = ()) -> str:
    """Fill ``net`` (and ``head``) from ``path``; returns ``"ours"`` or ``"official <name>"``. Keys under
    ``lax_prefixes`` (``net.upsample.``) that do not fit are left at their initialisation (:func:`keep_fresh`)."""
    state = strip_prefixes(load_state_dict_file(path), ["module."])
    strategy_keys = droppable_strategy_keys(state, f"model.pretrained={path}")
    if strategy_keys:  # a pre-training run's checkpoint: its strategy's tensors are not part of the network
        state = {k: v for k, v in state.items() if not k.startswith(STRATEGY_PREFIX)}
        log.info("model.pretrained=%s: %d tensor(s) of the training strategy that wrote it (a classifier, a mask "
                 "token) left out: they are not part of the network", path, len(strategy_keys))
    parts = _Parts(net, head)

    def load(candidate: Mapping[str, Tensor]) -> None:
        relaxed, fresh = keep_fresh(parts, _as_parts(candidate), lax_prefixes)
        load_strict(parts, relaxed, source=f"model.pretrained={path}")
        if fresh:
            log.info("model.pretrained=%s: %d tensor(s) under %s left at their initialisation (not in the file "
                     "or of another shape): %s", path, len(fresh), ", ".join(lax_prefixes), ", ".join(fresh))

    try:
        load(state)
        log.info("loaded pretrained weights (our format) from %s", path)
        return "ours"
    except ValueError as ours_error:
        if official is None:
            raise
        bare = strip_prefixes(state, ["net."])
        try:
            load(converter_module(official).convert(bare))
        except ValueError as official_error:
            raise ValueError(
                f"model.pretrained={path} fits neither our key names nor official {official!r} keys.\n"
                f"As ours: {ours_error}\nAs official {official}: {official_error}"
            ) from None
        log.info("loaded official %s weights from %s", official, path)
        return f"official {official}"
