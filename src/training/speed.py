"""How the network runs, kept apart from what it computes: compile, memory format, precision, fused optimiser.

Every switch accepts ``"auto"`` (the fastest choice we consider safe on the device), ``True`` or ``False``.
``SpeedSettings.baseline()`` is the way the official all-in-one codes run: fp32, eager, contiguous tensors,
plain AdamW. The benchmark (``make bench``) measures both and reports the ratio.

In a run the switches are the ``speed`` config group (``conf/speed``; ``RestorationModule(speed=...)``
resolves them once the Trainer's device is known) and precision is ``trainer.precision`` (``"auto"``
resolved by :func:`resolve_precision` before the Trainer is built, as Lightning does not accept it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

AUTO = "auto"
#: Lightning precision strings we resolve ``"auto"`` to
FP32, BF16_MIXED = "32-true", "bf16-mixed"
#: keys of the ``speed`` config group (precision lives in ``trainer.precision``)
OPTIONS = ("compile", "compile_mode", "channels_last", "fused_adamw", "compile_min_steps")
#: ``compile: auto`` compiles a training run only when it plans at least this many optimiser steps, per device
#: type. On an H200 compiling paper-size PromptIR's training step took about 150 s (the time of ~800 eager steps
#: at batch 8, 128x128; experiments/speed/README.md), so a gain of 20% pays it back after ~4,000 steps. On a
#: 2-core Xeon compiling took 1-4 minutes and trained 1.12x (PromptIR-tiny, 4.4 s a step: paid back after ~500
#: steps) to 1.39x (Restormer-tiny) faster: 2,000 steps pays it back with room to spare.
COMPILE_MIN_STEPS: dict[str, int] = {"cuda": 5000, "cpu": 2000}
#: environment variable that overrides the detection of native bf16 on the CPU (``1``/``0``): for a machine
#: whose detection is wrong, and for tests, which must not depend on the machine they run on
CPU_BF16_ENV = "AIOIR_CPU_BF16"


@dataclass(frozen=True)
class SpeedSettings:
    """Resolved speed switches (no ``"auto"`` left)."""

    compile: bool = False
    #: ``torch.compile`` mode (``None``: the default, ``"max-autotune"`` ...)
    compile_mode: str | None = None
    channels_last: bool = False
    #: Lightning precision string: ``"32-true"`` or ``"bf16-mixed"``
    precision: str = FP32
    fused_adamw: bool = False
    #: whether the precision's autocast also covers inference (validation, test, restore); off where bf16 only
    #: pays in training (a CPU: bf16 inference ran 0.78x as fast as fp32 there)
    autocast_inference: bool = True

    @classmethod
    def baseline(cls) -> SpeedSettings:
        """The official codes' way: fp32, eager, contiguous, plain AdamW."""
        return cls()

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The training autocast dtype (``None``: fp32)."""
        return torch.bfloat16 if self.precision.startswith("bf16") else None

    @property
    def inference_autocast_dtype(self) -> torch.dtype | None:
        """The autocast dtype of inference: the training one unless it is for training only."""
        return self.autocast_dtype if self.autocast_inference else None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _device_type(device: torch.device | str) -> str:
    return torch.device(device).type


def bf16_supported(device: torch.device | str) -> bool:
    """bf16 autocast is worth it on CUDA GPUs with native bf16 (compute capability 8.0+, Ampere and later).

    Not ``torch.cuda.is_bf16_supported()``: by default it also says yes where bf16 is only emulated (V100,
    T4), which is slower than fp32. The capability is that of ``device`` itself (``cuda:1``), not the current.
    """
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return False
    if torch.version.hip:  # every ROCm GPU torch supports has bf16
        return True
    return torch.cuda.get_device_capability(device)[0] >= 8


def cpu_bf16_native() -> bool:
    """Whether this CPU computes bf16 natively (AMX-BF16 or AVX512-BF16), where bf16 autocast trains faster; on
    other CPUs bf16 is emulated and slower than fp32. ``AIOIR_CPU_BF16=1``/``0`` overrides the detection."""
    override = os.environ.get(CPU_BF16_ENV)
    if override is not None and override.strip() != "":
        if override.strip() not in ("0", "1"):
            raise ValueError(f"{CPU_BF16_ENV}={override!r}: expected 1 (native bf16) or 0 (none)")
        return override.strip() == "1"
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(check() for check in checks if check is not None)


def cpu_compiler_available() -> bool:
    """Whether inductor can build CPU kernels here: it needs a C++ compiler (``$CXX``, g++, c++ or clang++)."""
    names = [os.environ.get("CXX", ""), "g++", "c++", "clang++"]
    return any(shutil.which(name) for name in names if name)


def compile_min_steps(value: Any, device: torch.device | str) -> int | None:
    """``speed.compile_min_steps`` for ``device``: ``"auto"`` is :data:`COMPILE_MIN_STEPS` of its type."""
    if value == AUTO:
        return COMPILE_MIN_STEPS.get(_device_type(device), COMPILE_MIN_STEPS["cpu"])
    return value


def _switch(value: Any, key: str, auto: bool) -> bool:
    if value is None or value == AUTO:
        return auto
    if isinstance(value, bool):
        return value
    raise ValueError(f"speed.{key} must be 'auto', true or false, got {value!r}")


def _compile_mode(value: Any) -> str | None:
    if value is None:
        return None
    try:
        from torch._inductor import list_mode_options

        modes = sorted(list_mode_options())
    except (ImportError, AttributeError):  # pragma: no cover - older torch: let torch.compile judge
        return str(value)
    if value not in modes:
        raise ValueError(f"speed.compile_mode must be null or one of {modes}, got {value!r}")
    return str(value)


def resolve_precision(value: Any, device: torch.device | str, training: bool = True) -> str:
    """``"auto"`` becomes bf16-mixed on GPUs that support it, and for training on CPUs with native bf16
    (:func:`bf16_for_training_only`); 32-true elsewhere. Other values pass through."""
    if value is None or value == AUTO:
        if bf16_supported(device) or (training and bf16_for_training_only(device)):
            return BF16_MIXED
        return FP32
    return str(value)


def bf16_for_training_only(device: torch.device | str) -> bool:
    """Whether ``precision: auto`` on ``device`` means bf16 for training steps only: on a CPU with native bf16,
    bf16 autocast trained 1.23x (PromptIR-tiny) to 2.07x (Restormer) faster than fp32, but inferred 0.78x."""
    return _device_type(device) == "cpu" and cpu_bf16_native()


def accelerator_device(accelerator: Any) -> str:
    """The device type a Trainer with ``accelerator`` runs on: ``"cuda"`` or ``"cpu"`` (whose choices apply).

    ``gpu``/``cuda`` is CUDA; ``auto`` (or unset) is CUDA when one is available, as Lightning picks it;
    anything else (``cpu``, ``mps``, an accelerator object) gets the CPU choices.
    """
    name = "auto" if accelerator is None else str(accelerator).lower()
    if name in ("gpu", "cuda") or (name == "auto" and torch.cuda.is_available()):
        return "cuda"
    return "cpu"


def check_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``speed`` mapping with every key known and every value valid (``"auto"`` kept), else a ValueError.

    Done when the module is built, so a typo fails at once rather than when the Trainer starts.
    """
    options = dict(options or {})
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown speed option(s) {unknown}; known: {list(OPTIONS)}")
    for key in ("compile", "channels_last", "fused_adamw"):
        if key in options:
            _switch(options[key], key, False)
    _compile_mode(options.get("compile_mode"))
    min_steps = options.get("compile_min_steps")
    if min_steps is not None and min_steps != AUTO and (
            isinstance(min_steps, bool) or not isinstance(min_steps, int) or min_steps < 0):
        raise ValueError(f"speed.compile_min_steps must be 'auto', a whole number >= 0 or null, got {min_steps!r}")
    return options


def compile_pays(planned_steps: float, min_steps: int | None) -> bool:
    """Whether ``compile: auto`` compiles a run of ``planned_steps`` optimiser steps (unbounded runs do)."""
    return min_steps is None or planned_steps >= min_steps


def resolve(
    device: torch.device | str,
    compile: Any = AUTO,
    channels_last: Any = AUTO,
    precision: Any = AUTO,
    fused_adamw: Any = AUTO,
    compile_mode: str | None = None,
) -> SpeedSettings:
    """Turn ``"auto"`` into the fastest safe choice for ``device`` (whether an automatic compile is kept for a
    run of a given length is the Lightning module's business at train start, see :func:`compile_pays`).

    On CUDA: compile, bf16 where supported and fused AdamW. Channels-last stays off everywhere: on an H200 it
    trained paper-size PromptIR 0.72x as fast and inferred 0.95x (attention and layer norms permute it back).
    On CPU (measured on a 2-core Xeon, experiments/speed/README.md, each switch alone): bf16 for training
    steps only where the CPU has it natively (AMX/AVX512-BF16; emulated elsewhere and slower): it trains
    1.23-2.07x faster but infers 0.78x; compile where a C++ compiler is found (1.12-1.39x faster training, but
    1-4 minutes of start-up: kept only for long runs, see :data:`COMPILE_MIN_STEPS`); channels-last stays off
    (trains 1.09x faster but infers 0.97x); fused AdamW is a CUDA kernel.
    """
    device_type = _device_type(device)
    cuda = device_type == "cuda"
    auto_precision = precision is None or precision == AUTO
    return SpeedSettings(
        compile=_switch(compile, "compile", cuda or (device_type == "cpu" and cpu_compiler_available())),
        compile_mode=_compile_mode(compile_mode),
        channels_last=_switch(channels_last, "channels_last", False),
        precision=resolve_precision(precision, device),
        fused_adamw=_switch(fused_adamw, "fused_adamw", cuda),
        autocast_inference=not (auto_precision and bf16_for_training_only(device)),
    )


def prepare_network(net: nn.Module, settings: SpeedSettings) -> nn.Module:
    """Apply memory format and compilation in place (``nn.Module.compile`` keeps the state-dict keys).

    Sub-modules that ``net`` calls (a head passed to its forward) are traced into the compiled graph; give
    them :func:`prepare_network` with ``compile=False`` for the memory format only.
    """
    if settings.channels_last:
        net.to(memory_format=torch.channels_last)
    if settings.compile:
        net.compile(mode=settings.compile_mode)
    return net


def prepare_input(x: torch.Tensor, settings: SpeedSettings) -> torch.Tensor:
    """Images in the network's memory format (a no-op for the baseline)."""
    if settings.channels_last and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


@contextlib.contextmanager
def eager(settings: SpeedSettings) -> Iterator[None]:
    """Run compiled modules eagerly inside (evaluation on images of many sizes would recompile per size)."""
    if not settings.compile:
        yield
        return
    with torch.compiler.set_stance("force_eager"):
        yield


@contextlib.contextmanager
def autocast(settings: SpeedSettings, device: torch.device | str, inference: bool = False) -> Iterator[None]:
    """bf16 autocast when the settings ask for it (for ``inference``: when they also ask it there); nothing
    otherwise."""
    dtype = settings.inference_autocast_dtype if inference else settings.autocast_dtype
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=_device_type(device), dtype=dtype):
        yield
