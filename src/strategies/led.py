"""LED (Jin et al., ICCV 2023): pre-training on virtual cameras, then few-shot fine-tuning for a real one.

Both run on a RepNR network (``model=led_repnr``: every convolution with one channel alignment per virtual
camera and a generalised one, :mod:`src.models.layers.repnr`).

* ``strategy=led_pretrain``: each sample carries the virtual camera whose noise it has (``camera``, from
  ``data=raw_synthetic``/``sid``/``eld``); the samples of each camera run through that camera's branch and the
  loss is their size-weighted mean (LED draws one camera per batch of one, which is the same thing). The main
  kernels and the camera branches train; the generalised branch does not. Evaluation first sets the generalised
  branch to the cameras' mean (LED's ``generalize``) and restores with it.
* ``strategy=led_finetune``: from a pre-trained RepNR network (``model.pretrained=``), with the parallel
  convolutions (``model.backbone.aux=true``, zero at the start): the generalised branch is set to the cameras'
  mean, then only its alignments train for ``align_steps`` steps, then only the parallel convolutions (at
  ``aux_lr``), everything else frozen, on the few real pairs (``data.fewshot_list``). The result folds into a
  plain U-Net (:func:`src.models.layers.repnr.deploy`; ``model=led`` loads it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from src.models.layers.repnr import RepNRConv2d, generalize, set_camera
from src.strategies.base import Strategy, batch_subset
from src.utils.errors import ConfigError

log = logging.getLogger(__name__)


def repnr_layers(net: nn.Module, what: str) -> list[RepNRConv2d]:
    """The RepNR convolutions of ``net``, or an error saying that ``what`` needs them."""
    layers = [m for m in net.modules() if isinstance(m, RepNRConv2d)]
    if not layers:
        raise ConfigError(f"{what} needs a RepNR network (per-camera convolutions): model=led_repnr, or "
                          "model.backbone.cameras=<virtual camera count> on model=led")
    return layers


def _cameras(batch: Mapping[str, Any]) -> Tensor:
    if "camera" not in batch:
        raise ConfigError("LED's training reads each sample's virtual camera (the 'camera' field of data=raw_synthetic"
                          ", sid or eld); this data has none")
    return torch.as_tensor(batch["camera"]).reshape(-1).long()


class LedPretrain(Strategy):
    """LED's pre-training: each virtual camera's samples through its own RepNR branch."""

    def __init__(self, generalize_eval: bool = True) -> None:
        super().__init__()
        self.generalize_eval = generalize_eval
        self.branches = 0

    def bind(self, module: Any) -> None:
        layers = repnr_layers(module.net, "strategy=led_pretrain")
        self.branches = len(layers[0].align_weights) - 1
        for layer in layers:  # LED's pretrain(): the generalised branch and any parallel convolution stay fixed
            for param in (layer.align_weights[-1], layer.align_biases[-1], layer.aux_weight, layer.aux_bias):
                if param is not None:
                    param.requires_grad_(False)

    def example_fields(self, batch: int) -> dict[str, Any]:
        return {"camera": torch.arange(batch) % max(self.branches, 1)}  # every camera's branch in turn

    def training_loss(self, module: Any, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        cameras = _cameras(batch)
        size = len(cameras)
        bad = sorted({int(c) for c in cameras if not -1 <= c < self.branches})
        if bad:
            raise ConfigError(f"samples of virtual camera(s) {bad} but the network has {self.branches} camera "
                              "branches: set model.backbone.cameras to data.cameras.count")
        total: Tensor | None = None
        terms: dict[str, Tensor] = {}
        all_aux: dict[str, Tensor] = {}
        listed = cameras.tolist()
        for camera in sorted(set(listed)):
            rows = [i for i, c in enumerate(listed) if c == camera]
            share = len(rows) / size
            subset = batch_subset(batch, rows, size)
            set_camera(module.net, camera)
            pred, aux, outputs, _ = module.network_outputs(subset)
            part, part_terms = module.loss.objective(pred, subset, outputs)
            total = part * share if total is None else total + part * share
            for name, value in part_terms.items():
                terms[name] = terms.get(name, 0) + value * share
            for name, value in aux.items():
                all_aux[name] = all_aux.get(name, 0) + value * share
        assert total is not None
        return module.complete_objective(total, terms, batch, all_aux, None)

    def predict(self, module: Any, batch: Mapping[str, Any]) -> Tensor | None:
        if self.generalize_eval:
            generalize(module.net)
        set_camera(module.net, -1)
        return module.predict(batch)


class LedFinetune(Strategy):
    """LED's few-shot fine-tuning: the generalised branch's alignments, then the parallel convolutions."""

    def __init__(self, align_steps: int = 1000, aux_lr: float = 1e-5, generalize_first: bool = True) -> None:
        super().__init__()
        if align_steps < 0:
            raise ValueError(f"model.strategy.align_steps must be >= 0, got {align_steps}")
        self.align_steps, self.aux_lr, self.generalize_first = int(align_steps), float(aux_lr), generalize_first
        self._align: list[nn.Parameter] = []
        self._aux: list[nn.Parameter] = []

    def bind(self, module: Any) -> None:
        layers = repnr_layers(module.net, "strategy=led_finetune")
        if any(layer.aux_weight is None for layer in layers):
            raise ConfigError("strategy=led_finetune trains LED's parallel convolutions: set model.backbone.aux=true "
                              "(and model.pretrained=<the pre-trained RepNR checkpoint>)")
        if self.generalize_first:
            generalize(module.net)
        self._align = [p for layer in layers for p in (layer.align_weights[-1], layer.align_biases[-1])]
        self._aux = [p for layer in layers for p in (layer.aux_weight, layer.aux_bias) if p is not None]
        chosen = {id(p) for p in self._align + self._aux}
        for param in module.parameters():
            param.requires_grad_(id(param) in chosen)
        set_camera(module.net, -1)
        log.info("LED fine-tuning: %d alignment tensors for %d steps, then %d parallel-convolution tensors (lr %g); "
                 "the rest frozen", len(self._align), self.align_steps, len(self._aux), self.aux_lr)

    def phase(self, step: int) -> str:
        """``align`` for the first ``align_steps`` steps, then ``aux``."""
        return "align" if step < self.align_steps else "aux"

    def parameter_groups(self, module: Any, trainable: Sequence[nn.Parameter]) -> list[dict[str, Any]] | None:
        return [{"params": self._align, "name": "led_align"},
                {"params": self._aux, "lr": self.aux_lr, "name": "led_aux"}]

    def training_loss(self, module: Any, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        set_camera(module.net, -1)
        total, terms = super().training_loss(module, batch)
        terms["led/aux_phase"] = torch.tensor(float(self.phase(int(module.global_step)) == "aux"))
        return total, terms

    def before_optimizer_step(self, module: Any, optimizer: torch.optim.Optimizer) -> None:
        idle = self._aux if self.phase(int(module.global_step)) == "align" else self._align
        for param in idle:  # Adam skips a parameter without a gradient: two optimisers in effect, as LED's
            param.grad = None

    def predict(self, module: Any, batch: Mapping[str, Any]) -> Tensor | None:
        set_camera(module.net, -1)
        return None
