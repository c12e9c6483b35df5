"""Evaluate a checkpoint: ``python -m src.eval ckpt_path=.../best.ckpt`` (or ``model.pretrained=...``).

With a checkpoint written by ``src.train``, the model, data and metric protocol stored in it are used,
so the command reproduces the run's test table; name ``data=...``/``data.*`` or ``metrics=...`` on the
command line to evaluate on other data or under another protocol.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import DictConfig

from src.run.from_checkpoint import load_run, overridden_groups
from src.run.test_table import report_test
from src.utils.errors import exit_on_user_error
from src.utils.instantiate import build, build_loggers, build_model, prepare_trainer_config
from src.utils.run_dir import register_resolvers

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig, overridden: Iterable[str] = ()) -> dict[str, Any]:
    """Test the model of ``cfg`` (restored from ``cfg.ckpt_path`` when given); returns the test record."""
    L.seed_everything(cfg.seed, workers=True)
    state = None
    if cfg.get("ckpt_path"):
        cfg, state = load_run(cfg, overridden)
    elif not cfg.model.get("pretrained"):
        log.warning("neither ckpt_path nor model.pretrained is set: evaluating randomly initialised weights")

    datamodule = build(cfg.data, "data")
    model = build_model(cfg)
    if state is not None:
        model.load_state_dict(state, strict=True)
    loggers = build_loggers(cfg.get("logger"))
    prepare_trainer_config(cfg)  # "auto" never reaches Lightning
    trainer: L.Trainer = build(cfg.trainer, "trainer", logger=loggers or False, callbacks=[])
    trainer.test(model, datamodule=datamodule, verbose=False)
    return report_test(trainer, model, cfg, loggers, title="evaluation", checkpoint=cfg.get("ckpt_path"),
                       pretrained=cfg.model.get("pretrained"))


register_resolvers()  # ${unique_dir:...} of conf/hydra: Hydra resolves the run folder before main runs


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    # released weights can hold denormal floats (Zero-DCE's do), which slow CPU convolutions ~50x;
    # flushing them to zero changes outputs by < 1e-30
    torch.set_flush_denormal(True)
    evaluate(cfg, overridden_groups())


if __name__ == "__main__":
    main()
