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

from src.run.assemble import finish_loggers, for_evaluation, untrained
from src.run.from_checkpoint import overridden_groups
from src.run.test_table import report_test
from src.utils.conf import CONF_DIR
from src.utils.errors import exit_on_user_error
from src.utils.run_dir import register_resolvers

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig, overridden: Iterable[str] = ()) -> dict[str, Any]:
    """Test the model of ``cfg`` (restored from ``cfg.ckpt_path`` when given); returns the test record."""
    L.seed_everything(cfg.seed, workers=True)
    run = for_evaluation(cfg, overridden)
    try:
        run.trainer.test(run.model, datamodule=run.datamodule, verbose=False)
        extra = {"untrained": True} if untrained(run.cfg) else {}
        return report_test(run.trainer, run.model, run.cfg, run.loggers, title="evaluation",
                           checkpoint=run.cfg.get("ckpt_path"), pretrained=run.cfg.model.get("pretrained"), **extra)
    finally:
        finish_loggers(run.loggers)


register_resolvers()  # ${unique_dir:...} of conf/hydra: Hydra resolves the run folder before main runs


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="eval")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    # released weights can hold denormal floats (Zero-DCE's do), which slow CPU convolutions ~50x;
    # flushing them to zero changes outputs by < 1e-30
    torch.set_flush_denormal(True)
    evaluate(cfg, overridden_groups())


if __name__ == "__main__":
    main()
