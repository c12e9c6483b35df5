"""AirNet's two-phase training: the degradation encoder alone first, then the whole network.

The official ``train.py`` trains only the contrastive encoder (InfoNCE loss alone) for ``epochs_encoder``
epochs, then the encoder and restorer together (L1 + 0.1 x InfoNCE), with a step learning rate tied to that
boundary. This callback switches the backbone's ``encoder_only`` flag at the start of every training epoch,
so the LightningModule needs no AirNet-specific code: in that mode the backbone skips the restorer, returns
its input as the prediction (a reconstruction term without gradient) and the unweighted contrastive loss as
its aux loss, so only the query encoder is updated. The flag is set from the epoch number, so a resumed run
lands in the right phase.

With ``official_lr`` the callback also sets the official learning rate at the start of each epoch (see
:func:`official_lr`); the model must then have no scheduler of its own (``model/scheduler=none``).

Under DDP the warm-up leaves the restorer without gradients: use a strategy with
``find_unused_parameters=True``.
"""

from __future__ import annotations

import logging

import lightning as L

log = logging.getLogger(__name__)


def official_lr(
    epoch: int, encoder_epochs: int, lr: float = 1e-3, restorer_lr: float = 1e-4, encoder_step: int = 60,
    restorer_step: int = 125,
) -> float:
    """The learning rate of epoch ``epoch`` in the official AirNet recipe.

    The official loop sets the rate at the end of epoch ``j`` for the next one: ``lr * 0.1 ** (j // 60)`` while
    ``j <= encoder_epochs``, then ``restorer_lr * 0.5 ** ((j - encoder_epochs) // 125)``; epoch 0 runs at ``lr``.
    """
    if epoch == 0:
        return lr
    j = epoch - 1
    if j <= encoder_epochs:
        return lr * 0.1 ** (j // encoder_step)
    return restorer_lr * 0.5 ** ((j - encoder_epochs) // restorer_step)


class AirNetWarmup(L.Callback):
    """Train only AirNet's encoder, with only the contrastive loss, for the first ``encoder_epochs`` epochs.

    Args:
        encoder_epochs: warm-up length (official: 100).
        official_lr: also set the official step learning rate each epoch (needs no model scheduler).
        lr: rate of the warm-up (official: 1e-3, the optimiser's rate).
        restorer_lr: rate at the start of the joint phase (official: 1e-4).
        encoder_step, restorer_step: epochs between the 10x (warm-up) and 2x (joint) decays (official: 60, 125).
    """

    def __init__(
        self, encoder_epochs: int = 100, official_lr: bool = False, lr: float = 1e-3, restorer_lr: float = 1e-4,
        encoder_step: int = 60, restorer_step: int = 125,
    ) -> None:
        if encoder_epochs < 0:
            raise ValueError(f"encoder_epochs must be >= 0, got {encoder_epochs}")
        self.encoder_epochs = int(encoder_epochs)
        self.official_lr = official_lr
        self.lr, self.restorer_lr = float(lr), float(restorer_lr)
        self.encoder_step, self.restorer_step = int(encoder_step), int(restorer_step)

    @staticmethod
    def _backbone(pl_module: L.LightningModule):
        net = getattr(pl_module, "net", None)
        if not hasattr(net, "encoder_only"):
            raise TypeError(
                "the AirNet warm-up callback needs an AirNet backbone (with `encoder_only`), got "
                f"{type(net).__name__}; drop callbacks=airnet or use model=airnet"
            )
        return net

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._backbone(pl_module)
        if self.official_lr and trainer.lr_scheduler_configs:
            raise ValueError("callbacks.airnet_warmup.official_lr sets the learning rate itself: use "
                             "model/scheduler=none, or official_lr=false to keep the model's scheduler")

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        net = self._backbone(pl_module)
        epoch = trainer.current_epoch
        warm = epoch < self.encoder_epochs
        if warm != net.encoder_only or epoch == 0:
            log.info("epoch %d: %s", epoch, "encoder warm-up (contrastive loss only)" if warm else "whole network")
        net.encoder_only = warm
        if self.official_lr:
            rate = official_lr(epoch, self.encoder_epochs, self.lr, self.restorer_lr, self.encoder_step,
                               self.restorer_step)
            for optimizer in trainer.optimizers:
                for group in optimizer.param_groups:
                    group["lr"] = rate

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._backbone(pl_module).encoder_only = False
