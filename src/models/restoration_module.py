"""The one LightningModule: a backbone (plus an optional head) trained and evaluated under a protocol.

Backbones and heads are plain ``nn.Module``s; this module owns composition, losses, metrics and
optimisation. The head is built here from the backbone's ``feature_info`` (Hydra hands it over as a
partial constructor) so any head fits any backbone.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from src.metrics.aggregate import PerImageMean
from src.metrics.protocols import MetricProtocol

log = logging.getLogger(__name__)

# Evaluation meters are torchmetrics objects that already reduce across ranks, so Lightning's advice to
# add sync_dist=True when logging their values would only average identical numbers again.
warnings.filterwarnings("ignore", message=r".*It is recommended to use `self\.log\(.*sync_dist=True")

#: image-quality quantities reported per benchmark, for the restored output and the degraded input
QUANTITIES = ("psnr", "ssim")


class RestorationModule(L.LightningModule):
    """Train/validate/test an all-in-one restorer.

    Args:
        backbone: the restoration network (``forward(lq, head=None) -> (pred, aux_losses)``).
        head: partial constructor ``head(feature_info=...)`` or ``None`` (``model/head=none``).
        loss: reconstruction loss returning ``(total, terms)``.
        optimizer: partial constructor taking the parameters (``_partial_: true`` in config).
        scheduler: partial constructor taking the optimizer, or ``None``.
        scheduler_interval: ``"epoch"`` (the official recipes) or ``"step"``.
        metrics: the metric protocol (``metrics=<name>``) used for validation and test.
        pretrained: optional weights file loaded into the network before training or evaluation.
        official: name of the official network whose released key names ``pretrained`` may use.
    """

    def __init__(
        self,
        backbone: nn.Module,
        loss: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        metrics: MetricProtocol,
        head: Callable[..., nn.Module] | None = None,
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "epoch",
        pretrained: str | None = None,
        official: str | None = None,
        clip_output: bool = True,
    ) -> None:
        super().__init__()
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(f"model.scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        self.net = backbone
        self.head = head(feature_info=backbone.feature_info) if head is not None else None
        self.loss = loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scheduler_interval = scheduler_interval
        self.protocol = metrics
        self.clip_output = clip_output
        self.meters = nn.ModuleDict()
        #: per-benchmark test results of the last ``trainer.test`` (input and restored), for metrics.json
        self.test_results: dict[str, dict[str, float]] = {}
        #: the composed run config (model/data/metrics), stored in checkpoints so eval can rebuild the run
        self.run_config: dict[str, Any] | None = None
        if pretrained:
            from src.models.pretrained import load_pretrained

            load_pretrained(self.net, self.head, pretrained, official=official)

    # ------------------------------------------------------------------ forward and training
    def forward(self, lq: Tensor) -> Tensor:
        pred, _ = self.net(lq, head=self.head)
        return pred

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        if getattr(self.loss, "zero_reference", False):
            # Zero-DCE-style losses judge the output against the input and the curve maps; no ground truth
            curves = self.net.curves(batch["lq"])
            pred, aux = self.net.apply_curves(batch["lq"], curves), {}
            total, terms = self.loss(pred, batch.get("gt"), lq=batch["lq"], curves=curves)
        else:
            pred, aux = self.net(batch["lq"], head=self.head)
            total, terms = self.loss(pred, batch["gt"])
        for name, value in aux.items():
            total = total + value
            terms[f"aux/{name}"] = value
        if not torch.isfinite(total):
            raise FloatingPointError(
                f"training loss is {total.item()} at step {self.global_step} (families {set(batch['family'])}); "
                "lower model.optimizer.lr or check the data"
            )
        bs = batch["lq"].shape[0]
        self.log("train/loss", total, prog_bar=True, batch_size=bs)
        for name, value in terms.items():
            self.log(f"train/{name}", value, batch_size=bs)
        return total

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=[p for p in self.parameters() if p.requires_grad])
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval}}

    # ------------------------------------------------------------------ evaluation
    def _benchmarks(self, stage: str) -> list[str]:
        dm = self.trainer.datamodule if self._trainer is not None else None
        names = getattr(dm, f"{stage}_benchmarks", None)
        if names is None:
            raise RuntimeError(f"the datamodule does not list its {stage} benchmarks ({stage}_benchmarks)")
        return list(names)

    def _reset_meters(self, stage: str) -> None:
        for benchmark in self._benchmarks(stage):
            for prefix in ("", "input_"):
                for q in QUANTITIES:
                    key = f"{stage}|{prefix}{q}|{benchmark}"
                    if key not in self.meters:
                        self.meters[key] = PerImageMean().to(self.device)
                    self.meters[key].reset()

    def on_validation_epoch_start(self) -> None:
        self._reset_meters("val")

    def on_test_epoch_start(self) -> None:
        self._reset_meters("test")

    def _eval_step(self, stage: str, batch: dict[str, Any]) -> None:
        lq, gt = batch["lq"], batch["gt"]
        pred = self(lq).float()
        if self.clip_output:
            pred = pred.clamp(0.0, 1.0)
        benchmark = batch["benchmark"][0]
        if any(b != benchmark for b in batch["benchmark"]):
            raise ValueError(f"an evaluation batch mixes benchmarks {set(batch['benchmark'])}")
        restored = self.protocol.per_image(pred, gt.float())
        degraded = self.protocol.per_image(lq.float(), gt.float())
        for q in QUANTITIES:
            self.meters[f"{stage}|{q}|{benchmark}"].update(restored[q])
            self.meters[f"{stage}|input_{q}|{benchmark}"].update(degraded[q])

    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step("val", batch)

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step("test", batch)

    def _summarise(self, stage: str) -> dict[str, dict[str, float]]:
        results: dict[str, dict[str, float]] = {}
        for benchmark in self._benchmarks(stage):
            row = {}
            for prefix in ("", "input_"):
                for q in QUANTITIES:
                    row[f"{prefix}{q}"] = float(self.meters[f"{stage}|{prefix}{q}|{benchmark}"].compute())
            results[benchmark] = row
        for benchmark, row in results.items():
            for q in QUANTITIES:
                self.log(f"{stage}/{q}/{benchmark}", row[q], add_dataloader_idx=False, sync_dist=False)
        for q in QUANTITIES:
            values = [row[q] for row in results.values() if math.isfinite(row[q])]
            if values:
                self.log(f"{stage}/{q}", sum(values) / len(values), add_dataloader_idx=False, prog_bar=q == "psnr")
        return results

    def on_validation_epoch_end(self) -> None:
        self._summarise("val")

    def on_test_epoch_end(self) -> None:
        self.test_results = self._summarise("test")

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.run_config is not None:
            checkpoint["aioir_config"] = self.run_config
