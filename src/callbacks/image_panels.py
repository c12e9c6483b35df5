"""See what the numbers mean: degraded | restored | target panels of a few fixed images per benchmark.

At the end of each validation (every ``every_n_epochs``), the first ``num_images`` images of every validation
benchmark are shown side by side, so the same images can be compared across epochs and runs. Each panel is
labelled (the benchmark and image above, "degraded" and "restored" with their PSNR under the run's metric
protocol, "target") and written as a PNG in the run folder whatever the logger; a W&B logger also gets them.
Only global rank zero draws them; the extra forward passes touch a handful of images.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from torch import Tensor

from src.utils.atomic import write_atomic
from src.utils.imresize import resize_batch

log = logging.getLogger(__name__)


def _fit(image: Tensor, max_side: int | None) -> Tensor:
    """Shrink a C x H x W image (area averaging) so its longer side is at most ``max_side``."""
    if max_side is None or max(image.shape[-2:]) <= max_side:
        return image
    scale = max_side / max(image.shape[-2:])
    size = [max(1, round(s * scale)) for s in image.shape[-2:]]
    return F.interpolate(image[None], size=size, mode="area")[0]


def as_rgb(image: Tensor) -> Tensor:
    """A C x H x W image in [0, 1] to look at as RGB: gray repeated, packed RAW (4 planes R, G1, B, G2) shown
    as R, the greens' mean and B under a 1/2.2 gamma (linear sensor values look black otherwise), the first three
    channels of a wider input."""
    if image.shape[0] == 1:
        return image.expand(3, -1, -1)
    if image.shape[0] == 4:
        return torch.stack([image[0], (image[1] + image[3]) / 2, image[2]]).clamp(0.0, 1.0) ** (1 / 2.2)
    return image[:3]  # an input with derived channels after the image (Water-Net's 12): the image


#: height of each text band (Pillow's default bitmap font is about 11 pixels high)
LABEL_HEIGHT = 14


def make_panel(lq: Tensor, pred: Tensor, gt: Tensor, gap: int = 4, max_side: int | None = None,
               title: str | None = None, labels: tuple[str, str, str] | None = None) -> np.ndarray:
    """Three C x H x W images in [0, 1] side by side, white gaps between them: H x (3W + 2 gap) x 3 uint8.

    ``title`` adds a text band above, ``labels`` one under each image (Pillow's default font, no file needed).
    """
    parts = [_fit(as_rgb(t.detach().float().cpu().clamp(0.0, 1.0)), max_side) for t in (lq, pred, gt)]
    spacer = torch.ones(3, parts[0].shape[1], gap)
    row = torch.cat([parts[0], spacer, parts[1], spacer, parts[2]], dim=2)
    panel = (row.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    if title is None and labels is None:
        return panel
    from PIL import Image, ImageDraw

    height, width = panel.shape[:2]
    top = LABEL_HEIGHT if title is not None else 0
    bottom = LABEL_HEIGHT if labels is not None else 0
    canvas = Image.new("RGB", (width, height + top + bottom), "white")
    canvas.paste(Image.fromarray(panel), (0, top))
    draw = ImageDraw.Draw(canvas)
    if title is not None:
        draw.text((2, 1), title, fill="black")
    for i, label in enumerate(labels or ()):
        draw.text((i * (parts[0].shape[2] + gap) + 2, top + height + 1), label, fill="black")
    return np.asarray(canvas)


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name) or "image"


class ImagePanels(Callback):
    """Log degraded | restored | target panels for the first ``num_images`` images of each validation benchmark.

    Args:
        dirpath: folder of the PNG files (default: ``<default_root_dir>/panels``).
        num_images: images per benchmark (the first ones of its loader, so the same ones every epoch).
        every_n_epochs: draw at every n-th validation.
        max_side: each image's longer side is shrunk to this (``None``: full size).
        key: W&B key prefix; the benchmark name is appended.
    """

    def __init__(
        self,
        dirpath: str | None = None,
        num_images: int = 2,
        every_n_epochs: int = 1,
        max_side: int | None = 512,
        key: str = "val/panels",
    ) -> None:
        super().__init__()
        if num_images < 1 or every_n_epochs < 1:
            raise ValueError(f"num_images ({num_images}) and every_n_epochs ({every_n_epochs}) must be >= 1")
        self.dirpath = dirpath
        self.num_images = num_images
        self.every_n_epochs = every_n_epochs
        self.max_side = max_side
        self.key = key
        self._active = False
        self._panels: dict[str, list[tuple[str, np.ndarray]]] = {}

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._panels = {}
        self._active = (
            trainer.is_global_zero
            and not trainer.sanity_checking
            and trainer.current_epoch % self.every_n_epochs == 0
        )

    @torch.no_grad()
    def on_validation_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not self._active:
            return
        benchmark = batch["benchmark"][0]
        panels = self._panels.setdefault(benchmark, [])
        need = self.num_images - len(panels)
        if need <= 0:
            return
        lq, gt = batch["lq"][:need], batch["gt"][:need]
        if hasattr(pl_module, "predict"):  # a conditioned network takes its condition from the batch
            pred = pl_module.predict({**batch, "lq": lq, "family": list(batch["family"])[:need]})
        else:
            pred = pl_module(lq)
        pred = pred.float().clamp(0.0, 1.0)
        lq = resize_batch(lq.float(), gt.shape[-2:])  # a super-resolution input: shown and scored at the target's size
        names = batch.get("name") or [f"{batch_idx:05d}_{i}" for i in range(len(lq))]
        protocol = getattr(pl_module, "protocol", None)
        scores = [protocol.per_image(x.float(), gt.float())["psnr"] if protocol is not None else None
                  for x in (lq, pred)]
        for i in range(len(lq)):
            psnr = ["" if s is None else f"  {s[i].item():.2f} dB" for s in scores]
            labels = (f"degraded{psnr[0]}", f"restored{psnr[1]}", "target")
            panel = make_panel(lq[i], pred[i], gt[i], max_side=self.max_side, title=f"{benchmark} / {names[i]}",
                               labels=labels)
            panels.append((str(names[i]), panel))

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._active or not self._panels:
            return
        wandb_loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        for benchmark, panels in self._panels.items():
            self._write(trainer, benchmark, panels)
            for logger in wandb_loggers:
                logger.log_image(
                    key=f"{self.key}/{benchmark}", images=[p for _, p in panels],
                    caption=[f"{name}: degraded | restored | target" for name, _ in panels],
                    step=trainer.global_step,
                )
        self._panels = {}

    def _write(self, trainer: L.Trainer, benchmark: str, panels: list[tuple[str, np.ndarray]]) -> None:
        from PIL import Image

        folder = Path(self.dirpath or Path(trainer.default_root_dir) / "panels") / _safe(benchmark)
        for index, (name, panel) in enumerate(panels):
            file = folder / f"epoch{trainer.current_epoch:03d}_step{trainer.global_step:07d}_{index}_{_safe(name)}.png"
            write_atomic(file, lambda handle, panel=panel: Image.fromarray(panel).save(handle, format="PNG"))
        log.debug("wrote %d panels of %s to %s", len(panels), benchmark, folder)
