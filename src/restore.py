"""Restore your own images: ``python -m src.restore ckpt_path=best.ckpt input=photos/ output=restored/``.

Any size (large images are tiled, see ``conf/inference``), JPEG/PNG/TIFF/BMP/WebP, grayscale, alpha and
16-bit kept (:mod:`src.inference.image_file`). The input is never overwritten: the run is refused when the
output folder is the input file's folder or the input folder, or holds the input; nothing is written
outside ``output``. Unreadable files are skipped with a warning that names them, and listed at the end.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig

from src.inference.config import InferenceConfig
from src.inference.image_file import IMAGE_SUFFIXES, read_user_image, write_user_image
from src.inference.tiling import infer
from src.run.from_checkpoint import load_run, overridden_groups
from src.utils.errors import ConfigError, exit_on_user_error
from src.utils.instantiate import build, build_model
from src.utils.run_dir import register_resolvers

log = logging.getLogger(__name__)


class UnsafeOutputError(ConfigError):
    """Writing to ``output`` could overwrite an input image."""


@dataclass
class RestoreReport:
    """What a run did: files written, files skipped (with the reason) and non-image files ignored."""

    output: Path
    restored: list[Path] = field(default_factory=list)
    skipped: dict[Path, str] = field(default_factory=dict)
    ignored: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _scan(folder: Path, exclude: Path, recursive: bool) -> tuple[list[Path], list[Path]]:
    """Image files and other files under ``folder`` (sorted), leaving out everything under ``exclude``."""
    images, others = [], []
    for root, dirs, files in os.walk(folder):  # does not follow symbolic links to folders
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if recursive and not _within((root_path / d).resolve(), exclude))
        for name in sorted(files):
            path = root_path / name
            (images if path.suffix.lower() in IMAGE_SUFFIXES else others).append(path)
    return images, others


def plan(
    source: Path, output: Path, fmt: str | None = None, recursive: bool = True
) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """Pairs (input file, output file) and the ignored files; raises :class:`UnsafeOutputError` when unsafe."""
    if not source.exists():
        raise FileNotFoundError(f"input={source}: no such file or folder")
    src, out = source.resolve(), output.resolve()
    if out.exists() and not out.is_dir():
        raise UnsafeOutputError(f"output={output} is a file; give a folder to write the restored images into")
    home = src.parent if src.is_file() else src
    if out in (src, home):
        raise UnsafeOutputError(f"output={output} is the input's own folder: restoring would overwrite the input")
    if _within(src, out):
        raise UnsafeOutputError(f"output={output} contains the input {source}: choose a folder outside it")
    if src.is_file():
        images, ignored = [source], []
    else:
        images, ignored = _scan(source, out, recursive)
    suffix = None if fmt is None else "." + fmt.lower().lstrip(".")
    if suffix is not None and suffix not in IMAGE_SUFFIXES:
        raise ConfigError(f"format={fmt!r} is not one of {', '.join(s.lstrip('.') for s in IMAGE_SUFFIXES)}")
    inputs = {p.resolve() for p in images}
    pairs: list[tuple[Path, Path]] = []
    claimed: dict[Path, Path] = {}
    for path in images:
        relative = Path(path.name) if src.is_file() else path.relative_to(source)
        target = out / relative.with_suffix(suffix or relative.suffix)
        if not _within(target.parent.resolve(), out) or target.resolve() in inputs:
            raise UnsafeOutputError(f"writing {target} could overwrite an input or leave output={output}")
        if target in claimed:
            raise ConfigError(f"{claimed[target]} and {path} would both be written to {target}; leave format unset")
        claimed[target] = path
        pairs.append((path, target))
    return pairs, ignored


def load_restorer(cfg: DictConfig, overridden: Iterable[str] = ()) -> Any:
    """The model of ``ckpt_path`` (with its stored model config) or of ``model.pretrained``, in eval mode."""
    state = None
    if cfg.get("ckpt_path"):
        cfg, state = load_run(cfg, overridden)
    elif not cfg.model.get("pretrained"):
        raise ConfigError("set ckpt_path=... (a checkpoint of src.train) or model.pretrained=... (weights)")
    model = build_model(cfg)
    if state is not None:
        model.load_state_dict(state, strict=True)
    return model.eval()


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def restore_file(model: Any, options: InferenceConfig, device: torch.device, source: Path, target: Path) -> None:
    """Read, restore and write one image (``ValueError`` when it cannot be read)."""
    image = read_user_image(source)
    x = torch.from_numpy(image.rgb).permute(2, 0, 1)[None].to(device)
    multiple = int(getattr(model.net, "multiple", 1))
    with torch.inference_mode():
        y = infer(model, x, multiple, options).float().clamp(0.0, 1.0)
    write_user_image(target, y[0].permute(1, 2, 0).cpu().numpy(), image)


def _progress() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]restoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        TextColumn("{task.description}"),
    )


def summarise(report: RestoreReport) -> str:
    lines = [f"restored {len(report.restored)} image(s) into {report.output} in {report.seconds:.1f} s"]
    if report.skipped:
        lines.append(f"skipped {len(report.skipped)} file(s):")
        lines += [f"  {path}: {reason}" for path, reason in report.skipped.items()]
    if report.ignored:
        lines.append(f"ignored {len(report.ignored)} file(s) that are not images ({', '.join(IMAGE_SUFFIXES)})")
    return "\n".join(lines)


def restore(cfg: DictConfig, overridden: Iterable[str] = ()) -> RestoreReport:
    """Restore ``cfg.input`` (a file or a folder) into ``cfg.output``; returns what was done."""
    if not cfg.get("input") or not cfg.get("output"):
        raise ConfigError("set input=PATH (an image or a folder) and output=DIR (a new or other folder)")
    pairs, ignored = plan(Path(cfg.input), Path(cfg.output), cfg.get("format"), cfg.get("recursive", True))
    options: InferenceConfig = build(cfg.inference, "inference")
    device = pick_device(cfg.get("device", "auto"))
    model = load_restorer(cfg, overridden).to(device)
    report = RestoreReport(output=Path(cfg.output).resolve(), ignored=ignored)
    Path(cfg.output).mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with _progress() as progress:
        task = progress.add_task("", total=len(pairs))
        for source, target in pairs:
            progress.update(task, description=source.name)
            try:
                restore_file(model, options, device, source, target)
                report.restored.append(target)
            except (ValueError, OSError) as err:
                log.warning("skipped %s: %s", source, err)
                report.skipped[source] = str(err)
            except torch.OutOfMemoryError as err:
                raise ConfigError(
                    f"out of memory restoring {source}: tile it (inference=tiled, or a lower inference.max_pixels)"
                ) from err
            progress.advance(task)
    report.seconds = time.monotonic() - start
    print(summarise(report))
    return report


register_resolvers()  # ${unique_dir:...} of conf/hydra: Hydra resolves the run folder before main runs


@hydra.main(version_base="1.3", config_path="../conf", config_name="restore")
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
