"""The one LightningModule: a backbone (plus an optional head) trained and evaluated under a protocol.

Backbones and heads are plain ``nn.Module``s; this module owns composition, losses, metrics and
optimisation. The head is built here from the backbone's ``feature_info`` (Hydra hands it over as a
partial constructor) so any head fits any backbone.
"""

from __future__ import annotations

import functools
import logging
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.metrics.aggregate import PerImageMean
from src.metrics.protocols import MetricProtocol
from src.results.per_image import PerImageLog
from src.training.checkpoint import RNG_KEY, restore_rng_state, rng_state
from src.training.precision import TrainingStepMixedPrecision
from src.training.sparse import SparselyUsed, anchor, drop_unused_grads, sparse_modules
from src.training.speed import (
    AUTO,
    FP32,
    SpeedSettings,
    check_options,
    compile_min_steps,
    compile_pays,
    eager,
    prepare_input,
    prepare_network,
    resolve,
)
from src.utils.errors import ConfigError, DivergedError
from src.utils.imresize import resize_batch

log = logging.getLogger(__name__)
#: where a checkpoint keeps the ids of the runs its loggers write to (``{"wandb": "<run id>"}``)
LOGGER_IDS_KEY = "aioir_logger_ids"
#: where a checkpoint keeps a training strategy's own state (plain numbers: read with weights_only=True)
STRATEGY_STATE_KEY = "aioir_strategy_state"


def logger_ids(loggers: Sequence[Any]) -> dict[str, str]:
    """``{"wandb": id}`` for a W&B logger among ``loggers`` whose run has started (its id is its version)."""
    from lightning.pytorch.loggers import WandbLogger

    ids = {}
    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger.version:
            ids["wandb"] = str(logger.version)
    return ids

# Evaluation meters are torchmetrics objects that already reduce across ranks, so Lightning's advice to
# add sync_dist=True when logging their values would only average identical numbers again.
warnings.filterwarnings("ignore", message=r".*It is recommended to use `self\.log\(.*sync_dist=True")

#: image-quality quantities reported per benchmark, for the restored output and the degraded input; a protocol
#: with ``lpips`` set adds "lpips" (``MetricProtocol.quantities`` is what the meters follow)
QUANTITIES = ("psnr", "ssim")


def _checked_optimizer(factory: Callable[..., torch.optim.Optimizer]) -> Callable[..., torch.optim.Optimizer]:
    """The optimiser's numeric settings are checked when the model is built, not at the first step of ``fit``."""
    for key, value in (getattr(factory, "keywords", None) or {}).items():
        if key not in ("lr", "weight_decay", "eps", "momentum"):
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"model.optimizer.{key}={value!r}: expected a number >= 0")
    return factory


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
        pretrained_lax: key prefixes (``net.upsample.``) whose tensors may be absent from ``pretrained`` or of
            another shape there and are then left at their initialisation (fine-tuning x3/x4 from x2).
        official: name of the official network whose released key names ``pretrained`` may use.
        official_parameters: the official implementation's parameter count for this configuration (the
            paper's sizes), or ``None``; informative (``src.summary`` prints it beside the model's own).
        instruction: for a network with a condition (``backbone.condition_dim``): what makes it
            (:mod:`src.models.instruction`); ``intent_weight`` weighs its intent classifier's cross-entropy;
            ``instruction_pretrained`` loads its head from the official ``lm_instructir-7d.pt``.
        speed: the ``speed`` config group (``compile``, ``compile_mode``, ``channels_last``, ``fused_adamw``;
            each ``"auto"``, true or false; ``None``: all auto). Resolved for the Trainer's device in
            ``setup``; a module used without a Trainer runs as the baseline (eager, contiguous).
        strategy: how the network is trained (:mod:`src.strategies`: Art's task balancing, DCPT's or RAM's
            pre-training, RAM's selective fine-tuning), or ``None`` for the plain objective (``strategy=none``).
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
        pretrained_lax: Sequence[str] = (),
        official: str | None = None,
        official_parameters: int | None = None,
        clip_output: bool = True,
        training_free: bool = False,
        speed: Mapping[str, Any] | None = None,
        instruction: nn.Module | None = None,
        intent_weight: float = 0.0,
        instruction_pretrained: str | None = None,
        strategy: Any = None,
    ) -> None:
        super().__init__()
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(f"model.scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        self.net = backbone
        #: makes a conditioned network's condition from a batch or a user's instruction (InstructIR)
        self.instruction = instruction
        self.intent_weight = float(intent_weight)
        if instruction_pretrained:
            self._load_instruction_head(instruction_pretrained)
        self.head = head(feature_info=backbone.feature_info) if head is not None else None
        self.loss = loss
        self.optimizer_factory = _checked_optimizer(optimizer)
        self.scheduler_factory = scheduler
        self.scheduler_interval = scheduler_interval
        self.protocol = metrics
        self.clip_output = clip_output
        #: a method with nothing to learn (the Dark Channel Prior): evaluated as it is, never trained
        self.training_free = training_free
        self.official_parameters = official_parameters
        self.meters = nn.ModuleDict()
        #: per-benchmark test results of the last ``trainer.test`` (input and restored), for metrics.json
        self.test_results: dict[str, dict[str, float]] = {}
        #: images of the last ``trainer.test`` left out of the means: benchmark -> image name -> why
        self.test_skipped: dict[str, dict[str, str]] = {}
        self._skipped: dict[str, dict[str, str]] = {}
        #: the composed run config (model/data/metrics), stored in checkpoints so eval can rebuild the run
        self.run_config: dict[str, Any] | None = None
        self.speed_options = check_options(speed)
        #: the resolved switches, set by ``setup`` once the device is known (``None``: baseline, unapplied)
        self.speed: SpeedSettings | None = None
        self._compile_deferred = False
        self._compile_min_steps: int | None = None
        self._sparse: list[SparselyUsed] | None = None
        #: every test image's scores and the worst and best restored ones (written by the test ending)
        self.test_images = PerImageLog()
        if pretrained:
            from src.training.pretrained import load_pretrained

            load_pretrained(self.net, self.head, pretrained, official=official, lax_prefixes=tuple(pretrained_lax))
        #: after the weights: a strategy may freeze layers of the loaded network (RAM's fine-tuning)
        self.strategy = strategy
        if strategy is not None:
            strategy.bind(self)

    # ------------------------------------------------------------------ speed
    def setup(self, stage: str) -> None:
        """Resolve the speed switches for the Trainer's device, once (``trainer.test`` after ``fit`` reuses them).

        ``setup`` rather than ``configure_model``: the EMA callback copies the module in its own ``setup``,
        which runs first, so it averages a plain network rather than a compiled one.
        """
        if self.speed is None:
            self.apply_speed(self.trainer.strategy.root_device)

    def apply_speed(self, device: torch.device | str) -> SpeedSettings:
        """Resolve ``speed`` for ``device`` and apply memory format and compilation to the network, in place."""
        if self.speed is not None:
            raise RuntimeError(f"speed settings are already applied: {self.speed}")
        trainer = self._trainer
        precision = str(trainer.precision) if trainer is not None else FP32
        options = dict(self.speed_options)
        if (
            options.get("fused_adamw", "auto") in ("auto", None)
            and precision.startswith("16")
            and trainer is not None
            and trainer.gradient_clip_val
        ):
            # Lightning cannot clip the gradients of an optimiser that unscales fp16 gradients itself (fused)
            options["fused_adamw"] = False
        # an automatic compile is kept at train start only where the run is long enough to pay it back
        self._compile_min_steps = compile_min_steps(options.pop("compile_min_steps", AUTO), device)
        settings = resolve(device, precision=precision, **options)
        if isinstance(getattr(trainer, "precision_plugin", None), TrainingStepMixedPrecision):
            settings = replace(settings, autocast_inference=False)
        self._compile_deferred = (settings.compile and options.get("compile", AUTO) in (AUTO, None)
                                  and self._compile_min_steps is not None and trainer is not None)
        prepare_network(self.net, replace(settings, compile=False) if self._compile_deferred else settings)
        if self.head is not None and settings.channels_last:
            # the network calls its head, so compiling the network traces the head too
            prepare_network(self.head, replace(settings, compile=False))
        self.speed = settings
        log.info("speed settings on %s: %s", torch.device(device), settings.as_dict())
        if settings.compile:
            log.info("the network is compiled for training only: validation, test and restore run it eagerly "
                     "(images of many sizes would compile one graph each)%s",
                     "; compile: auto is decided at train start from the run's length" if self._compile_deferred
                     else "")
        return settings

    def on_train_start(self) -> None:
        """Keep an automatic compile only for a run that plans at least ``speed.compile_min_steps`` steps:
        compiling a training step takes minutes on a GPU, more than a short run can win back."""
        if not self._compile_deferred or self.speed is None:
            return
        self._compile_deferred = False
        steps = self.trainer.estimated_stepping_batches
        if compile_pays(steps, self._compile_min_steps):
            self.net.compile(mode=self.speed.compile_mode)
            log.info("compiling the training forward: the run plans %s steps (speed.compile_min_steps=%s)",
                     steps, self._compile_min_steps)
            return
        self.speed = replace(self.speed, compile=False)
        log.info("not compiling: the run plans %s steps, fewer than speed.compile_min_steps=%s (compiling "
                 "takes minutes that a short run does not win back); speed.compile=true compiles anyway",
                 steps, self._compile_min_steps)

    # ------------------------------------------------------------------ forward and training
    def forward(self, lq: Tensor, condition: Tensor | None = None) -> Tensor:
        """Inference; a compiled network runs eagerly here (images of many sizes would recompile per size).
        ``condition``: the per-image condition of a conditioned network (InstructIR's instruction embedding)."""
        settings = self.speed or SpeedSettings.baseline()
        extra = {} if condition is None else {"condition": condition}
        with eager(settings):
            pred, _ = self.net(prepare_input(lq, settings), head=self.run_head, **extra)
        return pred

    @property
    def run_head(self) -> nn.Module | None:
        """The head the network runs with: the model's, or what its strategy makes of it (RAM++'s fusion)."""
        return self.strategy.network_head(self) if self.strategy is not None else self.head

    def _load_instruction_head(self, path: str) -> None:
        """The instruction head's weights from a file of the official ``LMHead`` (``lm_instructir-7d.pt``: keys
        ``fc1.*``, ``fc2.*``), read without unpickling code."""
        from src.models.official import load_strict
        from src.utils.weights import load_state_dict_file, strip_prefixes

        head = getattr(self.instruction, "head", None)
        if head is None:
            raise ConfigError(f"model.instruction_pretrained={path}: model.instruction has no instruction head")
        state = strip_prefixes(load_state_dict_file(path), ["module.", "instruction.head.", "head."])
        load_strict(head, state, source=f"model.instruction_pretrained={path}")

    def condition_for(self, batch: Mapping[str, Any]) -> tuple[Tensor | None, Tensor | None]:
        """A conditioned network's condition for ``batch`` (from its families) and the intent logits; ``None``s
        for every other network."""
        if not self.net.condition_dim:
            return None, None
        if self.instruction is None:
            raise ConfigError(f"{type(self.net).__name__} is conditioned on an instruction: set model/instruction=...")
        return self.instruction.for_families(list(batch["family"]))

    def example_fields(self, batch: int) -> dict[str, Any]:
        """Batch fields besides the images that the objective needs, for ``batch`` made-up images (the memory
        preflight, the benchmark): an instruction-guided network's family or a strategy's (Art, DCPT); nothing
        for every other."""
        families = getattr(self.instruction, "families", None)
        fields = {"family": [families[0]] * batch} if families else {}
        if self.strategy is not None:  # a strategy that reads the family (Art, DCPT)
            fields = {**self.strategy.example_fields(batch), **fields}
        return fields

    def predict(self, batch: Mapping[str, Any]) -> Tensor:
        """The restored images of an evaluation batch (its condition taken from it where the network has one)."""
        condition, _ = self.condition_for(batch)
        return self(batch["lq"], condition=condition)

    def _sparse_modules(self) -> list[SparselyUsed]:
        if self._sparse is None:
            self._sparse = sparse_modules(self.net) + (sparse_modules(self.head) if self.head is not None else [])
        return self._sparse

    def _check_finite_now(self) -> bool:
        """Check the loss at the first step and at logging steps only: each check is a host-device sync."""
        trainer = self._trainer
        if trainer is None or self.global_step == 0:
            return True
        n = trainer.log_every_n_steps
        return n > 0 and (self.global_step + 1) % n == 0

    def training_loss(self, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """The training objective of one batch and its logged terms; ``make bench`` times exactly this.

        The network's auxiliary losses are added; what else the objective reads (the ground truth, the input,
        further network outputs) is the loss's business (:class:`src.training.losses.Objective`).
        """
        if self.strategy is not None:
            return self.strategy.training_loss(self, batch)
        pred, aux, outputs, intent = self.network_outputs(batch)
        total, terms = self.loss.objective(pred, batch, outputs)
        return self.complete_objective(total, terms, batch, aux, intent)

    def network_outputs(self, batch: Mapping[str, Any], lq: Tensor | None = None,
                        head: nn.Module | None = None) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor], Any]:
        """The training forward of ``lq`` (default: the batch's): the image, the auxiliary losses, the further
        outputs a loss may read and the instruction head's intent logits (``None`` for most networks).
        ``head`` replaces the model's head for this call (a strategy's feature tap, which calls the head)."""
        condition, intent = self.condition_for(batch)
        extra = {} if condition is None else {"condition": condition}
        pred, aux, outputs = self.net.forward_train(batch["lq"] if lq is None else lq,
                                                    head=self.run_head if head is None else head, **extra)
        return pred, aux, outputs, intent

    def complete_objective(self, total: Tensor, terms: dict[str, Tensor], batch: Mapping[str, Any],
                           aux: Mapping[str, Tensor], intent: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        """``total`` with what every objective adds: the intent cross-entropy, the auxiliary losses and the
        zero that keeps every expert in the graph."""
        if intent is not None and self.intent_weight:  # the instruction head's classifier (InstructIR)
            terms["intent"] = F.cross_entropy(intent, self.instruction.indices(list(batch["family"])))
            total = total + self.intent_weight * terms["intent"]
        for name, value in aux.items():
            total = total + value
            terms[f"aux/{name}"] = value
        zero = anchor(self._sparse_modules())
        if zero is not None:  # every expert in the graph, so DDP needs no unused-parameter search
            total = total + zero
        return total, terms

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        if self.speed is not None:  # here, not in on_after_batch_transfer: the datamodule may own that hook
            batch["lq"] = prepare_input(batch["lq"], self.speed)
        total, terms = self.training_loss(batch)
        if self._check_finite_now() and not torch.isfinite(total):
            raise DivergedError(
                f"training loss is {total.item()} at step {self.global_step} (families {set(batch['family'])}; "
                "checked at the first step and every trainer.log_every_n_steps); "
                "lower model.optimizer.lr or check the data"
            )
        bs = batch["lq"].shape[0]
        self.log("train/loss", total, prog_bar=True, batch_size=bs)
        for name, value in terms.items():
            self.log(f"train/{name}", value, batch_size=bs)
        return total

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Groups (experts) that ran on no rank since the last step get ``grad=None``, as under the official
        ``find_unused_parameters=True``: the optimiser then skips them (see ``src.training.sparse``); then the
        strategy's own hook (a phase of LED's fine-tuning)."""
        if self.strategy is not None:
            self.strategy.before_optimizer_step(self, optimizer)
        modules = self._sparse_modules()
        if not modules:
            return
        strategy = self._trainer.strategy if self._trainer is not None else None
        reduce = (lambda t: strategy.reduce(t, reduce_op="sum")) if strategy is not None else None
        drop_unused_grads(modules, reduce)

    def _optimizer_factory(self) -> Callable[..., torch.optim.Optimizer]:
        """The optimiser constructor, with ``fused=True`` for Adam/AdamW when ``speed.fused_adamw`` is on and
        the config sets neither ``fused`` nor ``foreach``."""
        factory = self.optimizer_factory
        if self.speed is None or not self.speed.fused_adamw:
            return factory
        target = getattr(factory, "func", factory)
        keywords = getattr(factory, "keywords", None) or {}
        is_adam = isinstance(target, type) and issubclass(target, (torch.optim.Adam, torch.optim.AdamW))
        if not is_adam or "fused" in keywords or "foreach" in keywords:
            return factory
        return functools.partial(factory, fused=True)

    def configure_optimizers(self) -> Any:
        trainable = [p for p in self.parameters() if p.requires_grad]
        if not trainable:
            raise ConfigError("nothing to train: every parameter is frozen (requires_grad=False)")
        groups = self.strategy.parameter_groups(self, trainable) if self.strategy is not None else None
        optimizer = self._optimizer_factory()(params=groups or trainable)
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
                for q in self.protocol.quantities:
                    key = f"{stage}|{prefix}{q}|{benchmark}"
                    if key not in self.meters:
                        self.meters[key] = PerImageMean().to(self.device)
                    self.meters[key].reset()

    def on_validation_epoch_start(self) -> None:
        self._reset_meters("val")

    def on_test_epoch_start(self) -> None:
        self._reset_meters("test")
        self._skipped = {}
        self.test_images.reset()

    def _eval_step(self, stage: str, batch: dict[str, Any]) -> None:
        lq, gt = batch["lq"], batch.get("gt")
        benchmark = batch["benchmark"][0]
        if any(b != benchmark for b in batch["benchmark"]):
            raise ValueError(f"an evaluation batch mixes benchmarks {set(batch['benchmark'])}")
        if gt is None:  # an unpaired set (data=unpaired): only the no-reference quantities can score it
            self._eval_unpaired(stage, batch, benchmark)
            return
        height, width = gt.shape[-2:]
        if min(height, width) < self.protocol.min_side:  # scored, it would fail the whole run; left out, named
            reason = (f"{width}x{height} is smaller than the {self.protocol.min_side}-pixel SSIM window of "
                      f"metrics={self.protocol.name}")
            for name in batch["name"]:
                log.warning("%s/%s: skipped, %s", benchmark, name, reason)
                self._skipped.setdefault(benchmark, {})[name] = reason
            return
        pred = self._restored(batch)
        restored = self.protocol.per_image(pred, gt.float())
        # a smaller input (super-resolution) is scored at the target's size, bicubic-up-sampled: the papers' row;
        # of an input with derived channels beside the image (Water-Net's) only the image
        shown = resize_batch(self.input_image(lq).float(), gt.shape[-2:])
        degraded = self.protocol.per_image(shown, gt.float())
        self._update_meters(stage, benchmark, restored, degraded)
        if stage == "test":
            self.test_images.add(benchmark, batch["name"], restored, degraded, shown, pred, gt)

    def _restored(self, batch: dict[str, Any]) -> Tensor:
        """The network's output for an evaluation batch, float, clipped where the run clips."""
        pred = (self.strategy.predict(self, batch) if self.strategy is not None else None)
        pred = (self.predict(batch) if pred is None else pred).float()
        return pred.clamp(0.0, 1.0) if self.clip_output else pred

    def _eval_unpaired(self, stage: str, batch: dict[str, Any], benchmark: str) -> None:
        """Degraded images without targets: the no-reference quantities of the restored image and of the input."""
        if not self.protocol.no_reference_quantities:
            raise ConfigError(f"benchmark {benchmark} has no target images (data=unpaired): only no-reference "
                              f"metrics can score it; add metrics.niqe=true (or metrics.pyiqa=[musiq] with pyiqa "
                              f"installed)")
        pred = self._restored(batch)
        restored = self.protocol.per_image_no_reference(pred)
        image = self.input_image(batch["lq"])
        degraded = self.protocol.per_image_no_reference(image.float())
        self._update_meters(stage, benchmark, restored, degraded)
        if stage == "test":
            self.test_images.add(benchmark, batch["name"], restored, degraded, image, pred, None)

    def input_image(self, lq: Tensor) -> Tensor:
        """The degraded image of a batch's input: the input itself, or its first channels where the network
        reads derived versions beside it (``Backbone.derived_inputs``: Water-Net's 12 channels hold the image first)."""
        if getattr(self.net, "derived_inputs", None) is None:
            return lq
        return lq[:, : self.net.out_channels]

    def _update_meters(self, stage: str, benchmark: str, restored: Mapping[str, Tensor],
                       degraded: Mapping[str, Tensor]) -> None:
        for q in restored:
            for prefix, values in (("", restored[q]), ("input_", degraded[q])):
                if q in self.protocol.no_reference_quantities:
                    # NIQE is undefined (NaN) below two 96 x 96 blocks: such images are left out of its mean
                    values = values[torch.isfinite(values)]
                self.meters[f"{stage}|{prefix}{q}|{benchmark}"].update(values)

    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step("val", batch)

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step("test", batch)

    def _summarise(self, stage: str) -> dict[str, dict[str, float]]:
        results: dict[str, dict[str, float]] = {}
        unpaired = getattr(self.trainer.datamodule, "unpaired_benchmarks", ()) if self._trainer is not None else ()
        for benchmark in self._benchmarks(stage):
            row = {}
            for prefix in ("", "input_"):
                for q in self.protocol.quantities:
                    if benchmark in unpaired and q not in self.protocol.no_reference_quantities:
                        row[f"{prefix}{q}"] = float("nan")  # no target: nothing to compare with
                        continue
                    row[f"{prefix}{q}"] = float(self.meters[f"{stage}|{prefix}{q}|{benchmark}"].compute())
            results[benchmark] = row
        for benchmark, row in results.items():
            for q in self.protocol.quantities:
                self.log(f"{stage}/{q}/{benchmark}", row[q], add_dataloader_idx=False, sync_dist=False)
        for q in self.protocol.quantities:
            values = [row[q] for row in results.values() if math.isfinite(row[q])]
            if values:
                self.log(f"{stage}/{q}", sum(values) / len(values), add_dataloader_idx=False, prog_bar=q == "psnr")
        return results

    def on_validation_epoch_end(self) -> None:
        self._summarise("val")

    def on_test_epoch_end(self) -> None:
        self.test_results = self._summarise("test")
        self.test_skipped = self._skipped

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.run_config is not None:
            checkpoint["aioir_config"] = self.run_config
        ids = logger_ids(self.loggers if self._trainer is not None else [])
        if ids:  # a run resumed from this checkpoint continues the same logger runs (src.run.assemble)
            checkpoint[LOGGER_IDS_KEY] = ids
        if self.strategy is not None:  # state that is not a tensor of the model (Art's running losses)
            checkpoint[STRATEGY_STATE_KEY] = self.strategy.checkpoint_state()
        # dropout, router noise and mask generators draw from these: a resumed run draws what the uncut one drew
        checkpoint[RNG_KEY] = rng_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.strategy is not None and STRATEGY_STATE_KEY in checkpoint:
            self.strategy.load_checkpoint_state(checkpoint[STRATEGY_STATE_KEY])
        if RNG_KEY in checkpoint:
            restore_rng_state(checkpoint[RNG_KEY])
