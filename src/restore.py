"""Restore your own images: ``python -m src.restore ckpt_path=best.ckpt input=photos/ output=restored/``.

Any size (large images are tiled, see ``conf/inference``), JPEG/PNG/TIFF/BMP/WebP, grayscale, alpha and
16-bit kept (:mod:`src.inference.image_file`). The input is never overwritten: the run is refused when the
output folder is the input file's folder or the input folder, or holds the input; nothing is written
outside ``output``. Unreadable files are skipped with a warning that names them, and listed at the end.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig

from src.data.io import IMAGE_SUFFIXES
from src.inference.config import InferenceConfig
from src.inference.image_file import read_user_image, write_user_image
from src.inference.memory_budget import auto_max_pixels
from src.inference.tiling import infer
from src.run.assemble import build, load_weights
from src.run.from_checkpoint import overridden_groups
from src.utils.conf import CONF_DIR
from src.utils.errors import ConfigError, WriteError, exit_on_user_error
from src.utils.run_dir import register_resolvers

log = logging.getLogger(__name__)


class UnsafeOutputError(ConfigError):
    """Writing to ``output`` could overwrite an input image."""


@dataclass
class RestoreReport:
    """What a run did: files written, files skipped (with the reason), notes on files restored, non-images."""

    output: Path
    restored: list[Path] = field(default_factory=list)
    skipped: dict[Path, str] = field(default_factory=dict)
    notes: dict[Path, str] = field(default_factory=dict)
    ignored: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    #: with routing (``route.grids``): each restored input -> the index of the group network that restored it,
    #: and the groups' families
    groups: dict[Path, int] = field(default_factory=dict)
    group_families: list[list[str]] = field(default_factory=list)


@dataclass
class Plan:
    """(input, output) pairs to restore, inputs that cannot be (with the reason), and files that are not images."""

    pairs: list[tuple[Path, Path]] = field(default_factory=list)
    unusable: dict[Path, str] = field(default_factory=dict)
    ignored: list[Path] = field(default_factory=list)


#: files named in the summary before "... and N more"
SHOWN = 10


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _broken_link(path: Path) -> str | None:
    """Why a symbolic link cannot be read (a loop, or a target that does not exist), or ``None``."""
    if not path.is_symlink() or path.exists():
        return None
    try:
        path.resolve(strict=True)
    except RuntimeError:  # Python 3.11-3.12 report a loop so; 3.13 raises OSError(ELOOP)
        return "symbolic link loop"
    except OSError as err:
        return "symbolic link loop" if err.errno == errno.ELOOP else "symbolic link to a file that does not exist"
    return None


def _scan(folder: Path, exclude: Path, recursive: bool) -> Plan:
    """Image files (as pairs without targets yet), unreadable links and other files under ``folder`` (sorted)."""
    found = Plan()
    for root, dirs, files in os.walk(folder):  # does not follow symbolic links to folders
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if recursive and not _within((root_path / d).resolve(), exclude))
        for name in sorted(files):
            path = root_path / name
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                found.ignored.append(path)
            elif (broken := _broken_link(path)) is not None:
                found.unusable[path] = broken
            else:
                found.pairs.append((path, path))
    return found


def plan(source: Path, output: Path, fmt: str | None = None, recursive: bool = True) -> Plan:
    """What to restore where; raises :class:`UnsafeOutputError` when writing could touch an input."""
    if not source.exists():
        broken = _broken_link(source)
        raise FileNotFoundError(f"input={source}: {broken or 'no such file or folder'}")
    src, out = source.resolve(), output.resolve()
    if out.exists() and not out.is_dir():
        raise UnsafeOutputError(f"output={output} is a file; give a folder to write the restored images into")
    home = src.parent if src.is_file() else src
    if out in (src, home):
        raise UnsafeOutputError(f"output={output} is the input's own folder: restoring would overwrite the input")
    if _within(src, out):
        raise UnsafeOutputError(f"output={output} contains the input {source}: choose a folder outside it")
    found = Plan(pairs=[(source, source)]) if src.is_file() else _scan(source, out, recursive)
    suffix = None if fmt is None else "." + fmt.lower().lstrip(".")
    if suffix is not None and suffix not in IMAGE_SUFFIXES:
        raise ConfigError(f"format={fmt!r} is not one of {', '.join(s.lstrip('.') for s in IMAGE_SUFFIXES)}")
    inputs = {p.resolve() for p, _ in found.pairs}
    pairs: list[tuple[Path, Path]] = []
    claimed: dict[Path, Path] = {}
    for path, _ in found.pairs:
        relative = Path(path.name) if src.is_file() else path.relative_to(source)
        target = out / relative.with_suffix(suffix or relative.suffix)
        if not _within(target.parent.resolve(), out) or target.resolve() in inputs:
            raise UnsafeOutputError(f"writing {target} could overwrite an input or leave output={output}")
        if target in claimed:
            raise ConfigError(f"{claimed[target]} and {path} would both be written to {target}; leave format unset")
        claimed[target] = path
        pairs.append((path, target))
    found.pairs = pairs
    return found


def _check_writable(folder: Path) -> None:
    """Create ``folder`` and write a file there, so a read-only output fails before the model is loaded."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise WriteError(f"output={folder} cannot be written to: {err.strerror or err}") from None


def load_restorer(cfg: DictConfig, overridden: Iterable[str] = ()) -> Any:
    """The model of ``ckpt_path`` (with its stored model config) or of ``model.pretrained``, in eval mode."""
    return load_weights(cfg, overridden)[1].eval()


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Restorer:
    """The model as one function of the image: a conditioned network (InstructIR) gets the instruction's
    condition, repeated for every image of a call (tiles come in batches)."""

    def __init__(self, model: Any, condition: torch.Tensor | None = None) -> None:
        self.model, self.net, self.condition = model, model.net, condition

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.condition is None:
            return self.model(x)
        return self.model(x, condition=self.condition.to(x.device).expand(x.shape[0], -1))


def conditioned(model: Any, instruction: str | None) -> Restorer:
    """``model`` with the condition of ``instruction`` where its network takes one; an instruction for a
    network that takes none, or none for one that needs it, is a ConfigError."""
    dim = getattr(model.net, "condition_dim", 0)
    if not dim:
        if instruction:
            raise ConfigError(f"instruction={instruction!r}: {type(model.net).__name__} takes no instruction")
        return Restorer(model)
    if not instruction:
        raise ConfigError(f"{type(model.net).__name__} restores by instruction: set instruction=\"remove the rain\" "
                          "(or another family it knows)")
    try:
        with torch.no_grad():
            condition = model.instruction.for_instruction(str(instruction))
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return Restorer(model, condition.detach())


class RoutedRestorers:
    """GRIDS's routing of your images (``route.grids``): the router's network reads each image's features, and the
    network of the group they are most likely under restores it (one memory budget per network)."""

    def __init__(self, cfg: DictConfig, overridden: Iterable[str], device: torch.device) -> None:
        from src.inference.routing import read_grids, router_checkpoint
        from src.run.from_checkpoint import with_checkpoint

        options = cfg.route
        checkpoints = [str(c) for c in options.checkpoints or []]
        self.router, record = read_grids(str(options.grids), checkpoints)
        reader = router_checkpoint(record, options.get("router_ckpt"), str(options.grids))
        self.analysis = load_restorer(with_checkpoint(cfg, reader), overridden).to(device)
        loaded: dict[str, Restorer] = {}  # a checkpoint behind several groups is loaded once
        for path in checkpoints:
            if path not in loaded:
                model = load_restorer(with_checkpoint(cfg, path), overridden).to(device)
                loaded[path] = conditioned(model, cfg.get("instruction"))
        self.restorers = [loaded[path] for path in checkpoints]
        self.budgets = [MemoryBudget(r, device) for r in self.restorers]
        self.device, self.max_side = device, options.get("max_side")
        #: each restored input -> its group
        self.chosen: dict[Path, int] = {}

    def pick(self, x: torch.Tensor) -> int:
        """The group of ``x`` (``1 x 3 x H x W``)."""
        from src.inference.routing import image_group

        return image_group(self.router, self.analysis, x[0], self.device, self.max_side)


def restore_file(model: Any, options: InferenceConfig, device: torch.device, source: Path, target: Path,
                 budget: Callable[[InferenceConfig, int, int], InferenceConfig] = lambda o, h, w: o,
                 routed: RoutedRestorers | None = None) -> str | None:
    """Read, restore and write one image (``ValueError`` when it cannot be read); returns a note, if any.

    ``budget`` resolves ``max_pixels: auto`` when the image is large enough to need it. With ``routed``, the
    image's group picks the network (``model`` unused), recorded in ``routed.chosen``.
    """
    image = read_user_image(source)
    x = torch.from_numpy(image.rgb).permute(2, 0, 1)[None].to(device)
    group = None
    if routed is not None:
        group = routed.pick(x)
        model, budget = routed.restorers[group], routed.budgets[group]
    derive = getattr(model.net, "derived_inputs", None)
    if derive is not None:  # made from the whole image, before any tiling (Water-Net's derived inputs)
        x = derive(x[0])[None]
    multiple = model.net.multiple
    options = budget(options, *x.shape[-2:])
    with torch.inference_mode():
        y = infer(model, x, multiple, options).float().clamp(0.0, 1.0)
    write_user_image(target, y[0].permute(1, 2, 0).cpu().numpy(), image)
    if routed is not None:
        routed.chosen[source] = group
    if image.frames > 1:
        return f"{image.frames} frames (animated or multi-page): restored the first frame only"
    return None


#: what PyTorch's CPU allocator says when the machine has no memory left for a tensor
CPU_OUT_OF_MEMORY = ("DefaultCPUAllocator: can't allocate memory", "not enough memory", "std::bad_alloc")


def is_out_of_memory(err: BaseException) -> bool:
    """CUDA's out-of-memory error, or the CPU allocator's (a plain RuntimeError naming the failed allocation)."""
    return isinstance(err, torch.OutOfMemoryError | MemoryError) or (
        isinstance(err, RuntimeError) and any(text in str(err) for text in CPU_OUT_OF_MEMORY)
    )


class MemoryBudget:
    """Resolves ``inference.max_pixels: auto`` once, the first time an image is large enough to need it."""

    def __init__(self, model: Any, device: torch.device) -> None:
        self.model, self.device = model, device
        self.max_pixels: int | None = None

    def __call__(self, options: InferenceConfig, height: int, width: int) -> InferenceConfig:
        if not options.needs_budget(height, width):
            return options
        if self.max_pixels is None:
            multiple = self.model.net.multiple
            self.max_pixels = auto_max_pixels(self.model, self.device, multiple)
        return replace(options, max_pixels=self.max_pixels)


def _progress() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]restoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        TextColumn("{task.description}"),
    )


def _listed(paths: list[Path]) -> str:
    names = ", ".join(str(p) for p in paths[:SHOWN])
    return names + (f" ... and {len(paths) - SHOWN} more" if len(paths) > SHOWN else "")


def summarise(report: RestoreReport) -> str:
    lines = [f"restored {len(report.restored)} image(s) into {report.output} in {report.seconds:.1f} s"]
    if report.group_families:
        counts = [sum(1 for g in report.groups.values() if g == k) for k in range(len(report.group_families))]
        lines.append("routed: " + ", ".join(f"{n} to group {k} ({' '.join(families)})" for k, (n, families)
                                             in enumerate(zip(counts, report.group_families))))
    if report.notes:
        lines.append(f"notes on {len(report.notes)} file(s):")
        lines += [f"  {path}: {note}" for path, note in report.notes.items()]
    if report.skipped:
        lines.append(f"skipped {len(report.skipped)} file(s):")
        lines += [f"  {path}: {reason}" for path, reason in report.skipped.items()]
    if report.ignored:
        lines.append(f"ignored {len(report.ignored)} file(s) that are not images ({', '.join(IMAGE_SUFFIXES)}): "
                     f"{_listed(report.ignored)}")
    return "\n".join(lines)


def restore(cfg: DictConfig, overridden: Iterable[str] = ()) -> RestoreReport:
    """Restore ``cfg.input`` (a file or a folder) into ``cfg.output``; returns what was done."""
    if not cfg.get("input") or not cfg.get("output"):
        raise ConfigError("set input=PATH (an image or a folder) and output=DIR (a new or other folder)")
    todo = plan(Path(cfg.input), Path(cfg.output), cfg.get("format"), cfg.get("recursive", True))
    options: InferenceConfig = build(cfg.inference, "inference")
    _check_writable(Path(cfg.output))
    device = pick_device(cfg.get("device", "auto"))
    routed = RoutedRestorers(cfg, overridden, device) if (cfg.get("route") or {}).get("grids") else None
    if routed is None:
        restorer = conditioned(load_restorer(cfg, overridden).to(device), cfg.get("instruction"))
        budget = MemoryBudget(restorer, device)
    else:  # each file's group picks its network and budget
        restorer, budget = routed.restorers[0], routed.budgets[0]
    report = RestoreReport(output=Path(cfg.output).resolve(), ignored=todo.ignored, skipped=dict(todo.unusable))
    for path, reason in todo.unusable.items():
        log.warning("skipped %s: %s", path, reason)
    start = time.monotonic()
    with _progress() as progress:
        task = progress.add_task("", total=len(todo.pairs))
        for source, target in todo.pairs:
            progress.update(task, description=source.name)
            try:
                note = restore_file(restorer, options, device, source, target, budget, routed)
            except WriteError:
                raise  # a full disk or a read-only folder fails every later file too
            except Exception as err:
                if is_out_of_memory(err):
                    raise ConfigError(
                        f"out of memory restoring {source} on {device}: tile it (inference=tiled, or a lower "
                        "inference.max_pixels)"
                    ) from err
                if not isinstance(err, ValueError | OSError):
                    raise
                log.warning("skipped %s: %s", source, err)
                report.skipped[source] = str(err)
            else:
                report.restored.append(target)
                if note is not None:
                    log.warning("%s: %s", source, note)
                    report.notes[source] = note
            progress.advance(task)
            done, elapsed = len(report.restored) + len(report.skipped) - len(todo.unusable), time.monotonic() - start
            # a plain line per image for logs and pipes, where the bar draws nothing
            log.info("%d of %d images, %.0f s so far, about %.0f s to go", done, len(todo.pairs), elapsed,
                     elapsed / max(done, 1) * (len(todo.pairs) - done))
    report.seconds = time.monotonic() - start
    if routed is not None:
        report.groups, report.group_families = dict(routed.chosen), routed.router.groups
        write_routing(report, Path(cfg.paths.output_dir) / ROUTING_NAME)
    print(summarise(report))
    return report


#: the routing record of a routed restore, in the run folder (never in ``output``)
ROUTING_NAME = "routing.csv"


def write_routing(report: RestoreReport, path: Path) -> None:
    """``image,group,families``: which network restored each input."""
    import csv
    import io

    from src.utils.atomic import write_text_atomic

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["image", "group", "families"])
    writer.writerows([str(source), group, " ".join(report.group_families[group])]
                     for source, group in report.groups.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text.getvalue())


register_resolvers()  # ${unique_dir:...} of conf/hydra: Hydra resolves the run folder before main runs


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="restore")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    # released weights can hold denormal floats (Zero-DCE's do), which slow CPU convolutions ~50x;
    # flushing them to zero changes outputs by < 1e-30
    torch.set_flush_denormal(True)
    report = restore(cfg, overridden_groups())
    if report.skipped and not report.restored:
        sys.exit(1)


if __name__ == "__main__":
    main()
