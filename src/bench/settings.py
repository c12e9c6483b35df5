"""The ways of running one network that a benchmark compares: the official baseline, ours, and one switch at a time."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from src.training import speed
from src.training.speed import SpeedSettings

BASELINE, OURS = "baseline", "ours"
#: the official implementation itself, run the baseline's way (``--official-code``)
OFFICIAL = "official"
#: the ablation of the baseline's DDP unused-parameter search (the suite's DDP runs without it)
NO_UNUSED_SEARCH = "+ddp_no_unused_search"
#: each switch alone on top of the baseline (``--ablation``), so every default of ``speed.resolve`` has a number;
#: where the baseline runs in DDP with unused-parameter search, one more: the same DDP without the search
ABLATIONS: dict[str, dict[str, Any]] = {
    "compile": {"compile": True},
    "channels_last": {"channels_last": True},
    "bf16": {"precision": speed.BF16_MIXED},
    "fused_adamw": {"fused_adamw": True},
}
#: what ``--ablation`` may name: the switches and the baseline's DDP without unused-parameter search
ABLATION_NAMES = (*ABLATIONS, NO_UNUSED_SEARCH.removeprefix("+"))
#: keys ``--ours`` accepts (the arguments of ``speed.resolve``)
OURS_KEYS = ("compile", "channels_last", "precision", "fused_adamw", "compile_mode")


@dataclass(frozen=True)
class NamedSetting:
    """One way of running the network: speed switches plus the DDP wrapper (``None``: no DDP)."""

    name: str
    speed: SpeedSettings
    #: ``find_unused_parameters`` of a one-process DDP wrapper, or ``None`` for no wrapper
    ddp_find_unused: bool | None = None
    #: the official implementation's network instead of ours (same weights)
    official: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "speed": self.speed.as_dict(), "ddp_find_unused": self.ddp_find_unused,
                "official": self.official}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> NamedSetting:
        return cls(values["name"], SpeedSettings(**values["speed"]), values["ddp_find_unused"],
                   values.get("official", False))

    def describe(self, training: bool = True) -> str:
        """Short text for tables: ``fp32 eager contiguous AdamW`` and so on (no optimiser for inference)."""
        s = self.speed
        dtype = s.autocast_dtype if training else s.inference_autocast_dtype
        parts = [
            "bf16" if dtype is not None else "fp32",
            f"compile({s.compile_mode})" if s.compile and s.compile_mode else ("compile" if s.compile else "eager"),
            "channels-last" if s.channels_last else "contiguous",
        ]
        if training:
            parts.append("fused AdamW" if s.fused_adamw else "AdamW")
        if self.ddp_find_unused is not None:
            parts.append("DDP find-unused" if self.ddp_find_unused else "DDP")
        return " ".join(["official code:", *parts] if self.official else parts)


def parse_value(text: str) -> Any:
    """``true``/``false`` -> bool, ``auto``/``null`` kept as the strings speed.resolve takes, else the text."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none"):
        return None
    return text.strip()


def parse_ours(text: str) -> dict[str, Any]:
    """``"compile=true,channels_last=false"`` -> ``{"compile": True, "channels_last": False}``."""
    result: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--ours expects key=value pairs separated by commas, got {item!r}")
        if key not in OURS_KEYS:
            raise ValueError(f"--ours: unknown switch {key!r}; expected one of {', '.join(OURS_KEYS)}")
        result[key] = parse_value(value)
    return result


def baseline_ddp(choice: str, device: str) -> bool:
    """Whether the baseline runs in a DDP wrapper: the official train.py uses DDP with unused-parameter search
    even on one GPU; it never runs on CPU, so ``auto`` applies it on CUDA only."""
    if choice not in ("auto", "on", "off"):
        raise ValueError(f"--baseline-ddp must be auto, on or off, got {choice!r}")
    return choice == "on" or (choice == "auto" and device == "cuda")


def ours_speed(device: str, ours: dict[str, Any], run_steps: int | None = None) -> SpeedSettings:
    """``speed.resolve`` with the ``--ours`` overrides, for a run of ``run_steps`` steps (``None``: unbounded):
    an automatic compile is dropped where training would drop it (:func:`speed.compile_pays`)."""
    settings = speed.resolve(device, **ours)
    automatic = ours.get("compile", speed.AUTO) in (speed.AUTO, None)
    steps = float("inf") if run_steps is None else run_steps
    if settings.compile and automatic and not speed.compile_pays(steps, speed.compile_min_steps(speed.AUTO, device)):
        settings = dataclasses.replace(settings, compile=False)
    return settings


def named_settings(
    device: str, ours: dict[str, Any], ablation: bool = False, ddp_choice: str = "auto",
    switches: tuple[str, ...] = (), run_steps: int | None = None, official: bool = False,
) -> list[NamedSetting]:
    """Baseline, ours (:func:`ours_speed`), with ``official`` the official network run the baseline's way, and
    with ``ablation`` each switch alone (only ``switches`` where some are named)."""
    unknown = sorted(set(switches) - set(ABLATION_NAMES))
    if unknown:
        raise ValueError(f"unknown ablation switch(es) {unknown}; expected some of {', '.join(ABLATION_NAMES)}")
    wanted = set(switches or ABLATION_NAMES)
    base = SpeedSettings.baseline()
    settings = [
        NamedSetting(BASELINE, base, True if baseline_ddp(ddp_choice, device) else None),
        NamedSetting(OURS, ours_speed(device, ours, run_steps)),
    ]
    if official:
        settings.insert(0, NamedSetting(OFFICIAL, base, settings[0].ddp_find_unused, official=True))
    if ablation:
        ddp = settings[0].ddp_find_unused
        settings += [NamedSetting(f"+{name}", dataclasses.replace(base, **c), ddp)
                     for name, c in ABLATIONS.items() if name in wanted]
        if ddp and NO_UNUSED_SEARCH.removeprefix("+") in wanted:
            settings.append(NamedSetting(NO_UNUSED_SEARCH, base, False))
    return settings
