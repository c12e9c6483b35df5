"""An official network rebuilt from our parts: a backbone plus a head, called like the official module.

Official PromptIR or AdaIR is one module whose ``forward(x)`` returns the restored image; ours is a backbone
that takes the head as an argument and also returns auxiliary losses. The wrapper restores the official
call so that reference checks and users of ``from_official`` need not know the split. Its state-dict keys are
``net.*`` (backbone) and ``head.*``, the same names the LightningModule uses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from torch import Tensor, nn


class OfficialWrapper(nn.Module):
    """``net`` run with ``head``; ``forward(x)`` returns the restored image only (auxiliary losses dropped)."""

    def __init__(self, net: nn.Module, head: nn.Module | None = None) -> None:
        super().__init__()
        self.net = net
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        pred, _ = self.net(x, head=self.head)
        return pred


def rename_keys(
    state_dict: Mapping[str, Tensor], rename: Callable[[str, Tensor], tuple[str, Tensor]]
) -> dict[str, Tensor]:
    """Apply ``rename(key, value) -> (our key, value)`` to every entry; two keys landing on one name is an error."""
    out: dict[str, Tensor] = {}
    source: dict[str, str] = {}
    for key, value in state_dict.items():
        new, new_value = rename(key, value)
        if new in out:
            raise ValueError(f"official keys {source[new]!r} and {key!r} both map to {new!r}")
        out[new], source[new] = new_value, key
    return out


#: ``(pattern, replacement)`` pairs for :func:`re.sub`, applied in order (a replacement may be a function)
Rules = Sequence[tuple[str, "str | Callable[[re.Match[str]], str]"]]


def apply_rules(key: str, rules: Rules) -> str:
    """``key`` after every rule in order: the way converters with many small renames state them."""
    for pattern, replacement in rules:
        key = re.sub(pattern, replacement, key)
    return key


def rename_by_rules(state_dict: Mapping[str, Tensor], rules: Rules, prefix: str = "net.") -> dict[str, Tensor]:
    """Every key through :func:`apply_rules`, then ``prefix``; a key no rule matches keeps its name (prefixed),
    so that a strict load names it."""
    return rename_keys(state_dict, lambda key, value: (prefix + apply_rules(key, rules), value))


def highest_index(keys: Iterable[str], pattern: re.Pattern[str]) -> dict[str, int]:
    """Per value of ``pattern``'s first group, the highest integer its second group takes among ``keys``: where a
    sequential's last entry is a different layer (a group's closing convolution) and the converter must tell it."""
    highest: dict[str, int] = {}
    for key in keys:
        if m := pattern.match(key):
            highest[m[1]] = max(highest.get(m[1], -1), int(m[2]))
    return highest
