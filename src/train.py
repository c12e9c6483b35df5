"""Train an all-in-one restorer: ``python -m src.train model=restormer data=5deg``.

``train(cfg)`` is a plain function (tests call it with a composed config); ``main`` is the Hydra entry.
"""

from __future__ import annotations

import logging
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from src.run.assemble import finish_loggers, for_training
from src.run.test_table import report_test
from src.utils.conf import CONF_DIR
from src.utils.errors import ConfigError, MissingFileError, exit_on_user_error
from src.utils.run_dir import register_resolvers
from src.utils.weights import check_weights_file

log = logging.getLogger(__name__)


def _best_checkpoint(trainer: L.Trainer) -> str | None:
    """The best checkpoint of the callback that monitors a metric (``last.ckpt``'s callback monitors none)."""
    paths = [c.best_model_path for c in trainer.checkpoint_callbacks if c.monitor is not None and c.best_model_path]
    return paths[0] if paths else None


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, then test; returns the logged metrics and the test record (also written as metrics.json)."""
    if cfg.get("ckpt_path"):  # before anything is built: a wrong path fails in a second, not after the setup
        try:
            check_weights_file(cfg.ckpt_path, "ckpt_path", torch_zip=True)
        except MissingFileError as err:
            raise MissingFileError(
                f"{err} (runs keep theirs in {cfg.paths.log_dir}/<task>/runs/<time>/checkpoints/)"
            ) from None
    L.seed_everything(cfg.seed, workers=True)
    run = for_training(cfg)
    loggers = run.loggers
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))  # the protocol is metrics.name there

    try:
        return _fit_and_test(cfg, run)
    finally:
        finish_loggers(loggers)


def _fit_and_test(cfg: DictConfig, run: Any) -> dict[str, Any]:
    model, trainer, datamodule, loggers = run.model, run.trainer, run.datamodule, run.loggers
    metrics: dict[str, Any] = {}
    if cfg.get("train", True):
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})

    record = None
    if cfg.get("test", True):
        best = None if trainer.fast_dev_run else _best_checkpoint(trainer)
        if best is not None:
            # the checkpoint's state_dict, as src.eval reads it: with EMA these are the averaged weights
            # (Lightning's ckpt_path= route would let the EMA callback swap the raw weights back in)
            model.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["state_dict"])
        elif not trainer.fast_dev_run:
            log.warning("no best checkpoint was saved; testing the final weights")
        trainer.test(model, datamodule=datamodule, verbose=False)
        if not trainer.fast_dev_run:  # fast_dev_run (debug=fdr) runs one batch of each loop and writes no results
            record = report_test(trainer, model, cfg, loggers, checkpoint=best)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
    return {"metrics": metrics, "record": record, "trainer": trainer, "model": model}


def optimized_metric(cfg: DictConfig, metrics: dict[str, float]) -> float | None:
    """The value an Optuna sweep maximises (``optimized_metric``), with a clear error if it was never logged."""
    name = cfg.get("optimized_metric")
    if not name:
        return None
    if name not in metrics:
        raise ConfigError(f"optimized_metric={name!r} was not logged; logged metrics: {sorted(metrics)}")
    return metrics[name]


register_resolvers()  # ${unique_dir:...} of conf/hydra: Hydra resolves the run folder before main runs


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
@exit_on_user_error
def main(cfg: DictConfig) -> float | None:
    torch.set_float32_matmul_precision("high")
    return optimized_metric(cfg, train(cfg)["metrics"])


if __name__ == "__main__":
    main()
